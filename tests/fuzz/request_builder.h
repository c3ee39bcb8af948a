// Request bodies of every protocol type (server/protocol.fbs), built with the flatbuffers
// builder: the fuzz fixture uses them to set up its orgs, the seed-corpus generator to write
// one valid frame per request type.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace sealcache::fuzz {

using Body = std::vector<uint8_t>;
using DigestBytes = std::array<uint8_t, 32>;

struct PutFields {
  DigestBytes digest{};
  std::vector<float> vector;
  std::vector<uint8_t> payload;
  int64_t ttl_ms = 0;
  std::string_view name_space;  // empty: absent
};

struct CreateOrgFields {
  std::string_view org;
  uint32_t dimension = 0;
  std::string_view index_kind;  // empty: absent (the server's default)
  uint32_t hnsw_m = 0;
  uint32_t ef_construction = 0;
  uint32_t ef_search = 0;
  uint32_t seal_threshold = 0;
};

Body HelloBody(uint64_t id, std::string_view token);
Body PingBody(uint64_t id);
Body PutBody(uint64_t id, const PutFields& put);
Body PutBatchBody(uint64_t id, std::span<const PutFields> items);
Body GetEntryBody(uint64_t id, const DigestBytes& digest, bool with_payload);
Body LookupBody(uint64_t id, std::span<const float> vector, uint32_t k, float min_score,
                std::string_view name_space, bool with_payload);
Body DeleteBody(uint64_t id, const DigestBytes& digest);
Body SetExpiryBody(uint64_t id, const DigestBytes& digest, int64_t expires_ms, int64_t ttl_ms);
Body InvalidateBody(uint64_t id, std::string_view name_space, int64_t older_than_ms);
Body StatsBody(uint64_t id);
Body CreateOrgBody(uint64_t id, const CreateOrgFields& org);
Body DropOrgBody(uint64_t id, std::string_view org);
Body RotateKeyBody(uint64_t id, std::string_view org);
Body RotateMasterKeyBody(uint64_t id, std::string_view to);
Body SetOrgLimitsBody(uint64_t id, std::string_view org, uint64_t max_bytes, uint64_t max_entries,
                      std::string_view eviction_policy);
// The cluster's moves (answered FAILED_PRECONDITION by a single node).
Body MoveOrgBody(uint64_t id, std::string_view org, std::string_view to_node);
Body DrainNodeBody(uint64_t id, std::string_view node);
Body RebalanceBody(uint64_t id);
Body ImportOrgChunkBody(uint64_t id, std::string_view org, std::string_view file,
                        std::span<const uint8_t> data);
Body KeyStatusBody(uint64_t id, std::string_view org);
Body ListOrgsBody(uint64_t id);
Body IssueTokenBody(uint64_t id, std::string_view org);
// token_id empty: absent (every token of the org).
Body RevokeTokenBody(uint64_t id, std::string_view org, std::string_view token_id);

}  // namespace sealcache::fuzz
