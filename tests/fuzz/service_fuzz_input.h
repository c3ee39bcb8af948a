// The input of the service fuzz target, and the one function that runs it (shared by the
// libFuzzer target and the corpus-replay gtest, so both check the same thing).
//
// Input layout:
//
// | bytes | field |
// |---|---|
// | 0 | session state, taken modulo 4 (SessionState below) |
// | 1.. | frames as on the wire (server/PROTOCOL.md): 4-byte little-endian length N, N bytes |
//
// Each frame is decoded and its body handed to CacheService::Handle with one Session, as a
// connection would (so a Hello in the input changes the state of the frames after it). A
// length above the server's default max_frame_bytes ends the input the way the server ends
// the connection; a truncated last frame ends it like a peer closing mid-frame.
//
// Every response must hold what PROTOCOL.md promises: it verifies as a Response; it carries
// the request's id (0 for a body that is not a Request); an OK response has the body type
// matching the request; an unauthenticated session gets OK only for Hello; an org session
// never gets OK for an admin operation, and an admin session never for a data operation.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "request_builder.h"
#include "sealcache/server/service.h"
#include "sealcache/status.h"

namespace sealcache::fuzz {

enum class SessionState : uint8_t {
  kUnauthenticated = 0,
  kOrgA = 1,  // bound to kOrgA (HNSW index)
  kOrgB = 2,  // bound to kOrgB (exact index)
  kAdmin = 3,
};
inline constexpr uint8_t kSessionStates = 4;

// What the process-wide service holds before each input: two orgs of kDimension with
// kSeededEntries entries each, digests SeededDigest(0..kSeededEntries-1), the first half in
// namespace kSeededNamespace; and tokens of fixed value, so that a Hello in an input can
// succeed (kOrgAToken binds to kOrgA, kOrgBToken to kOrgB, kAdminToken to admin). Each
// input's session starts as a real Hello with its state's token would leave it.
inline constexpr std::string_view kOrgA = "fuzz-a";
inline constexpr std::string_view kOrgB = "fuzz-b";
inline constexpr uint32_t kDimension = 4;
inline constexpr uint32_t kSeededEntries = 4;
inline constexpr std::string_view kSeededNamespace = "seeded";
inline constexpr std::string_view kOrgAToken =
    "sc_a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
inline constexpr std::string_view kOrgBToken =
    "sc_b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
inline constexpr std::string_view kAdminToken =
    "sc_adadadadadadadadadadadadadadadadadadadadadadadadadadadadadadadad";

DigestBytes SeededDigest(uint32_t i);
// A vector of kDimension, the same for the same i, never all zero.
std::vector<float> SeededVector(uint32_t i);

// The process-wide service (created on first use, and anew after an input dropped one of
// its orgs or revoked a token, or after a bounded number of inputs) and a session in
// `state`, as a Hello with the state's token leaves it. Shared by the fuzz targets.
struct FuzzSession {
  server::CacheService* service;
  server::Session session;
};
Result<FuzzSession> OpenFuzzSession(SessionState state);

// What one input did.
struct FuzzInputSummary {
  uint32_t frames = 0;        // frames handed to Handle
  uint32_t ok_responses = 0;  // of those, answered OK
};

// Runs one input against the process-wide service (created on first use, and created anew
// after an input dropped one of its orgs or after a bounded number of inputs, so that state
// and disk use stay bounded). Returns what it did, or Internal naming the broken promise; a
// failure to set the service up is returned as it came.
Result<FuzzInputSummary> RunServiceFuzzInput(std::span<const uint8_t> input);

// An input: the state byte followed by each body as a frame.
std::vector<uint8_t> MakeFuzzInput(SessionState state, std::span<const Body> bodies);

}  // namespace sealcache::fuzz
