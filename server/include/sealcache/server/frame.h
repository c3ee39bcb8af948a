// Frames of the sealcache protocol (server/PROTOCOL.md): a 4-byte little-endian length N,
// then N bytes of flatbuffer with file identifier "SCP1".
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "protocol_generated.h"
#include "sealcache/status.h"

namespace sealcache::server {

inline constexpr size_t kFrameHeaderSize = 4;
inline constexpr size_t kDefaultMaxFrameBytes = 16u << 20;
inline constexpr char kFileIdentifier[] = "SCP1";

// Length prefix + body, ready to write.
std::vector<uint8_t> EncodeFrame(std::span<const uint8_t> body);
// The same appended to `out`.
void AppendFrame(std::span<const uint8_t> body, std::vector<uint8_t>* out);
uint32_t DecodeFrameLength(const uint8_t header[kFrameHeaderSize]);

// Verifies an untrusted body as a Request / Response (flatbuffers::Verifier with the file
// identifier); returns the root or InvalidArgument. The buffer must outlive the result.
// REQUIRES: body.data() is 8-byte aligned (a vector's own buffer is): flatbuffers loads
// aligned words.
Result<const protocol::Request*> VerifyRequest(std::span<const uint8_t> body);
Result<const protocol::Response*> VerifyResponse(std::span<const uint8_t> body);

// Status <-> wire status code.
protocol::StatusCode ToWireCode(Status::Code code);
Status FromWire(protocol::StatusCode code, std::string_view message);

}  // namespace sealcache::server
