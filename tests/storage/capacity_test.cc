// Capacity limits and eviction in the store: per-org max_bytes and max_entries with the lru,
// lfu, ttl and noeviction policies, the server-wide max_data_bytes, exact logical byte counts
// (also after a restart), and limits changed at run time.
#include "capacity.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "sealcache/storage/digest_map.h"
#include "store_fixture.h"

namespace sealcache::storage {
namespace {

using internal::CapacityTracker;
using testing::MakeDigest;
using testing::StoreTest;

constexpr int64_t kHour = 3'600'000;

EntryMeta Meta(uint64_t i, int64_t created, int64_t expires, uint64_t hits = 0) {
  EntryMeta m;
  m.digest = MakeDigest(i);
  m.created_ms = created;
  m.expires_ms = expires;
  m.hits = hits;
  return m;
}

std::set<uint64_t> Ids(const std::vector<CapacityTracker::Victim>& victims, uint64_t up_to) {
  std::set<uint64_t> out;
  for (const auto& v : victims) {
    for (uint64_t i = 0; i < up_to; ++i) {
      if (MakeDigest(i) == v.digest) out.insert(i);
    }
  }
  return out;
}

TEST(CapacityTracker, EachPolicyGivesUpEntriesInItsOrder) {
  CapacityTracker lru(EvictionPolicy::kLru);
  lru.Configure(EvictionPolicy::kLru, true);
  for (uint64_t i = 0; i < 5; ++i) lru.Upsert(Meta(i, 100 + i, 10'000 - i), 10);
  lru.Touch(MakeDigest(0), 500);  // read last: the most recent now
  EXPECT_EQ(Ids(lru.ChooseVictims(20, 0, Digest{}), 5), (std::set<uint64_t>{1, 2}));

  CapacityTracker lfu(EvictionPolicy::kLfu);
  lfu.Configure(EvictionPolicy::kLfu, true);
  for (uint64_t i = 0; i < 5; ++i) lfu.Upsert(Meta(i, 100 + i, 10'000, /*hits=*/10 - i), 10);
  EXPECT_EQ(Ids(lfu.ChooseVictims(0, 2, Digest{}), 5), (std::set<uint64_t>{3, 4}));

  CapacityTracker ttl(EvictionPolicy::kTtl);
  ttl.Configure(EvictionPolicy::kTtl, true);
  for (uint64_t i = 0; i < 5; ++i) ttl.Upsert(Meta(i, 100, 10'000 - i), 10);
  EXPECT_EQ(Ids(ttl.ChooseVictims(10, 0, MakeDigest(4)), 5), (std::set<uint64_t>{3}))
      << "the entry being written is never its own victim";
}

// The tracker's entries live in a DigestMap that grows and shrinks a few cells per write:
// hashes, and a client's own digests that differ in one byte only, are each found, removed,
// expired, counted and ordered, through its table's growths and shrinks.
TEST(CapacityTracker, EveryDigestIsTrackedThroughItsTablesResizes) {
  CapacityTracker tracker(EvictionPolicy::kLru);
  std::vector<Digest> digests;
  for (uint64_t i = 0; i < 2000; ++i) digests.push_back(MakeDigest(i));
  for (size_t byte = 0; byte < kDigestSize; ++byte) {
    for (int value = 1; value < 256; value += 3) {
      Digest d{};
      d[byte] = static_cast<uint8_t>(value);
      digests.push_back(d);
    }
  }
  for (size_t i = 0; i < digests.size(); ++i) {
    EntryMeta m;
    m.digest = digests[i];
    m.created_ms = static_cast<int64_t>(i);  // (the lru order: by creation)
    m.expires_ms = i % 3 == 0 ? 50 : kHour;
    tracker.Upsert(m, 10);
  }
  ASSERT_EQ(tracker.entries(), digests.size());
  for (const Digest& d : digests) ASSERT_TRUE(tracker.FindLive(d, 0).has_value());
  tracker.ForgetExpired(50);                                                  // every third goes
  for (size_t i = 1; i < digests.size(); i += 3) tracker.Remove(digests[i]);  // and the next
  std::vector<Digest> left;
  for (size_t i = 2; i < digests.size(); i += 3) left.push_back(digests[i]);
  ASSERT_EQ(tracker.entries(), left.size());
  ASSERT_EQ(tracker.bytes(), 10 * left.size());
  for (size_t i = 0; i < digests.size(); ++i) {
    ASSERT_EQ(tracker.FindLive(digests[i], 60).has_value(), i % 3 == 2) << i;
  }
  tracker.Configure(EvictionPolicy::kLru, true);  // every map's entries into the order
  const auto victims = tracker.ChooseVictims(0, left.size(), Digest{});
  ASSERT_EQ(victims.size(), left.size());
  for (size_t i = 0; i < left.size(); ++i) EXPECT_EQ(victims[i].digest, left[i]) << i;
}

TEST(CapacityTracker, AVictimInFlightIsNotChosenTwiceAndReturnsIfItsEvictionFails) {
  CapacityTracker t(EvictionPolicy::kLru);
  t.Configure(EvictionPolicy::kLru, true);
  for (uint64_t i = 0; i < 4; ++i) t.Upsert(Meta(i, 100 + i, 10'000), 10);
  auto first = t.ChooseVictims(10, 0, Digest{});
  auto second = t.ChooseVictims(10, 0, Digest{});
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(first[0].digest, second[0].digest);
  EXPECT_EQ(t.bytes(), 40u);
  EXPECT_EQ(t.bytes_after_pending(), 20u);
  t.Evicted(first[0]);
  t.Release(second[0]);
  EXPECT_EQ(t.bytes(), 30u);
  EXPECT_EQ(t.entries(), 3u);
  EXPECT_EQ(Ids(t.ChooseVictims(10, 0, Digest{}), 4), (std::set<uint64_t>{1}));
}

TEST(CapacityTracker, ExpiredEntriesLeaveTheCounts) {
  CapacityTracker t(EvictionPolicy::kLru);
  t.Upsert(Meta(1, 0, 1000), 100);
  t.Upsert(Meta(2, 0, 2000), 50);
  t.ForgetExpired(999);
  EXPECT_EQ(t.bytes(), 150u);
  t.ForgetExpired(1000);
  EXPECT_EQ(t.bytes(), 50u);
  EXPECT_EQ(t.entries(), 1u);
  t.SetExpiry(MakeDigest(2), 5000);
  t.ForgetExpired(2000);
  EXPECT_EQ(t.entries(), 1u);
}

// Rewrites move an entry's expiry later without touching the expiry order (its filing
// stays early and is moved when it comes due); whatever the moves, an entry leaves the
// counts at its latest expiry, earlier or later than its first.
TEST(CapacityTracker, AnEntryLeavesAtItsLatestExpiryHoweverItMoved) {
  CapacityTracker t(EvictionPolicy::kLru);
  for (int64_t k = 1; k <= 10; ++k) t.Upsert(Meta(1, 0, 1000 * k), 100);
  t.ForgetExpired(1000);
  t.ForgetExpired(9999);
  EXPECT_EQ(t.entries(), 1u);
  EXPECT_EQ(t.bytes(), 100u);
  t.ForgetExpired(10'000);
  EXPECT_EQ(t.entries(), 0u);
  EXPECT_EQ(t.bytes(), 0u);
  // Later, then earlier than its first expiry.
  t.Upsert(Meta(2, 0, 20'000), 10);
  t.SetExpiry(MakeDigest(2), 40'000);
  t.SetExpiry(MakeDigest(2), 15'000);
  t.ForgetExpired(14'999);
  EXPECT_EQ(t.entries(), 1u);
  t.ForgetExpired(15'000);
  EXPECT_EQ(t.entries(), 0u);
  // Removed and written again: only the new entry's expiry counts.
  t.Upsert(Meta(3, 0, 30'000), 10);
  t.Remove(MakeDigest(3));
  t.Upsert(Meta(3, 0, 50'000), 10);
  t.Upsert(Meta(4, 0, 40'000), 10);
  t.ForgetExpired(30'000);
  EXPECT_EQ(t.entries(), 2u);
  t.ForgetExpired(40'000);
  EXPECT_EQ(t.entries(), 1u);
  t.ForgetExpired(50'000);
  EXPECT_EQ(t.entries(), 0u);
}

TEST(CapacityTracker, ReplacingOrReExpiringAnEntryMovesItInEveryOrderAlsoWhileItIsAVictim) {
  CapacityTracker t(EvictionPolicy::kTtl);
  t.Configure(EvictionPolicy::kTtl, true);
  for (uint64_t i = 0; i < 4; ++i) t.Upsert(Meta(i, 100, 1000 * (i + 1)), 10);
  // Entry 0 is chosen; a put replaces it before its eviction commits: the new entry is
  // live, counted once, not in flight, and the stale eviction changes nothing.
  auto chosen = t.ChooseVictims(10, 0, Digest{});
  ASSERT_EQ(Ids(chosen, 4), (std::set<uint64_t>{0}));
  t.Upsert(Meta(0, 200, 9000), 30);
  EXPECT_EQ(t.bytes(), 60u);
  EXPECT_EQ(t.bytes_after_pending(), 60u);
  t.Evicted(chosen[0]);
  EXPECT_EQ(t.entries(), 4u);
  // The soonest to expire is now entry 1; moved past every other, entry 2 goes first.
  t.SetExpiry(MakeDigest(1), 20'000);
  auto next = t.ChooseVictims(10, 0, Digest{});
  ASSERT_EQ(Ids(next, 4), (std::set<uint64_t>{2}));
  // A victim whose expiry changes while it is in flight, then released, is a candidate
  // again at its new place.
  t.SetExpiry(MakeDigest(2), 30'000);
  t.Release(next[0]);
  EXPECT_EQ(Ids(t.ChooseVictims(0, 3, Digest{}), 4), (std::set<uint64_t>{3, 0, 1}));
  // Switching the policy rebuilds the order from the entries not in flight (the three just
  // chosen stay out of it).
  t.Configure(EvictionPolicy::kLru, true);
  EXPECT_EQ(Ids(t.ChooseVictims(0, 1, Digest{}), 4), (std::set<uint64_t>{2}));
  // Expiry follows the latest expiry of each: 0 at 9,000, 1 at 20,000, 2 at 30,000,
  // 3 at 4,000.
  t.ForgetExpired(9000);
  EXPECT_EQ(t.entries(), 2u);
  EXPECT_EQ(t.bytes(), 20u);
  t.ForgetExpired(30'000);
  EXPECT_EQ(t.entries(), 0u);
  EXPECT_EQ(t.bytes(), 0u);
  EXPECT_EQ(t.bytes_after_pending(), 0u);
}

class Capacity : public StoreTest {
 protected:
  void CreateLimitedOrg(const std::string& org, OrgLimits limits) {
    OrgConfig c;
    c.dimension = kDim;
    c.limits = std::move(limits);
    Status s = store_->CreateOrg(org, c);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  // What the files say: the logical bytes of every live entry, from its metadata.
  uint64_t BytesFromMetadata(const std::string& org) {
    uint64_t bytes = 0;
    EXPECT_TRUE(store_
                    ->ScanMeta(org,
                               [&](const EntryMeta& m) {
                                 bytes += EntryLogicalBytes(m, kDim);
                                 return true;
                               })
                    .ok());
    return bytes;
  }
  size_t Live(const std::string& org, uint64_t from, uint64_t to) {
    size_t n = 0;
    for (uint64_t i = from; i < to; ++i) n += store_->Get(org, MakeDigest(i), false).ok();
    return n;
  }
};

TEST_F(Capacity, AnOrgAtMaxEntriesEvictsTheLeastRecentlyUsedInThePutsOwnWrite) {
  Open();
  CreateLimitedOrg("acme", {0, 10, "lru"});
  CreateOrg("quiet");
  for (uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(Put("quiet", i, "stays").ok());
  uint64_t evicted = 0;
  for (uint64_t i = 0; i < 30; ++i) {
    clock_.Advance(10);
    if (i >= 10) {
      ASSERT_TRUE(store_->Get("acme", MakeDigest(0)).ok()) << "entry 0 is hot";
    }
    auto put = Put("acme", i, "payload " + std::to_string(i));
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    evicted += put->evicted.count;
    EXPECT_EQ(put->evicted.slots.size(), put->evicted.count) << "the index learns every slot";
  }
  auto st = store_->Stats("acme");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->live_entries, 10u);
  EXPECT_EQ(evicted, 20u);
  EXPECT_EQ(st->evictions_org_limit, 20u);
  EXPECT_EQ(st->evictions_server_limit, 0u);
  EXPECT_TRUE(store_->Get("acme", MakeDigest(0)).ok()) << "the hot entry survived";
  EXPECT_EQ(Live("acme", 21, 30), 9u) << "the newest ones are there";
  EXPECT_EQ(Live("acme", 1, 21), 0u);
  EXPECT_EQ(CountVectors("acme"), 10u) << "evicted vectors are gone from the store";
  EXPECT_EQ(Live("quiet", 0, 5), 5u) << "another org lost nothing";
  EXPECT_EQ(st->logical_bytes, BytesFromMetadata("acme"));
}

TEST_F(Capacity, MaxBytesCountsPayloadVectorAndMetadataExactlyAlsoAfterARestart) {
  Open();
  const uint64_t entry = kEntryOverheadBytes + 2 + 1000 + kDim * sizeof(float);
  CreateLimitedOrg("acme", {10 * entry, 0, ""});  // the default policy: lru
  for (uint64_t i = 0; i < 25; ++i) {
    clock_.Advance(1);
    ASSERT_TRUE(Put("acme", i, std::string(1000, 'x'), kHour, "ns").ok());
  }
  auto st = store_->Stats("acme");
  EXPECT_EQ(st->logical_bytes, 10 * entry);
  EXPECT_EQ(st->live_entries, 10u);
  EXPECT_EQ(st->eviction_policy, EvictionPolicy::kLru);
  EXPECT_EQ(BytesFromMetadata("acme"), 10 * entry);
  Open();  // a restart counts from the files
  st = store_->Stats("acme");
  EXPECT_EQ(st->logical_bytes, 10 * entry);
  EXPECT_EQ(st->live_entries, 10u);
  EXPECT_EQ(st->limits.max_bytes, 10 * entry);
  ASSERT_TRUE(Put("acme", 100, std::string(1000, 'x'), kHour, "ns").ok());
  EXPECT_EQ(store_->Stats("acme")->live_entries, 10u) << "the limits came back with the org";
  EXPECT_EQ(store_->TotalLogicalBytes(), 10 * entry);
}

TEST_F(Capacity, NoevictionRefusesTheWriteAndChangesNothing) {
  Open();
  CreateLimitedOrg("acme", {0, 3, "noeviction"});
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(Put("acme", i, "kept").ok());
  auto refused = Put("acme", 3, "one too many");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("noeviction"), std::string::npos);
  EXPECT_EQ(Live("acme", 0, 4), 3u);
  EXPECT_EQ(CountVectors("acme"), 3u);
  // Replacing an entry adds none: allowed.
  ASSERT_TRUE(Put("acme", 1, "replaced").ok());
  EXPECT_EQ(PayloadOf("acme", 1), "replaced");
}

TEST_F(Capacity, TtlEvictsTheSoonestToExpireAndLfuTheLeastRead) {
  Open();
  CreateLimitedOrg("ttl", {0, 3, "ttl"});
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(Put("ttl", i, "x", kHour * (3 - i)).ok());
  ASSERT_TRUE(Put("ttl", 9, "x", kHour * 10).ok());
  EXPECT_FALSE(store_->Get("ttl", MakeDigest(2)).ok()) << "expired soonest";
  EXPECT_EQ(Live("ttl", 0, 2), 2u);

  CreateLimitedOrg("lfu", {0, 3, "lfu"});
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(Put("lfu", i, "x").ok());
  for (int n = 0; n < 3; ++n) {
    ASSERT_TRUE(store_->Get("lfu", MakeDigest(0)).ok());
    ASSERT_TRUE(store_->Get("lfu", MakeDigest(2)).ok());
  }
  ASSERT_TRUE(Put("lfu", 9, "x").ok());
  EXPECT_FALSE(store_->Get("lfu", MakeDigest(1)).ok()) << "read least";
}

TEST_F(Capacity, AnEntryLargerThanTheLimitIsRefusedWithoutEvictingAnything) {
  Open();
  CreateLimitedOrg("acme", {2000, 0, "lru"});
  ASSERT_TRUE(Put("acme", 1, "small").ok());
  auto big = Put("acme", 2, std::string(4000, 'b'));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(PayloadOf("acme", 1), "small");
}

TEST_F(Capacity, LimitsChangedAtRunTimeEvictAtOnceAndPersist) {
  Open();
  CreateOrg("acme");
  for (uint64_t i = 0; i < 20; ++i) {
    clock_.Advance(1);
    ASSERT_TRUE(Put("acme", i, "x").ok());
  }
  auto bad = store_->SetOrgLimits("acme", {0, 5, "fifo"});
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store_->Stats("acme")->live_entries, 20u) << "a refused change changes nothing";
  auto evicted = store_->SetOrgLimits("acme", {0, 5, "lru"});
  ASSERT_TRUE(evicted.ok()) << evicted.status().ToString();
  EXPECT_EQ(evicted->count, 15u);
  EXPECT_EQ(evicted->slots.size(), 15u);
  EXPECT_EQ(Live("acme", 15, 20), 5u);
  EXPECT_EQ(store_->GetOrg("acme")->limits.max_entries, 5u);
  Open();
  EXPECT_EQ(store_->GetOrg("acme")->limits.max_entries, 5u);
  EXPECT_EQ(store_->GetOrg("acme")->limits.eviction_policy, "lru");
  ASSERT_TRUE(store_->SetOrgLimits("acme", {}).ok());  // no limits again
  for (uint64_t i = 100; i < 110; ++i) ASSERT_TRUE(Put("acme", i, "x").ok());
  EXPECT_EQ(store_->Stats("acme")->live_entries, 15u);
}

TEST_F(Capacity, TheServerWideLimitEvictsFromTheOrgFurthestOverItsShare) {
  StoreOptions o = Options();
  const uint64_t entry = kEntryOverheadBytes + 100 + kDim * sizeof(float);
  o.max_data_bytes = 40 * entry;  // 4 orgs: a share of 10 entries each
  Open(o);
  for (const char* org : {"a", "b", "c", "burst"}) CreateOrg(org);
  for (const char* org : {"a", "b", "c"}) {
    for (uint64_t i = 0; i < 8; ++i) ASSERT_TRUE(Put(org, i, std::string(100, 'q')).ok());
  }
  for (uint64_t i = 0; i < 100; ++i) {
    clock_.Advance(1);
    auto put = Put("burst", 1000 + i, std::string(100, 'b'));
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    EXPECT_TRUE(put->evicted_elsewhere.empty()) << "only the burst gives room";
  }
  for (const char* org : {"a", "b", "c"}) {
    EXPECT_EQ(Live(org, 0, 8), 8u) << org << " kept its share";
  }
  EXPECT_LE(store_->TotalLogicalBytes(), 40 * entry);
  auto st = store_->Stats("burst");
  EXPECT_EQ(st->live_entries, 40u - 24u);
  EXPECT_GT(st->evictions_server_limit, 0u);
  // A quiet org that grows past its share while the burst is under its own gets room from
  // the org furthest over: still the burst.
  for (uint64_t i = 8; i < 12; ++i) {
    auto put = Put("a", i, std::string(100, 'q'));
    ASSERT_TRUE(put.ok());
    EXPECT_EQ(put->evicted.count, 0u);
    ASSERT_EQ(put->evicted_elsewhere.size(), 1u);
    EXPECT_EQ(put->evicted_elsewhere[0].first, "burst");
  }
  EXPECT_EQ(Live("a", 0, 12), 12u);
  EXPECT_LE(store_->TotalLogicalBytes(), 40 * entry);
}

// Writers and readers of one org at its limit at once: the counts stay exact, the bound holds
// up to the writes in flight, every survivor is whole.
TEST_F(Capacity, ConcurrentWritersAtTheLimitKeepTheCountsExact) {
  Open();
  constexpr uint64_t kLimit = 50, kPerThread = 300;
  constexpr int kWriters = 4;
  CreateLimitedOrg("acme", {0, kLimit, "lru"});
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < kPerThread; ++i) {
        const uint64_t id = t * 1'000'000 + i;
        if (!Put("acme", id, "payload " + std::to_string(id)).ok()) failed = true;
        // Some writers also replace their own recent entries.
        if (i % 5 == 0 && !Put("acme", id, "again " + std::to_string(id)).ok()) failed = true;
      }
    });
  }
  threads.emplace_back([&] {
    for (uint64_t i = 0; i < kPerThread; ++i) (void)store_->Get("acme", MakeDigest(i));
  });
  for (auto& t : threads) t.join();
  EXPECT_FALSE(failed);
  auto st = store_->Stats("acme");
  EXPECT_LE(st->live_entries, kLimit + kWriters);
  EXPECT_EQ(st->logical_bytes, BytesFromMetadata("acme"));
  uint64_t readable = 0;
  for (int t = 0; t < kWriters; ++t)
    readable += Live("acme", t * 1'000'000, t * 1'000'000 + kPerThread);
  EXPECT_EQ(readable, st->live_entries);
  EXPECT_EQ(CountVectors("acme"), st->live_entries);
}

}  // namespace
}  // namespace sealcache::storage

// Digests are chosen by clients: ones that share all but their last bytes spread over a hash
// table's buckets as well as random ones, and each hasher is seeded on its own.
namespace sealcache::storage {
namespace {

Digest CountedDigest(uint64_t i) {
  Digest d{};
  std::memcpy(d.data(), &i, sizeof(i));  // shared suffix: only the first bytes differ
  return d;
}

void ExpectHolds(DigestMap<uint64_t>& map, const std::unordered_map<uint64_t, uint64_t>& want) {
  ASSERT_EQ(map.size(), want.size());
  for (const auto& [i, v] : want) {
    const uint64_t* got = map.Find(CountedDigest(i));
    ASSERT_NE(got, nullptr) << i;
    EXPECT_EQ(*got, v) << i;
  }
  size_t seen = 0;
  map.ForEach([&](const Digest& d, uint64_t& v) {
    uint64_t i = 0;
    std::memcpy(&i, d.data(), sizeof(i));
    auto it = want.find(i);
    ASSERT_NE(it, want.end()) << i;
    EXPECT_EQ(v, it->second) << i;
    ++seen;
  });
  EXPECT_EQ(seen, want.size());
}

// A DigestMap against a std::unordered_map through inserts, replaces and erases: every
// growth and shrink, and every write while one is under way, keeps each entry findable.
TEST(DigestMapTest, MatchesAMapThroughInsertsReplacesAndErases) {
  DigestMap<uint64_t> map;
  std::unordered_map<uint64_t, uint64_t> want;
  std::vector<uint64_t> live;
  std::mt19937_64 rng(23);
  uint64_t next = 0;
  for (int step = 0; step < 120000; ++step) {
    const int op = static_cast<int>(rng() % 10);
    const bool shrinking = step > 80000;  // the last third mostly erases
    if ((op < 6 && !shrinking) || live.empty()) {
      const uint64_t i = next++;
      auto [value, added] = map.TryEmplace(CountedDigest(i));
      ASSERT_TRUE(added);
      ASSERT_EQ(*value, 0u);  // value-initialised
      *value = i * 7;
      want[i] = i * 7;
      live.push_back(i);
    } else if (op < 9) {
      const size_t at = rng() % live.size();
      const uint64_t i = live[at];
      live[at] = live.back();
      live.pop_back();
      ASSERT_TRUE(map.Erase(CountedDigest(i))) << step;
      ASSERT_FALSE(map.Erase(CountedDigest(i))) << step;
      want.erase(i);
    } else {
      const uint64_t i = live[rng() % live.size()];
      auto [value, added] = map.TryEmplace(CountedDigest(i));
      ASSERT_FALSE(added);
      *value = step;
      want[i] = static_cast<uint64_t>(step);
    }
    if (step % 4999 == 0) ExpectHolds(map, want);
  }
  ExpectHolds(map, want);
}

// A resize moves kMovesPerWrite cells a write: entries written before it, still in the old
// table, are found, replaced and erased meanwhile, and it spans the writes it should.
TEST(DigestMapTest, ResizesAFewCellsPerWrite) {
  DigestMap<uint64_t> map;
  std::unordered_map<uint64_t, uint64_t> want;
  uint64_t next = 0;
  for (; next < 4096 * 13 / 16 + 1; ++next) {  // to the write that grows 4096 cells to 8192
    *map.TryEmplace(CountedDigest(next)).first = next;
    want[next] = next;
  }
  ASSERT_TRUE(map.resizing());
  ASSERT_EQ(map.capacity(), 8192u);
  *map.TryEmplace(CountedDigest(3)).first = 1000003;
  want[3] = 1000003;
  ASSERT_TRUE(map.Erase(CountedDigest(5)));
  want.erase(5);
  ExpectHolds(map, want);
  size_t writes = 3;  // (the one that started the resize, the replace and the erase above)
  while (map.resizing()) {
    ASSERT_LE(writes, 4096 / DigestMap<uint64_t>::kMovesPerWrite + 1);
    *map.TryEmplace(CountedDigest(next)).first = next;
    want[next] = next;
    ++next;
    ++writes;
  }
  EXPECT_GE(writes, 4096 / DigestMap<uint64_t>::kMovesPerWrite);  // not all at once
  ExpectHolds(map, want);
}

TEST(DigestHashTest, DigestsThatShareAPrefixSpreadOverTheBuckets) {
  std::unordered_map<Digest, int, DigestHash> table;
  constexpr uint64_t kDigests = 50'000;
  for (uint64_t i = 0; i < kDigests; ++i) {
    Digest d{};
    d.fill(0xAB);
    std::memcpy(d.data() + 24, &i, sizeof(i));
    table.emplace(d, 0);
  }
  size_t fullest = 0;
  for (size_t b = 0; b < table.bucket_count(); ++b)
    fullest = std::max(fullest, table.bucket_size(b));
  // Random keys at this load fill no bucket with more than ~8; a prefix hash puts all 50,000
  // into one.
  EXPECT_LE(fullest, 16u);
}

TEST(DigestHashTest, TwoHashersHashTheSameDigestDifferently) {
  Digest d{};
  d[0] = 1;
  DigestHash a, b;
  const DigestHash copy_of_a = a;
  EXPECT_NE(a(d), b(d));
  EXPECT_EQ(a(d), copy_of_a(d));
}

}  // namespace
}  // namespace sealcache::storage
