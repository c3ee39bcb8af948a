#include "seed_corpus.h"

#include "sealcache/server/frame.h"
#include "service_fuzz_input.h"

namespace sealcache::fuzz {
namespace {

constexpr int64_t kSeedTtlMs = 60'000;
constexpr std::string_view kScratchNamespace = "scratch";
constexpr std::string_view kScratchOrg = "fuzz-scratch";

DigestBytes FreshDigest(uint8_t salt) {
  DigestBytes d;
  d.fill(0xE0);
  d[0] = salt;
  return d;
}

PutFields FreshPut(uint8_t salt, std::string_view name_space) {
  return {.digest = FreshDigest(salt),
          .vector = SeededVector(salt),
          .payload = {'a', 'n', 's', 'w', 'e', 'r', salt},
          .ttl_ms = kSeedTtlMs,
          .name_space = name_space};
}

SeedInput Seed(std::string name, SessionState state, std::vector<Body> bodies) {
  return {std::move(name), MakeFuzzInput(state, bodies)};
}

std::vector<SeedInput> DataSeeds() {
  using S = SessionState;
  const std::vector<PutFields> batch = {FreshPut(3, ""), FreshPut(4, kScratchNamespace)};
  const std::vector<float> query = SeededVector(1);
  return {
      Seed("seed-hello-org", S::kUnauthenticated, {HelloBody(1, kOrgAToken), PingBody(2)}),
      Seed("seed-ping", S::kOrgA, {PingBody(1)}),
      Seed("seed-put", S::kOrgA, {PutBody(1, FreshPut(1, "fuzz"))}),
      Seed("seed-put-batch", S::kOrgB, {PutBatchBody(1, batch)}),
      Seed("seed-get-entry", S::kOrgA, {GetEntryBody(1, SeededDigest(0), true)}),
      Seed("seed-lookup", S::kOrgA, {LookupBody(1, query, 3, 0.0f, "", true)}),
      Seed("seed-lookup-namespace", S::kOrgB,
           {LookupBody(1, query, 2, -1.0f, kSeededNamespace, false)}),
      Seed("seed-delete", S::kOrgA, {PutBody(1, FreshPut(2, "")), DeleteBody(2, FreshDigest(2))}),
      Seed("seed-set-expiry", S::kOrgA,
           {PutBody(1, FreshPut(6, "")), SetExpiryBody(2, FreshDigest(6), 0, 120'000)}),
      Seed("seed-invalidate", S::kOrgB,
           {PutBody(1, FreshPut(5, kScratchNamespace)), InvalidateBody(2, kScratchNamespace, 0)}),
      Seed("seed-stats", S::kOrgB, {StatsBody(1)}),
  };
}

std::vector<SeedInput> AdminSeeds() {
  using S = SessionState;
  const CreateOrgFields scratch{.org = kScratchOrg,
                                .dimension = 3,
                                .index_kind = "hnsw",
                                .hnsw_m = 8,
                                .ef_construction = 40,
                                .ef_search = 16,
                                .seal_threshold = 64};
  return {
      Seed("seed-hello-admin", S::kUnauthenticated, {HelloBody(1, kAdminToken), ListOrgsBody(2)}),
      Seed("seed-create-org-drop-org", S::kAdmin,
           {CreateOrgBody(1, scratch), DropOrgBody(2, kScratchOrg)}),
      Seed("seed-rotate-key", S::kAdmin, {RotateKeyBody(1, kOrgB)}),
      // To the key the fixture puts in this variable (service_fuzz_input.cc).
      Seed("seed-rotate-master-key", S::kAdmin,
           {RotateMasterKeyBody(1, "env:SEALCACHE_FUZZ_ROTATION_KEY")}),
      Seed("seed-set-org-limits", S::kAdmin, {SetOrgLimitsBody(1, kOrgA, 1u << 20, 1000, "lfu")}),
      Seed("seed-key-status", S::kAdmin, {KeyStatusBody(1, kOrgA)}),
      Seed("seed-list-orgs", S::kAdmin, {ListOrgsBody(1)}),
      Seed("seed-issue-token", S::kAdmin, {IssueTokenBody(1, kOrgA)}),
      // Revokes the token CreateOrg made for kOrgB; the fixture does not need it.
      Seed("seed-revoke-token", S::kAdmin, {RevokeTokenBody(1, kOrgB, "")}),
  };
}

// A Request whose union names `type` but holds no table: the verifier accepts it.
Body TypeWithoutTable(uint64_t id, protocol::RequestBody type) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(protocol::CreateRequest(fbb, id, type, 0), server::kFileIdentifier);
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

std::vector<SeedInput> RefusalSeeds() {
  using S = SessionState;
  using T = protocol::RequestBody;
  const Body not_a_request = {8, 0, 0, 0, 'S', 'C', 'P', '1', 0, 0, 0, 0};
  return {
      // Once crashed sealcached before any authentication (null table dereference).
      Seed("refusal-hello-without-its-table", S::kUnauthenticated,
           {TypeWithoutTable(1, T::HelloRequest)}),
      Seed("refusal-put-without-its-table", S::kOrgA, {TypeWithoutTable(1, T::PutRequest)}),
      Seed("refusal-unauthenticated", S::kUnauthenticated, {StatsBody(1), PingBody(2)}),
      Seed("refusal-bad-token", S::kUnauthenticated, {HelloBody(1, "sc_00"), PingBody(2)}),
      Seed("refusal-admin-operation-from-org", S::kOrgA, {ListOrgsBody(1)}),
      Seed("refusal-data-operation-from-admin", S::kAdmin, {StatsBody(1)}),
      Seed("refusal-not-a-request", S::kOrgA, {not_a_request}),
      // The cluster's requests: a single node (the fuzz fixture) refuses each.
      Seed("refusal-move-org-on-a-single-node", S::kAdmin, {MoveOrgBody(1, kOrgA, "node1")}),
      Seed("refusal-drain-node-on-a-single-node", S::kAdmin, {DrainNodeBody(1, "")}),
      Seed("refusal-rebalance-on-a-single-node", S::kAdmin, {RebalanceBody(1)}),
      Seed("refusal-import-org-on-a-single-node", S::kAdmin,
           {ImportOrgChunkBody(1, kScratchOrg, "data/000001.sst", std::vector<uint8_t>(64, 7))}),
  };
}

}  // namespace

std::vector<SeedInput> SeedCorpus() {
  std::vector<SeedInput> all = DataSeeds();
  for (auto* part : {AdminSeeds, RefusalSeeds}) {
    for (SeedInput& seed : part()) all.push_back(std::move(seed));
  }
  return all;
}

}  // namespace sealcache::fuzz
