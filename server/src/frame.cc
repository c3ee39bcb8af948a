#include "sealcache/server/frame.h"

#include "sealcache/encoding.h"

namespace sealcache::server {
namespace {
// Nesting and table limits well above what any valid frame needs, below what could make
// verification itself expensive.
constexpr flatbuffers::uoffset_t kMaxDepth = 16;
constexpr flatbuffers::uoffset_t kMaxTables = 1'000'000;

flatbuffers::Verifier::Options VerifierOptions() {
  flatbuffers::Verifier::Options o;
  o.max_depth = kMaxDepth;
  o.max_tables = kMaxTables;
  return o;
}
}  // namespace

std::vector<uint8_t> EncodeFrame(std::span<const uint8_t> body) {
  std::vector<uint8_t> frame;
  frame.reserve(kFrameHeaderSize + body.size());
  AppendFrame(body, &frame);
  return frame;
}

void AppendFrame(std::span<const uint8_t> body, std::vector<uint8_t>* out) {
  const size_t at = out->size();
  out->resize(at + kFrameHeaderSize + body.size());
  EncodeFixed32(out->data() + at, static_cast<uint32_t>(body.size()));
  std::copy(body.begin(), body.end(), out->begin() + static_cast<ptrdiff_t>(at + kFrameHeaderSize));
}

uint32_t DecodeFrameLength(const uint8_t header[kFrameHeaderSize]) { return DecodeFixed32(header); }

Result<const protocol::Request*> VerifyRequest(std::span<const uint8_t> body) {
  if (body.size() < 8 || !flatbuffers::BufferHasIdentifier(body.data(), kFileIdentifier)) {
    return Status::InvalidArgument("malformed request frame: not an SCP1 flatbuffer");
  }
  flatbuffers::Verifier v(body.data(), body.size(), VerifierOptions());
  if (!protocol::VerifyRequestBuffer(v)) {
    return Status::InvalidArgument("malformed request frame: flatbuffer verification failed");
  }
  return protocol::GetRequest(body.data());
}

Result<const protocol::Response*> VerifyResponse(std::span<const uint8_t> body) {
  if (body.size() < 8 || !flatbuffers::BufferHasIdentifier(body.data(), kFileIdentifier)) {
    return Status::InvalidArgument("malformed response frame: not an SCP1 flatbuffer");
  }
  flatbuffers::Verifier v(body.data(), body.size(), VerifierOptions());
  if (!v.VerifyBuffer<protocol::Response>(kFileIdentifier)) {
    return Status::InvalidArgument("malformed response frame: flatbuffer verification failed");
  }
  return flatbuffers::GetRoot<protocol::Response>(body.data());
}

protocol::StatusCode ToWireCode(Status::Code code) {
  using C = Status::Code;
  using W = protocol::StatusCode;
  switch (code) {
    case C::kOk:
      return W::OK;
    case C::kInvalidArgument:
      return W::INVALID_ARGUMENT;
    case C::kNotFound:
      return W::NOT_FOUND;
    case C::kAlreadyExists:
      return W::ALREADY_EXISTS;
    case C::kCorruption:
      return W::CORRUPTION;
    case C::kPermissionDenied:
      return W::PERMISSION_DENIED;
    case C::kFailedPrecondition:
      return W::FAILED_PRECONDITION;
    case C::kIOError:
      return W::IO_ERROR;
    case C::kNotSupported:
      return W::INVALID_ARGUMENT;
    case C::kResourceExhausted:
      return W::RESOURCE_EXHAUSTED;
    case C::kUnauthenticated:
      return W::UNAUTHENTICATED;
    case C::kInternal:
      return W::INTERNAL;
    case C::kUnavailable:
      return W::UNAVAILABLE;
    case C::kMoved:
      return W::MOVED;
  }
  return W::INTERNAL;
}

Status FromWire(protocol::StatusCode code, std::string_view m) {
  using W = protocol::StatusCode;
  switch (code) {
    case W::OK:
      return Status::Ok();
    case W::INVALID_ARGUMENT:
      return Status::InvalidArgument(m);
    case W::NOT_FOUND:
      return Status::NotFound(m);
    case W::ALREADY_EXISTS:
      return Status::AlreadyExists(m);
    case W::PERMISSION_DENIED:
      return Status::PermissionDenied(m);
    case W::UNAUTHENTICATED:
      return Status::Unauthenticated(m);
    case W::RESOURCE_EXHAUSTED:
      return Status::ResourceExhausted(m);
    case W::FAILED_PRECONDITION:
      return Status::FailedPrecondition(m);
    case W::CORRUPTION:
      return Status::Corruption(m);
    case W::IO_ERROR:
      return Status::IOError(m);
    case W::UNAVAILABLE:
      return Status::Unavailable(m);
    case W::MOVED:
      return Status::Moved(m);
    case W::INTERNAL:
      return Status::Internal(m);
  }
  return Status::Internal(m);
}

}  // namespace sealcache::server
