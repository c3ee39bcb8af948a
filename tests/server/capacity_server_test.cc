// Capacity limits end to end, through the native protocol and a real client: a Zipfian
// workload at three times an org's limit, other orgs untouched, noeviction, the server-wide
// limit with one org bursting, limits changed at run time, lookups that never return an
// evicted entry, and the counters in stats, list-orgs and /metrics.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "sealcached_process.h"
#include "server_fixture.h"

namespace sealcache::server::testing {
namespace {

constexpr size_t kPayloadBytes = 200;
// What one entry of these tests counts: overhead, payload, an 8-float vector.
constexpr uint64_t kVectorFloats = 8;  // the fixture's kDim
constexpr uint64_t kEntryBytes =
    storage::kEntryOverheadBytes + kPayloadBytes + kVectorFloats * sizeof(float);

std::string PayloadOf(uint64_t i) {
  std::string p = "entry " + std::to_string(i) + " ";
  p.resize(kPayloadBytes, 'z');
  return p;
}

// Ranks 0..n-1 with P(rank r) proportional to 1 / (r + 1)^s.
class Zipf {
 public:
  Zipf(size_t n, double s, uint64_t seed) : rng_(seed) {
    cdf_.resize(n);
    double sum = 0;
    for (size_t r = 0; r < n; ++r) cdf_[r] = sum += 1.0 / std::pow(static_cast<double>(r + 1), s);
    for (double& c : cdf_) c /= sum;
  }
  size_t Next() {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng_);
    return std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin();
  }

 private:
  std::mt19937_64 rng_;
  std::vector<double> cdf_;
};

class CapacityServerTest : public ServerTest {
 protected:
  static_assert(kDim == kVectorFloats);
  std::unique_ptr<client::Client> NewLimitedOrg(const std::string& org, uint64_t max_bytes,
                                                uint64_t max_entries, const std::string& policy) {
    auto admin = ConnectAs(AdminToken());
    client::OrgIndexOptions o;
    o.index_kind = "flat";
    o.limits = {max_bytes, max_entries, policy};
    auto created = admin->CreateOrg(org, kDim, o);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    tokens_[org] = created->token;
    return ConnectAs(created->token);
  }
  uint64_t StatsField(client::Client& c, uint64_t (*pick)(const protocol::StatsResponse&)) {
    auto f = c.Stats();
    EXPECT_TRUE(f.ok());
    return pick(*(*f)->body_as_StatsResponse());
  }
  static uint64_t Bytes(const protocol::StatsResponse& s) { return s.bytes(); }
  static uint64_t Entries(const protocol::StatsResponse& s) { return s.entries(); }
  static uint64_t Evictions(const protocol::StatsResponse& s) { return s.evictions_org_limit(); }
};

TEST_F(CapacityServerTest, AZipfianWorkloadAtThreeTimesTheLimitKeepsTheHotSetAndTheBound) {
  StartServer();
  constexpr uint64_t kCapacity = 400;  // entries' worth of bytes
  constexpr size_t kKeys = 3 * kCapacity;
  constexpr size_t kHotKeys = 40;  // the top 10% of the limit
  auto acme = NewLimitedOrg("acme", kCapacity * kEntryBytes, 0, "lru");
  auto quiet = NewOrg("quiet");
  for (uint64_t i = 0; i < 50; ++i) ASSERT_TRUE(Put(*quiet, 1'000'000 + i, PayloadOf(i)).ok());

  // A cache in front of an LLM: look up, on a miss store the answer.
  Zipf zipf(kKeys, 1.1, 7);
  uint64_t hot_gets = 0, hot_hits = 0, puts = 0;
  constexpr int kOps = 12'000;
  for (int op = 0; op < kOps; ++op) {
    const uint64_t key = zipf.Next();
    auto got = acme->Get(MakeDigest(key));
    if (got.ok()) {
      EXPECT_EQ(std::string(got->payload.begin(), got->payload.end()), PayloadOf(key));
    } else {
      ASSERT_TRUE(got.status().IsNotFound()) << got.status().ToString();
      ASSERT_TRUE(Put(*acme, key, PayloadOf(key)).ok());
      puts++;
    }
    if (op >= kOps / 2 && key < kHotKeys) {  // once warm
      hot_gets++;
      hot_hits += got.ok();
    }
    if (op % 1000 == 0) {
      ASSERT_LE(StatsField(*acme, Bytes), kCapacity * kEntryBytes) << "over the limit at " << op;
    }
  }
  EXPECT_GT(puts, 3 * kCapacity) << "the workload did not write three times the limit";
  const double hot_rate = static_cast<double>(hot_hits) / static_cast<double>(hot_gets);
  EXPECT_GE(hot_rate, 0.95) << hot_hits << " of " << hot_gets << " hot gets hit";
  EXPECT_LE(StatsField(*acme, Bytes), kCapacity * kEntryBytes);
  EXPECT_GT(StatsField(*acme, Evictions), 0u);
  EXPECT_EQ(StatsField(*quiet, Entries), 50u) << "another org lost nothing";
  for (uint64_t i = 0; i < 50; ++i) EXPECT_TRUE(quiet->Get(MakeDigest(1'000'000 + i)).ok());

  // Lookups never find an evicted entry: every hit is a live one.
  for (uint64_t key = 0; key < kKeys; key += 7) {
    const auto vector = MakeVector(kDim, key);
    auto hits = acme->Lookup({vector, 3, 0.0f});
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    for (const auto& h : *hits) {
      EXPECT_TRUE(acme->Get(h.entry.digest, false).ok()) << "a lookup returned an evicted entry";
    }
  }
}

TEST_F(CapacityServerTest, NoevictionRefusesWithResourceExhaustedAndLosesNothing) {
  StartServer();
  auto acme = NewLimitedOrg("acme", 0, 20, "noeviction");
  for (uint64_t i = 0; i < 20; ++i) ASSERT_TRUE(Put(*acme, i, PayloadOf(i)).ok());
  auto refused = Put(*acme, 20, PayloadOf(20));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("capacity limit"), std::string::npos);
  for (uint64_t i = 0; i < 20; ++i) EXPECT_TRUE(acme->Get(MakeDigest(i)).ok()) << i;
  EXPECT_FALSE(acme->Get(MakeDigest(20)).ok());
  EXPECT_EQ(StatsField(*acme, Entries), 20u);
}

TEST_F(CapacityServerTest, TheServerWideLimitLeavesTheQuietOrgsTheirShareWhenOneBursts) {
  ServerOptions o = Options();
  constexpr uint64_t kShare = 100;  // entries per org
  o.service.store.max_data_bytes = 8 * kShare * kEntryBytes;
  StartServer(o);
  std::vector<std::unique_ptr<client::Client>> orgs;
  for (int i = 0; i < 8; ++i) orgs.push_back(NewOrg("org" + std::to_string(i), kDim, "flat"));
  for (int i = 1; i < 8; ++i) {
    for (uint64_t k = 0; k < kShare / 2; ++k) {
      ASSERT_TRUE(Put(*orgs[i], i * 100'000 + k, PayloadOf(k)).ok());
    }
  }
  for (uint64_t k = 0; k < 20 * kShare; ++k) {  // org0 bursts: 20 shares of writes
    auto put = Put(*orgs[0], k, PayloadOf(k));
    ASSERT_TRUE(put.ok()) << put.status().ToString();
  }
  for (int i = 1; i < 8; ++i) {
    EXPECT_EQ(StatsField(*orgs[i], Entries), kShare / 2) << "org" << i << " lost entries";
  }
  uint64_t total = 0;
  for (auto& c : orgs) total += StatsField(*c, Bytes);
  EXPECT_LE(total, o.service.store.max_data_bytes);
  EXPECT_GE(StatsField(*orgs[0], Entries), 8 * kShare - 7 * kShare / 2 - 1)
      << "the burst used what the quiet orgs left";
}

TEST_F(CapacityServerTest, LimitsChangeAtRunTimeAndShowInListOrgsStatsAndMetrics) {
  ServerOptions o = Options();
  o.metrics_port = test::FreePort();
  StartServer(o);
  auto acme = NewOrg("acme", kDim, "flat");
  for (uint64_t i = 0; i < 100; ++i) ASSERT_TRUE(Put(*acme, i, PayloadOf(i)).ok());
  auto admin = ConnectAs(AdminToken());
  EXPECT_EQ(admin->SetOrgLimits("acme", {0, 0, "fifo"}).status().code(),
            Status::Code::kInvalidArgument);
  auto evicted = admin->SetOrgLimits("acme", {30 * kEntryBytes, 0, "lfu"});
  ASSERT_TRUE(evicted.ok()) << evicted.status().ToString();
  EXPECT_EQ(*evicted, 70u);
  EXPECT_EQ(StatsField(*acme, Entries), 30u);
  // The index forgot them too: a lookup of an evicted entry's own vector does not find it.
  size_t found = 0;
  for (uint64_t i = 0; i < 100; ++i) {
    const auto vector = MakeVector(kDim, i);
    auto hits = acme->Lookup({vector, 1, 0.999f});
    ASSERT_TRUE(hits.ok());
    found += hits->size();
  }
  EXPECT_EQ(found, 30u);
  auto listed = admin->ListOrgs();
  ASSERT_TRUE(listed.ok());
  const auto* summary = (*listed)->body_as_ListOrgsResponse()->orgs()->Get(0);
  EXPECT_EQ(summary->max_bytes(), 30 * kEntryBytes);
  EXPECT_EQ(summary->entries(), 30u);
  EXPECT_EQ(summary->bytes(), 30 * kEntryBytes);
  EXPECT_EQ(summary->eviction_policy()->str(), "lfu");
  const std::string metrics = test::ScrapeMetrics(o.metrics_port);
  EXPECT_EQ(
      test::MetricValue(metrics, "sealcache_evictions_total{org=\"acme\",reason=\"org_limit\"}"),
      70.0)
      << metrics;
  EXPECT_EQ(test::MetricValue(metrics, "sealcache_org_bytes{org=\"acme\"}"), 30.0 * kEntryBytes);
  EXPECT_EQ(test::MetricValue(metrics, "sealcache_org_max_bytes{org=\"acme\"}"),
            30.0 * kEntryBytes);
  EXPECT_EQ(test::MetricValue(metrics, "sealcache_org_entries{org=\"acme\"}"), 30.0);
  Restart(o);
  admin = ConnectAs(AdminToken());
  acme = ConnectAs(tokens_["acme"]);
  EXPECT_EQ(StatsField(*acme, Bytes), 30 * kEntryBytes) << "counted again from the files";
  for (uint64_t i = 100; i < 110; ++i) ASSERT_TRUE(Put(*acme, i, PayloadOf(i)).ok());
  EXPECT_EQ(StatsField(*acme, Entries), 30u) << "the limit survived the restart";
  auto f = acme->Stats();
  EXPECT_EQ((*f)->body_as_StatsResponse()->evictions_org_limit(), 10u);
  EXPECT_EQ((*f)->body_as_StatsResponse()->eviction_policy()->str(), "lfu");
}

}  // namespace
}  // namespace sealcache::server::testing
