// Eviction under SIGKILL: a real sealcached is killed while writers keep two orgs at their
// capacity limits (every put evicts), several times over. After each restart:
//   - no acknowledged write is lost unless a later write evicted it: with one writer per org
//     and no reads, LRU keeps exactly the newest entries, so every acknowledged id among the
//     limit's newest must read back with its payload and be found by its vector;
//   - the org is within its limit, and the counts in stats are the entries that read back.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "crash_support.h"
#include "sealcached_process.h"

namespace sealcache::crash {
namespace {

using test::SealcachedProcess;

constexpr uint32_t kDim = 8;
constexpr uint64_t kMaxEntries = 60;
constexpr int kRounds = 3;
constexpr int64_t kTtlMs = int64_t{24} * 3600 * 1000;

struct Org {
  std::string name, token;
  uint64_t salt = 0;
  std::atomic<uint64_t> acked{0};  // ids 0 .. acked-1 were acknowledged, in order
  uint64_t next = 0;               // the first id of the next round
};

TEST(CapacityCrash, SigkillDuringHeavyEvictionLosesNoAcknowledgedSurvivorAndCountsStayRight) {
  const std::string dir = test::MakeTempDir("sealcache-capcrash");
  SealcachedProcess server(SEALCACHED_PATH, dir);
  ASSERT_TRUE(server.Start({}));
  Org orgs[2];
  {
    auto admin = server.ConnectAs(server.AdminToken());
    ASSERT_NE(admin, nullptr);
    for (int i = 0; i < 2; ++i) {
      orgs[i].name = "evicting" + std::to_string(i);
      orgs[i].salt = 10 + i;
      client::OrgIndexOptions o;
      o.index_kind = "flat";
      o.limits = {0, kMaxEntries, "lru"};
      auto created = admin->CreateOrg(orgs[i].name, kDim, o);
      ASSERT_TRUE(created.ok()) << created.status().ToString();
      orgs[i].token = created->token;
    }
  }
  std::mt19937 rng(2026);
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (Org& org : orgs) {
      writers.emplace_back([&] {
        auto c = server.ConnectAs(org.token);
        if (c == nullptr) return;
        for (uint64_t id = org.next; !stop.load(); ++id) {
          const std::string payload = PayloadOf(org.salt, id);
          const auto vector = VectorOf(kDim, org.salt, id);
          if (!c->Put({DigestOf(org.salt, id), vector, Bytes(payload), kTtlMs, ""}).ok()) return;
          org.acked.store(id + 1);
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 700));
    EXPECT_EQ(server.Kill(SIGKILL), 128 + SIGKILL);
    stop = true;
    for (auto& w : writers) w.join();
    ASSERT_TRUE(server.Start({})) << server.Log();

    for (Org& org : orgs) {
      const uint64_t acked = org.acked.load();
      ASSERT_GT(acked, org.next + kMaxEntries) << "the round wrote too little to evict";
      auto c = server.ConnectAs(org.token);
      ASSERT_NE(c, nullptr);
      // The newest acknowledged ids; the put in flight at the kill may have evicted one more.
      for (uint64_t id = acked - kMaxEntries + 1; id < acked; ++id) {
        auto e = c->Get(DigestOf(org.salt, id));
        ASSERT_TRUE(e.ok()) << org.name << " lost acknowledged entry " << id << " (acked " << acked
                            << "): " << e.status().ToString();
        EXPECT_EQ(Text(e->payload), PayloadOf(org.salt, id));
        const auto vector = VectorOf(kDim, org.salt, id);
        auto hits = c->Lookup({vector, 1, kSelfMatchScore});
        ASSERT_TRUE(hits.ok());
        ASSERT_EQ(hits->size(), 1u) << "entry " << id << " is missing from the index";
      }
      // Nothing older than the limit's window survived, and the counts are what reads back.
      uint64_t live = 0;
      for (uint64_t id = 0; id <= acked; ++id) live += c->Get(DigestOf(org.salt, id), false).ok();
      EXPECT_LE(live, kMaxEntries);
      auto st = c->Stats();
      ASSERT_TRUE(st.ok());
      EXPECT_EQ((*st)->body_as_StatsResponse()->entries(), live) << org.name;
      EXPECT_EQ((*st)->body_as_StatsResponse()->max_entries(), kMaxEntries);
      org.next = acked + 1;
    }
  }
  EXPECT_EQ(server.Kill(SIGTERM), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sealcache::crash
