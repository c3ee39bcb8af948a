#include "request_builder.h"

#include "sealcache/server/frame.h"

namespace sealcache::fuzz {
namespace {

namespace P = ::sealcache::protocol;
using FBB = flatbuffers::FlatBufferBuilder;

// An absent string field, not an empty one, when `s` is empty.
flatbuffers::Offset<flatbuffers::String> OptionalString(FBB& fbb, std::string_view s) {
  return s.empty() ? 0 : fbb.CreateString(s);
}

template <typename T>
Body Finish(FBB& fbb, uint64_t id, P::RequestBody type, flatbuffers::Offset<T> body) {
  fbb.Finish(P::CreateRequest(fbb, id, type, body.Union()), server::kFileIdentifier);
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

flatbuffers::Offset<P::PutRequest> BuildPut(FBB& fbb, const PutFields& put) {
  auto digest = fbb.CreateVector(put.digest.data(), put.digest.size());
  auto vector = fbb.CreateVector(put.vector);
  auto payload = fbb.CreateVector(put.payload);
  auto ns = OptionalString(fbb, put.name_space);
  return P::CreatePutRequest(fbb, digest, vector, payload, put.ttl_ms, ns);
}

}  // namespace

Body HelloBody(uint64_t id, std::string_view token) {
  FBB fbb;
  auto t = fbb.CreateString(token);
  return Finish(fbb, id, P::RequestBody::HelloRequest, P::CreateHelloRequest(fbb, t));
}

Body PingBody(uint64_t id) {
  FBB fbb;
  return Finish(fbb, id, P::RequestBody::PingRequest, P::CreatePingRequest(fbb));
}

Body PutBody(uint64_t id, const PutFields& put) {
  FBB fbb;
  return Finish(fbb, id, P::RequestBody::PutRequest, BuildPut(fbb, put));
}

Body PutBatchBody(uint64_t id, std::span<const PutFields> items) {
  FBB fbb;
  std::vector<flatbuffers::Offset<P::PutRequest>> built;
  for (const PutFields& item : items) built.push_back(BuildPut(fbb, item));
  auto v = fbb.CreateVector(built);
  return Finish(fbb, id, P::RequestBody::PutBatchRequest, P::CreatePutBatchRequest(fbb, v));
}

Body GetEntryBody(uint64_t id, const DigestBytes& digest, bool with_payload) {
  FBB fbb;
  auto d = fbb.CreateVector(digest.data(), digest.size());
  return Finish(fbb, id, P::RequestBody::GetEntryRequest,
                P::CreateGetEntryRequest(fbb, d, with_payload));
}

Body LookupBody(uint64_t id, std::span<const float> vector, uint32_t k, float min_score,
                std::string_view name_space, bool with_payload) {
  FBB fbb;
  auto v = fbb.CreateVector(vector.data(), vector.size());
  auto ns = OptionalString(fbb, name_space);
  return Finish(fbb, id, P::RequestBody::LookupRequest,
                P::CreateLookupRequest(fbb, v, k, min_score, ns, with_payload));
}

Body DeleteBody(uint64_t id, const DigestBytes& digest) {
  FBB fbb;
  auto d = fbb.CreateVector(digest.data(), digest.size());
  return Finish(fbb, id, P::RequestBody::DeleteRequest, P::CreateDeleteRequest(fbb, d));
}

Body SetExpiryBody(uint64_t id, const DigestBytes& digest, int64_t expires_ms, int64_t ttl_ms) {
  FBB fbb;
  auto d = fbb.CreateVector(digest.data(), digest.size());
  return Finish(fbb, id, P::RequestBody::SetExpiryRequest,
                P::CreateSetExpiryRequest(fbb, d, expires_ms, ttl_ms));
}

Body InvalidateBody(uint64_t id, std::string_view name_space, int64_t older_than_ms) {
  FBB fbb;
  auto ns = OptionalString(fbb, name_space);
  return Finish(fbb, id, P::RequestBody::InvalidateRequest,
                P::CreateInvalidateRequest(fbb, ns, older_than_ms));
}

Body StatsBody(uint64_t id) {
  FBB fbb;
  return Finish(fbb, id, P::RequestBody::StatsRequest, P::CreateStatsRequest(fbb));
}

Body CreateOrgBody(uint64_t id, const CreateOrgFields& org) {
  FBB fbb;
  auto name = fbb.CreateString(org.org);
  auto metric = fbb.CreateString("cosine");
  auto kind = OptionalString(fbb, org.index_kind);
  return Finish(fbb, id, P::RequestBody::CreateOrgRequest,
                P::CreateCreateOrgRequest(fbb, name, org.dimension, metric, kind, org.hnsw_m,
                                          org.ef_construction, org.ef_search, org.seal_threshold));
}

Body DropOrgBody(uint64_t id, std::string_view org) {
  FBB fbb;
  auto o = fbb.CreateString(org);
  return Finish(fbb, id, P::RequestBody::DropOrgRequest, P::CreateDropOrgRequest(fbb, o));
}

Body RotateKeyBody(uint64_t id, std::string_view org) {
  FBB fbb;
  auto o = fbb.CreateString(org);
  return Finish(fbb, id, P::RequestBody::RotateKeyRequest, P::CreateRotateKeyRequest(fbb, o));
}

Body RotateMasterKeyBody(uint64_t id, std::string_view to) {
  FBB fbb;
  auto t = fbb.CreateString(to);
  return Finish(fbb, id, P::RequestBody::RotateMasterKeyRequest,
                P::CreateRotateMasterKeyRequest(fbb, t));
}

Body SetOrgLimitsBody(uint64_t id, std::string_view org, uint64_t max_bytes, uint64_t max_entries,
                      std::string_view eviction_policy) {
  FBB fbb;
  auto o = fbb.CreateString(org);
  auto p = fbb.CreateString(eviction_policy);
  return Finish(fbb, id, P::RequestBody::SetOrgLimitsRequest,
                P::CreateSetOrgLimitsRequest(fbb, o, max_bytes, max_entries, p));
}

Body MoveOrgBody(uint64_t id, std::string_view org, std::string_view to_node) {
  FBB fbb;
  auto o = fbb.CreateString(org);
  auto t = fbb.CreateString(to_node);
  return Finish(fbb, id, P::RequestBody::MoveOrgRequest, P::CreateMoveOrgRequest(fbb, o, t));
}

Body DrainNodeBody(uint64_t id, std::string_view node) {
  FBB fbb;
  auto n = fbb.CreateString(node);
  return Finish(fbb, id, P::RequestBody::DrainNodeRequest, P::CreateDrainNodeRequest(fbb, n));
}

Body ImportOrgChunkBody(uint64_t id, std::string_view org, std::string_view file,
                        std::span<const uint8_t> data) {
  FBB fbb;
  auto o = fbb.CreateString(org);
  auto f = fbb.CreateString(file);
  auto d = fbb.CreateVector(data.data(), data.size());
  P::ImportOrgRequestBuilder b(fbb);
  b.add_phase(P::ImportPhase::CHUNK);
  b.add_org(o);
  b.add_file(f);
  b.add_data(d);
  return Finish(fbb, id, P::RequestBody::ImportOrgRequest, b.Finish());
}

Body RebalanceBody(uint64_t id) {
  FBB fbb;
  return Finish(fbb, id, P::RequestBody::RebalanceRequest, P::CreateRebalanceRequest(fbb));
}

Body KeyStatusBody(uint64_t id, std::string_view org) {
  FBB fbb;
  auto o = fbb.CreateString(org);
  return Finish(fbb, id, P::RequestBody::KeyStatusRequest, P::CreateKeyStatusRequest(fbb, o));
}

Body ListOrgsBody(uint64_t id) {
  FBB fbb;
  return Finish(fbb, id, P::RequestBody::ListOrgsRequest, P::CreateListOrgsRequest(fbb));
}

Body IssueTokenBody(uint64_t id, std::string_view org) {
  FBB fbb;
  auto o = fbb.CreateString(org);
  return Finish(fbb, id, P::RequestBody::IssueTokenRequest, P::CreateIssueTokenRequest(fbb, o));
}

Body RevokeTokenBody(uint64_t id, std::string_view org, std::string_view token_id) {
  FBB fbb;
  auto o = fbb.CreateString(org);
  auto t = OptionalString(fbb, token_id);
  return Finish(fbb, id, P::RequestBody::RevokeTokenRequest,
                P::CreateRevokeTokenRequest(fbb, o, t));
}

}  // namespace sealcache::fuzz
