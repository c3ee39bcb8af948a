// The table of hot values (storage/src/value_cache.h): what it admits, keeps and forgets on
// its own, and through the Store that every write, expiry, transaction, drop and shredded
// key is seen by the next read exactly as without it.
#include "value_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "store_fixture.h"

namespace sealcache::storage::testing {
namespace {

using internal::ValueCache;

constexpr int64_t kExpiry = 1'000'000;

std::vector<uint8_t> Payload(size_t size, uint8_t fill) { return std::vector<uint8_t>(size, fill); }

// Looks `d` up and, on a miss, fills what a read would have found: the cache's whole
// protocol for one read. Returns whether it was a hit.
bool Read(ValueCache& cache, uint64_t db, const Digest& d, const std::vector<uint8_t>& stored,
          std::vector<uint8_t>* got = nullptr) {
  int64_t expires = 0;
  std::vector<uint8_t> payload;
  ValueCache::Ticket ticket;
  if (cache.Lookup(db, d, &expires, &payload, &ticket)) {
    EXPECT_EQ(expires, kExpiry);
    if (got != nullptr) *got = payload;
    return true;
  }
  cache.Fill(db, d, ticket, kExpiry, stored);
  return false;
}

TEST(ValueCache, AValueIsCachedAtItsThirdMissAndThenServedUntilForgotten) {
  ValueCache cache(1 << 20);
  const Digest d = MakeDigest(1);
  const auto value = Payload(100, 7);
  static_assert(ValueCache::kMissesBeforeAdmission == 2);
  EXPECT_FALSE(Read(cache, 1, d, value));  // first and second miss: counted, not cached
  EXPECT_FALSE(Read(cache, 1, d, value));
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_FALSE(Read(cache, 1, d, value));  // third miss: cached
  std::vector<uint8_t> got;
  EXPECT_TRUE(Read(cache, 1, d, value, &got));
  EXPECT_EQ(got, value);
  EXPECT_FALSE(Read(cache, 2, d, value)) << "another database's digest is another key";
  cache.Forget(1, d);
  EXPECT_FALSE(Read(cache, 1, d, value));
}

// A written value is kept while the table has room, and never at the cost of another.
TEST(ValueCache, AWrittenValueIsOfferedAndKeptOnlyWhereTheTableHasRoom) {
  ValueCache cache(1 << 20);  // 64 KiB a shard
  const std::string meta = "meta record";
  std::vector<uint8_t> got;
  cache.Offer(1, MakeDigest(1), kExpiry, Payload(100, 1), meta);
  EXPECT_TRUE(Read(cache, 1, MakeDigest(1), {}, &got)) << "served at once, without misses";
  EXPECT_EQ(got, Payload(100, 1));
  int64_t expires = 0;
  std::string cached_meta;
  ValueCache::Ticket ticket;
  ASSERT_TRUE(cache.Lookup(1, MakeDigest(1), &expires, &got, &ticket, &cached_meta));
  EXPECT_EQ(cached_meta, meta);
  cache.Offer(1, MakeDigest(1), kExpiry, Payload(100, 2), meta);  // written again
  EXPECT_TRUE(Read(cache, 1, MakeDigest(1), {}, &got));
  EXPECT_EQ(got, Payload(100, 2));

  // Offered far past the capacity: the table fills and then takes no more, and every value
  // it took is still there.
  for (uint64_t i = 2; i < 3000; ++i) cache.Offer(1, MakeDigest(i), kExpiry, Payload(1000, 3), "");
  EXPECT_LE(cache.bytes(), size_t{1} << 20);
  const size_t kept = cache.entries();
  EXPECT_GT(kept, 500u);
  EXPECT_LT(kept, 1100u);
  size_t served = 0;
  for (uint64_t i = 1; i < 3000; ++i) served += Read(cache, 1, MakeDigest(i), Payload(1000, 3));
  EXPECT_EQ(served, kept);
  for (uint64_t i = 3000; i < 3100; ++i)
    cache.Offer(1, MakeDigest(i), kExpiry, Payload(1000, 3), "");
  EXPECT_EQ(cache.entries(), kept) << "an offer never evicts";
}

TEST(ValueCache, AReadThatMissedBeforeAWriteWasForgottenDoesNotFill) {
  ValueCache cache(1 << 20);
  const Digest d = MakeDigest(1);
  const auto old_value = Payload(100, 1);
  EXPECT_FALSE(Read(cache, 1, d, old_value));  // two misses counted: the next one admits
  EXPECT_FALSE(Read(cache, 1, d, old_value));
  int64_t expires = 0;
  std::vector<uint8_t> payload;
  ValueCache::Ticket ticket;
  ASSERT_FALSE(cache.Lookup(1, d, &expires, &payload, &ticket));
  ASSERT_TRUE(ticket.admit);
  // A write of d is applied and forgotten between the read's miss and its fill: what the
  // read found is older than the write and must not be kept.
  cache.Forget(1, d);
  cache.Fill(1, d, ticket, kExpiry, old_value);
  EXPECT_FALSE(cache.Lookup(1, d, &expires, &payload, &ticket));
  EXPECT_EQ(cache.entries(), 0u);
}

TEST(ValueCache, StaysWithinItsCapacityAndKeepsTheValuesReadAgain) {
  constexpr size_t kCapacity = 256 << 10;
  constexpr size_t kValue = 1000;
  ValueCache cache(kCapacity);
  const auto value = Payload(kValue, 3);
  // 50 hot digests read again and again among 2,000 read three times each (admitted, then
  // never read again): the hot ones stay.
  for (int round = 0; round < 4; ++round) {
    for (uint64_t i = 0; i < 2000; ++i) {
      for (uint64_t hot = 0; hot < 50; hot += (i % 10 == 0) ? 1 : 50) {
        Read(cache, 1, MakeDigest(1'000'000 + hot), value);
      }
      for (int read = 0; read < 3; ++read) Read(cache, 1, MakeDigest(round * 10'000 + i), value);
      ASSERT_LE(cache.bytes(), kCapacity);
    }
  }
  size_t hot_cached = 0;
  for (uint64_t hot = 0; hot < 50; ++hot) {
    hot_cached += Read(cache, 1, MakeDigest(1'000'000 + hot), value);
  }
  EXPECT_GE(hot_cached, 45u);
  EXPECT_GT(cache.entries(), 100u);
  EXPECT_EQ(cache.bytes(), cache.entries() * (kValue + ValueCache::kEntryOverhead));
}

TEST(ValueCache, AgreesWithAModelThroughFillsForgetsAndEvictions) {
  // Many digests in a small table: probe runs, backward shifts at every erase, growth and
  // CLOCK evictions. Every hit must return the digest's latest value.
  ValueCache cache(64 << 10);
  std::map<std::pair<uint64_t, uint64_t>, uint8_t> model;  // (db, digest) -> current fill
  std::mt19937_64 rng(5);
  for (int step = 0; step < 200'000; ++step) {
    const uint64_t db = 1 + rng() % 3;
    const uint64_t i = rng() % 400;
    const Digest d = MakeDigest(i);
    uint8_t& current = model[{db, i}];
    switch (rng() % 8) {
      case 0:  // a write
        ++current;
        cache.Forget(db, d);
        break;
      case 1:
        if (rng() % 100 == 0) {
          cache.ForgetDb(db);
          for (auto& [key, fill] : model) {
            if (key.first == db) ++fill;  // (forgotten; later reads fill the new values)
          }
        }
        break;
      default: {
        std::vector<uint8_t> got;
        const auto stored = Payload(16 + i % 200, current);
        if (Read(cache, db, d, stored, &got)) {
          ASSERT_EQ(got, stored) << "step " << step;
        }
      }
    }
  }
  EXPECT_LE(cache.bytes(), size_t{64} << 10);
}

TEST(ValueCache, ForgetDbForgetsOnlyThatDatabase) {
  ValueCache cache(1 << 20);
  const auto value = Payload(10, 1);
  for (uint64_t db : {1, 2}) {
    for (uint64_t i = 0; i < 100; ++i) {
      for (int read = 0; read < 3; ++read) Read(cache, db, MakeDigest(i), value);
    }
  }
  ASSERT_EQ(cache.entries(), 200u);
  cache.ForgetDb(1);
  EXPECT_EQ(cache.entries(), 100u);
  for (uint64_t i = 0; i < 100; ++i) {
    EXPECT_TRUE(Read(cache, 2, MakeDigest(i), value));
    EXPECT_FALSE(Read(cache, 1, MakeDigest(i), value));
  }
}

TEST(ValueCache, AValueLargerThanAnEighthOfAShardIsNotCached) {
  constexpr size_t kCapacity = 16 << 20;  // 16 shards of 1 MiB
  ValueCache cache(kCapacity);
  const size_t shard = kCapacity / 16;
  const auto fits = Payload(shard / ValueCache::kMaxShareOfShard - ValueCache::kEntryOverhead, 1);
  const auto too_large = Payload(fits.size() + 1, 2);
  for (int read = 0; read < 4; ++read) {
    Read(cache, 1, MakeDigest(1), fits);
    Read(cache, 1, MakeDigest(2), too_large);
  }
  EXPECT_TRUE(Read(cache, 1, MakeDigest(1), fits));
  EXPECT_FALSE(Read(cache, 1, MakeDigest(2), too_large));
  EXPECT_EQ(cache.entries(), 1u);
}

// Read gives the cached bytes in place (a GET writes them straight into its reply), and
// admits and misses as Lookup does.
TEST(ValueCache, ReadGivesACachedValueInPlaceAndMissesAsLookupDoes) {
  ValueCache cache(1 << 20);
  const Digest d = MakeDigest(1);
  const auto value = Payload(300, 3);
  std::vector<uint8_t> given;
  int64_t given_expiry = 0;
  int calls = 0;
  auto take = [&](int64_t expires_ms, std::span<const uint8_t> payload) {
    ++calls;
    given_expiry = expires_ms;
    given.assign(payload.begin(), payload.end());
  };
  for (uint32_t miss = 0; miss <= ValueCache::kMissesBeforeAdmission; ++miss) {
    ValueCache::Ticket ticket;
    ASSERT_FALSE(cache.Read(1, d, take, &ticket)) << miss;
    EXPECT_EQ(ticket.admit, miss == ValueCache::kMissesBeforeAdmission) << miss;
    cache.Fill(1, d, ticket, kExpiry, value);
  }
  EXPECT_EQ(calls, 0) << "a miss gives nothing";
  ValueCache::Ticket ticket;
  ASSERT_TRUE(cache.Read(1, d, take, &ticket));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(given, value);
  EXPECT_EQ(given_expiry, kExpiry);
  EXPECT_FALSE(cache.Read(2, d, take, &ticket)) << "another database's key";
  cache.Forget(1, d);
  EXPECT_FALSE(cache.Read(1, d, take, &ticket));
  EXPECT_EQ(calls, 1);
}

TEST(ValueCache, ACapacityOfZeroCachesNothing) {
  ValueCache cache(0);
  const auto value = Payload(10, 1);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(Read(cache, 1, MakeDigest(1), value));
  EXPECT_EQ(cache.entries(), 0u);
}

// Through the Store: CachedValueOf reads a value until it is cached, and once more.
TEST(ValueCache, AMetaRecordIsCachedWithItsPayloadAndRefreshedInPlace) {
  ValueCache cache(1 << 20);
  const Digest d = MakeDigest(1);
  const auto value = Payload(100, 7);
  int64_t expires = 0;
  std::vector<uint8_t> payload;
  std::string meta;
  ValueCache::Ticket ticket;
  // Cached without its meta record (a read of the payload alone): a read that wants both
  // misses, and may add the meta record at once.
  for (int i = 0; i < 3; ++i) Read(cache, 1, d, value);
  ASSERT_TRUE(cache.Lookup(1, d, &expires, &payload, &ticket));
  ASSERT_FALSE(cache.Lookup(1, d, &expires, &payload, &ticket, &meta));
  EXPECT_TRUE(ticket.admit);
  const size_t bytes_without = cache.bytes();
  cache.Fill(1, d, ticket, kExpiry, value, "meta v1");
  EXPECT_EQ(cache.bytes(), bytes_without + 7) << "the meta record is charged";
  ASSERT_TRUE(cache.Lookup(1, d, &expires, &payload, &ticket, &meta));
  EXPECT_EQ(meta, "meta v1");
  EXPECT_EQ(payload, value);
  // Hit counts rewrite the meta record alone: the payload stays, with the new record, of
  // the same size or not.
  cache.RefreshMeta(1, d, "meta v2");
  ASSERT_TRUE(cache.Lookup(1, d, &expires, &payload, &ticket, &meta));
  EXPECT_EQ(meta, "meta v2");
  EXPECT_EQ(payload, value);
  EXPECT_EQ(cache.bytes(), bytes_without + 7);
  cache.RefreshMeta(1, d, "meta v3, longer");
  ASSERT_TRUE(cache.Lookup(1, d, &expires, &payload, &ticket, &meta));
  EXPECT_EQ(meta, "meta v3, longer");
  EXPECT_EQ(payload, value);
  EXPECT_EQ(cache.bytes(), bytes_without + 15);
  // CachedMeta reads the record without the payload; not for a key cached without one.
  std::string record;
  ASSERT_TRUE(cache.CachedMeta(1, d, &record));
  EXPECT_EQ(record, "meta v3, longer");
  EXPECT_FALSE(cache.CachedMeta(2, d, &record)) << "another database's key";
  const Digest payload_only = MakeDigest(3);
  for (int i = 0; i < 3; ++i) Read(cache, 1, payload_only, value);
  ASSERT_TRUE(cache.Lookup(1, payload_only, &expires, &payload, &ticket));
  EXPECT_FALSE(cache.CachedMeta(1, payload_only, &record));
  cache.RefreshMeta(1, payload_only, "not cached either");
  EXPECT_FALSE(cache.CachedMeta(1, payload_only, &record));
  payload.clear();
  ASSERT_TRUE(cache.Lookup(1, d, &expires, &payload, &ticket)) << "a payload read hits too";
  EXPECT_EQ(payload, value);
  // A read that missed before a refresh read the older meta record: it does not fill.
  const Digest e = MakeDigest(2);
  for (int i = 0; i < 2; ++i) Read(cache, 1, e, value);
  ASSERT_FALSE(cache.Lookup(1, e, &expires, &payload, &ticket, &meta));
  ASSERT_TRUE(ticket.admit);
  cache.RefreshMeta(1, e, "newer");
  cache.Fill(1, e, ticket, kExpiry, value, "older");
  EXPECT_FALSE(cache.Lookup(1, e, &expires, &payload, &ticket, &meta));
  EXPECT_FALSE(cache.Lookup(1, e, &expires, &payload, &ticket));
  // Forget drops both.
  cache.Forget(1, d);
  EXPECT_FALSE(cache.Lookup(1, d, &expires, &payload, &ticket, &meta));
  EXPECT_FALSE(cache.Lookup(1, d, &expires, &payload, &ticket));
}

class StoreValueCacheTest : public StoreTest {
 protected:
  std::string ValueOf(uint64_t i) {
    auto v = store_->GetValue("acme", MakeDigest(i));
    if (!v.ok()) return "<" + v.status().ToString() + ">";
    return std::string(v->payload.begin(), v->payload.end());
  }
  std::string CachedValueOf(uint64_t i) {
    for (uint32_t miss = 0; miss <= ValueCache::kMissesBeforeAdmission; ++miss) ValueOf(i);
    return ValueOf(i);
  }
};

TEST_F(StoreValueCacheTest, EveryWriteIsSeenByTheNextRead) {
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "first").ok());
  EXPECT_EQ(CachedValueOf(1), "first");
  ASSERT_TRUE(Put("acme", 1, "second").ok());
  EXPECT_EQ(ValueOf(1), "second");
  EXPECT_EQ(PayloadOf("acme", 1), "second") << "the native Get's payload read too";

  EXPECT_EQ(CachedValueOf(1), "second");
  const int64_t later = clock_.NowMillis() + 7'200'000;
  ASSERT_TRUE(store_->SetExpiry("acme", MakeDigest(1), later).ok());
  auto v = store_->GetValue("acme", MakeDigest(1));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->expires_ms, later) << "a new expiry rewrites the payload record";

  EXPECT_EQ(CachedValueOf(1), "second");
  ASSERT_TRUE(store_->Delete("acme", MakeDigest(1)).ok());
  EXPECT_TRUE(store_->GetValue("acme", MakeDigest(1)).status().IsNotFound());
}

// A native Get reads meta and payload from the table: every write of either, hit counts
// included, is in the next Get.
TEST_F(StoreValueCacheTest, EveryWriteIsSeenByTheNextGetOfMetaAndPayload) {
  auto Text = [](const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); };
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "first").ok());
  auto get = [&] {
    for (uint32_t miss = 0; miss <= ValueCache::kMissesBeforeAdmission; ++miss) {
      (void)store_->Get("acme", MakeDigest(1));
    }
    return store_->Get("acme", MakeDigest(1));
  };
  auto e = get();
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(Text(e->payload), "first");
  EXPECT_EQ(e->meta.hits, 0u);
  // Hit counts: the meta record alone is rewritten, and the entry stays cached.
  const HitUpdate hit{MakeDigest(1), 3, clock_.NowMillis()};
  ASSERT_TRUE(store_->RecordHits("acme", {&hit, 1}).ok());
  e = store_->Get("acme", MakeDigest(1));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->meta.hits, 3u);
  EXPECT_EQ(e->meta.last_hit_ms, hit.last_hit_ms);
  EXPECT_EQ(Text(e->payload), "first");
  // A new expiry.
  const int64_t later = clock_.NowMillis() + 7'200'000;
  ASSERT_TRUE(store_->SetExpiry("acme", MakeDigest(1), later).ok());
  e = store_->Get("acme", MakeDigest(1));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->meta.expires_ms, later);
  EXPECT_EQ(e->meta.hits, 3u);
  // A replacement, in a namespace.
  e = get();
  ASSERT_TRUE(e.ok());
  PutRequest r;
  const std::string second = "second";
  r.digest = MakeDigest(1);
  r.payload = {reinterpret_cast<const uint8_t*>(second.data()), second.size()};
  r.ttl_ms = 60'000;
  r.name_space = "ns";
  ASSERT_TRUE(store_->Put("acme", r).ok());
  e = store_->Get("acme", MakeDigest(1));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(Text(e->payload), "second");
  EXPECT_EQ(e->meta.name_space, "ns");
  EXPECT_EQ(e->meta.hits, 0u);
  EXPECT_EQ(e->meta.expires_ms, clock_.NowMillis() + 60'000);
  // A delete.
  e = get();
  ASSERT_TRUE(store_->Delete("acme", MakeDigest(1)).ok());
  EXPECT_TRUE(store_->Get("acme", MakeDigest(1)).status().IsNotFound());
}

TEST_F(StoreValueCacheTest, ACachedEntryExpiresOnTime) {
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "brief", /*ttl_ms=*/1000).ok());
  EXPECT_EQ(CachedValueOf(1), "brief");
  clock_.Advance(1000);
  EXPECT_TRUE(store_->GetValue("acme", MakeDigest(1)).status().IsNotFound());
  EXPECT_TRUE(store_->Get("acme", MakeDigest(1)).status().IsNotFound());
}

TEST_F(StoreValueCacheTest, ATransactionsCommitIsSeenAndItsOwnReadsSeeItsWrites) {
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "before").ok());
  EXPECT_EQ(CachedValueOf(1), "before");
  auto txn = store_->BeginTransaction("acme");
  ASSERT_TRUE(txn.ok());
  PutRequest r;
  const std::string after = "after";
  r.digest = MakeDigest(1);
  r.payload = {reinterpret_cast<const uint8_t*>(after.data()), after.size()};
  const auto vec = MakeVector(kDim, 1);
  r.vector = vec;
  r.ttl_ms = 3'600'000;
  ASSERT_TRUE((*txn)->Put(r).ok());
  auto inside = (*txn)->GetValue(MakeDigest(1));
  ASSERT_TRUE(inside.ok());
  EXPECT_EQ(std::string(inside->payload.begin(), inside->payload.end()), "after");
  EXPECT_EQ(ValueOf(1), "before") << "not committed yet";
  ASSERT_TRUE((*txn)->Commit().ok());
  EXPECT_EQ(ValueOf(1), "after");
}

TEST_F(StoreValueCacheTest, ADroppedOrgsValuesAreGoneWithIt) {
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "old tenant").ok());
  EXPECT_EQ(CachedValueOf(1), "old tenant");
  ASSERT_TRUE(store_->DropOrg("acme").ok());
  CreateOrg("acme");
  EXPECT_TRUE(store_->GetValue("acme", MakeDigest(1)).status().IsNotFound());
}

TEST_F(StoreValueCacheTest, ConcurrentReadsNeverSeeAValueOlderThanAnAcknowledgedWrite) {
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "0").ok());
  std::atomic<int> acknowledged{0};
  std::atomic<bool> stop{false};
  std::atomic<int> stale{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        const int floor = acknowledged.load();
        auto v = store_->GetValue("acme", MakeDigest(1));
        if (!v.ok() || std::stoi(std::string(v->payload.begin(), v->payload.end())) < floor) {
          stale.fetch_add(1);
        }
      }
    });
  }
  for (int version = 1; version <= 300; ++version) {
    ASSERT_TRUE(Put("acme", 1, std::to_string(version)).ok());
    acknowledged.store(version);
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(stale.load(), 0);
  EXPECT_EQ(CachedValueOf(1), "300");
}

// Writers of a few keys at once, each put, delete, expiry change and hit count reading the
// entry's meta record under its digest's lock (from the table where it holds it), with reads
// filling the table beside them: every vector slot a put creates ends up exactly once either
// as its key's live slot or handed back by the write that replaced or removed it, and the
// store holds one vector record per live entry with a vector.
TEST_F(StoreValueCacheTest, ConcurrentWritersHandBackEverySlotExactlyOnce) {
  Open();
  CreateOrg("acme");
  constexpr uint64_t kKeys = 8;
  constexpr int kWriters = 4, kOpsPerWriter = 400;
  struct Seen {
    std::vector<uint64_t> created, handed_back;
  };
  std::vector<Seen> seen(kWriters);
  std::atomic<bool> failed{false}, stop{false};
  std::thread reader([&] {
    for (uint64_t i = 0; !stop.load(); i = (i + 1) % kKeys)
      (void)store_->Get("acme", MakeDigest(i));
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kWriters; ++t) {
    writers.emplace_back([&, t] {
      std::mt19937 rng(100 + t);
      for (int op = 0; op < kOpsPerWriter; ++op) {
        const uint64_t key = rng() % kKeys;
        switch (rng() % 5) {
          case 0:
          case 1: {
            auto put = Put("acme", key, "v" + std::to_string(op));
            if (!put.ok()) {
              failed = true;
              break;
            }
            seen[t].created.push_back(put->slot);
            if (put->replaced_slot) seen[t].handed_back.push_back(*put->replaced_slot);
            break;
          }
          case 2: {
            auto removed = store_->Delete("acme", MakeDigest(key));
            if (!removed.ok() && !removed.status().IsNotFound()) failed = true;
            if (removed.ok()) {
              for (uint64_t slot : removed->slots) seen[t].handed_back.push_back(slot);
            }
            break;
          }
          case 3: {
            auto changed =
                store_->SetExpiry("acme", MakeDigest(key), clock_.NowMillis() + 600'000 + op);
            if (!changed.ok() && !changed.status().IsNotFound()) failed = true;
            break;
          }
          default: {
            HitUpdate h{MakeDigest(key), 1, clock_.NowMillis()};
            if (!store_->RecordHits("acme", {&h, 1}).ok()) failed = true;
          }
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  stop.store(true);
  reader.join();
  ASSERT_FALSE(failed);

  std::multiset<uint64_t> accounted;
  size_t live_with_vector = 0;
  for (uint64_t key = 0; key < kKeys; ++key) {
    auto e = store_->Get("acme", MakeDigest(key), false);
    if (e.status().IsNotFound()) continue;
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    accounted.insert(e->meta.vector_slot);
    ++live_with_vector;
  }
  std::multiset<uint64_t> created;
  for (const Seen& s : seen) {
    created.insert(s.created.begin(), s.created.end());
    accounted.insert(s.handed_back.begin(), s.handed_back.end());
  }
  EXPECT_EQ(accounted, created) << "a slot handed back twice, or never";
  EXPECT_EQ(CountVectors("acme"), live_with_vector);
}

}  // namespace
}  // namespace sealcache::storage::testing
