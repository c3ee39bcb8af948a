#include "sealcache/storage/store.h"

#include <gtest/gtest.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>

#include <atomic>
#include <cmath>
#include <thread>

#include "sealcache/storage/inspect.h"
#include "store_fixture.h"

namespace sealcache::storage {
namespace {

using testing::Bytes;
using testing::MakeDigest;
using testing::MakeTempDir;
using testing::MakeVector;
using testing::ReadFile;
using testing::StoreTest;

TEST_F(StoreTest, PutThenGetReturnsPayloadAndMetadata) {
  Open();
  CreateOrg("acme");
  clock_.Set(1'000'000);
  auto put = Put("acme", 1, "the answer is 42", 60'000, "docs");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  auto e = store_->Get("acme", MakeDigest(1));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(std::string(e->payload.begin(), e->payload.end()), "the answer is 42");
  EXPECT_EQ(e->meta.created_ms, 1'000'000);
  EXPECT_EQ(e->meta.expires_ms, 1'060'000);
  EXPECT_EQ(e->meta.ttl_ms, 60'000);
  EXPECT_EQ(e->meta.name_space, "docs");
  EXPECT_EQ(e->meta.payload_size, 16u);
  EXPECT_EQ(e->meta.vector_slot, put->slot);
}

// A kill just after RocksDB creates a new WAL, before the file's header is written, leaves
// a log of 0 to 4095 bytes that recovery replays; the org must open with every entry (the
// crash loop found an org left unavailable by such a log).
TEST_F(StoreTest, AnOrgWhoseNewestLogWasCreatedButNeverWrittenOpensWithItsEntries) {
  Open();
  CreateOrg("acme");
  for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(Put("acme", i, "p" + std::to_string(i)).ok());
  store_.reset();
  const std::string org_dir = dir_ + "/orgs/acme";
  ASSERT_TRUE(std::filesystem::exists(org_dir + "/CURRENT"));
  std::ofstream(org_dir + "/999990.log", std::ios::binary);  // created, nothing written
  std::ofstream(org_dir + "/999991.log", std::ios::binary) << std::string(100, '\0');  // torn
  Open();
  for (uint64_t i = 0; i < 10; ++i) EXPECT_EQ(PayloadOf("acme", i), "p" + std::to_string(i));
  ASSERT_TRUE(Put("acme", 10, "p10").ok());
  store_.reset();
  Open();
  EXPECT_EQ(PayloadOf("acme", 10), "p10");
  EXPECT_EQ(PayloadOf("acme", 0), "p0");
}

// What a crash would leave: a copy of the data directory as the file system holds it now.
std::string CrashImage(const std::string& dir) {
  const std::string image = MakeTempDir("sealcache-store-image");
  std::filesystem::copy(
      dir, image,
      std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
  return image;
}

class LogFlushGroupTest : public StoreTest {
 protected:
  // Whether a store opened on `image` (then removed) has entry i of `org`.
  bool ImageHas(const std::string& image, const std::string& org, uint64_t i) {
    StoreOptions o = Options();
    o.data_dir = image;
    bool found = false;
    {
      auto crashed = Store::Open(o, master_);
      EXPECT_TRUE(crashed.ok()) << crashed.status().ToString();
      if (crashed.ok()) found = (*crashed)->Get(org, MakeDigest(i)).ok();
    }
    std::filesystem::remove_all(image);
    return found;
  }
  bool CrashKeeps(const std::string& org, uint64_t i) { return ImageHas(CrashImage(dir_), org, i); }
};

// A LogFlushGroup (the Redis front's pipelined writes): a write made in one is visible at
// once and reaches the log at the group's Commit, no sooner; a crash before that loses it,
// a crash after keeps it. Outside a group a write is in the log when it returns.
TEST_F(LogFlushGroupTest, AWriteReachesTheLogAtCommitAndSurvivesACrashAfterIt) {
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "outside").ok());
  EXPECT_TRUE(CrashKeeps("acme", 1));
  {
    auto group = store_->OpenLogFlushGroup();
    ASSERT_TRUE(group.ok()) << group.status().ToString();
    EXPECT_EQ(store_->OpenLogFlushGroup().status().code(), Status::Code::kFailedPrecondition);
    ASSERT_TRUE(Put("acme", 2, "in the group").ok());
    ASSERT_TRUE(store_->Delete("acme", MakeDigest(1)).ok());
    EXPECT_EQ(PayloadOf("acme", 2), "in the group");  // visible before the commit
    const std::string before_commit = CrashImage(dir_);
    ASSERT_TRUE((*group)->Commit().ok());
    EXPECT_FALSE(ImageHas(before_commit, "acme", 2));
    EXPECT_TRUE(CrashKeeps("acme", 2));
    // The group stays open: a later write waits for the next commit, or the close.
    ASSERT_TRUE(Put("acme", 3, "after the commit").ok());
    EXPECT_FALSE(CrashKeeps("acme", 3));
    // Another thread's writes are not the group's.
    std::thread([&] { ASSERT_TRUE(Put("acme", 4, "another thread").ok()); }).join();
    EXPECT_TRUE(CrashKeeps("acme", 4));
  }
  EXPECT_TRUE(CrashKeeps("acme", 3));   // closing the group committed it
  EXPECT_FALSE(CrashKeeps("acme", 1));  // and its delete
  // A closed group leaves the thread's writes flushing as they are made; a new one opens.
  ASSERT_TRUE(Put("acme", 5, "no group").ok());
  EXPECT_TRUE(CrashKeeps("acme", 5));
  EXPECT_TRUE(store_->OpenLogFlushGroup().ok());
}

// An org closed between a group's write and its commit (dropped here): the commit cannot
// vouch for that write and says so, and still writes the log of the other orgs.
TEST_F(LogFlushGroupTest, ACommitAfterAnOrgClosedReportsItAndFlushesTheOthers) {
  Open();
  CreateOrg("acme");
  CreateOrg("globex");
  auto group = store_->OpenLogFlushGroup();
  ASSERT_TRUE(group.ok());
  ASSERT_TRUE(Put("acme", 1, "a").ok());
  ASSERT_TRUE(Put("globex", 1, "g").ok());
  ASSERT_TRUE(store_->DropOrg("acme").ok());
  EXPECT_EQ((*group)->Commit().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(CrashKeeps("globex", 1));
}

TEST_F(StoreTest, ExpiredEntryIsAMissAtOnce) {
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "x", 1000).ok());
  clock_.Advance(999);
  EXPECT_TRUE(store_->Get("acme", MakeDigest(1)).ok());
  clock_.Advance(1);
  auto e = store_->Get("acme", MakeDigest(1));
  EXPECT_TRUE(e.status().IsNotFound());
  EXPECT_EQ(CountVectors("acme"), 0u);
}

TEST_F(StoreTest, GetValueReadsPayloadAndExpiryAndFollowsReplaceDeleteAndExpiry) {
  Open();
  CreateOrg("acme");
  clock_.Set(1'000'000);
  ASSERT_TRUE(Put("acme", 1, "first", 1000).ok());
  auto v = store_->GetValue("acme", MakeDigest(1));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(std::string(v->payload.begin(), v->payload.end()), "first");
  EXPECT_EQ(v->expires_ms, 1'001'000);
  ASSERT_TRUE(Put("acme", 1, "second", 5000).ok());
  v = store_->GetValue("acme", MakeDigest(1));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(std::string(v->payload.begin(), v->payload.end()), "second");
  EXPECT_EQ(v->expires_ms, 1'005'000);
  ASSERT_TRUE(store_->SetExpiry("acme", MakeDigest(1), 1'002'000).ok());
  EXPECT_EQ(store_->GetValue("acme", MakeDigest(1))->expires_ms, 1'002'000);
  clock_.Advance(2000);
  EXPECT_TRUE(store_->GetValue("acme", MakeDigest(1)).status().IsNotFound());  // expired
  ASSERT_TRUE(Put("acme", 2, "gone soon", 1000).ok());
  ASSERT_TRUE(store_->Delete("acme", MakeDigest(2)).ok());
  EXPECT_TRUE(store_->GetValue("acme", MakeDigest(2)).status().IsNotFound());
  EXPECT_TRUE(store_->GetValue("acme", MakeDigest(3)).status().IsNotFound());
  EXPECT_FALSE(store_->GetValue("nosuch", MakeDigest(1)).ok());
}

// GetValueEach's values, copied as they are given, each given once and in order.
std::vector<Result<StoredValue>> EachValue(Store& store, std::string_view org,
                                           std::span<const Digest> digests) {
  std::vector<Result<StoredValue>> each;
  store.GetValueEach(org, digests, [&](size_t i, const Result<ValueView>& v) {
    EXPECT_EQ(i, each.size()) << "given out of order, or twice";
    each.push_back(CopyOfValue(v));
  });
  return each;
}

// A client's pipelined GETs: each digest read as GetValue reads it, from the table of hot
// values or the database, after replacements and expiry, repeated digests included.
TEST_F(StoreTest, GetValueEachReadsEveryDigestAsGetValueDoes) {
  Open();
  CreateOrg("acme");
  clock_.Set(1'000'000);
  ASSERT_TRUE(Put("acme", 1, "one", 1000).ok());
  ASSERT_TRUE(Put("acme", 2, "two", 5000).ok());
  ASSERT_TRUE(Put("acme", 4, "four", 5000).ok());
  for (int i = 0; i < 3; ++i) {  // read often enough to be in the table of hot values
    ASSERT_TRUE(store_->GetValue("acme", MakeDigest(1)).ok());
    ASSERT_TRUE(store_->GetValue("acme", MakeDigest(2)).ok());
  }
  ASSERT_TRUE(Put("acme", 2, "two again", 6000).ok());
  clock_.Advance(1000);  // 1 expires
  // (4 is read from the database, twice in one batch.)
  const std::vector<Digest> digests = {MakeDigest(1), MakeDigest(2), MakeDigest(3),
                                       MakeDigest(4), MakeDigest(2), MakeDigest(4)};
  auto each = EachValue(*store_, "acme", digests);
  ASSERT_EQ(each.size(), digests.size());
  EXPECT_TRUE(each[0].status().IsNotFound());
  ASSERT_TRUE(each[1].ok()) << each[1].status().ToString();
  EXPECT_EQ(each[1]->payload, Bytes("two again"));
  EXPECT_EQ(each[1]->expires_ms, 1'006'000);
  EXPECT_TRUE(each[2].status().IsNotFound());
  ASSERT_TRUE(each[3].ok());
  EXPECT_EQ(each[3]->payload, Bytes("four"));
  ASSERT_TRUE(each[4].ok());
  EXPECT_EQ(each[4]->payload, Bytes("two again"));
  ASSERT_TRUE(each[5].ok());
  EXPECT_EQ(each[5]->payload, Bytes("four"));
  for (size_t i = 0; i < digests.size(); ++i) {
    auto one = store_->GetValue("acme", digests[i]);
    ASSERT_EQ(one.ok(), each[i].ok()) << i;
    if (one.ok()) {
      EXPECT_EQ(one->payload, each[i]->payload) << i;
    }
  }
  auto elsewhere = EachValue(*store_, "nosuch", digests);
  ASSERT_EQ(elsewhere.size(), digests.size());
  for (const auto& v : elsewhere) EXPECT_FALSE(v.ok());
}

TEST_F(StoreTest, CompactionDropsExpiredRecordsFromBothFamilies) {
  Open();
  CreateOrg("acme");
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(Put("acme", i, std::string(500, 'p'), 1000).ok());
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_GT(store_->Stats("acme")->live_sst_bytes, 0u);
  clock_.Advance(1001);
  ASSERT_TRUE(store_->CompactOrg("acme").ok());
  EXPECT_EQ(store_->Stats("acme")->live_sst_bytes, 0u);
  size_t metas = 0;
  ASSERT_TRUE(store_->ScanMeta("acme", [&](const EntryMeta&) { return ++metas, true; }).ok());
  EXPECT_EQ(metas, 0u);
}

// Hits counted before an entry expired and written after compaction dropped its records
// write nothing back, though the table of hot values still holds the entry.
TEST_F(StoreTest, HitsOfAnEntryCompactedAwayAfterItExpiredWriteNoRecord) {
  Open();
  CreateOrg("acme");
  std::vector<HitUpdate> hits;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(Put("acme", i, std::string(500, 'p'), 1000).ok());
    hits.push_back({MakeDigest(i), 1, clock_.NowMillis()});
  }
  ASSERT_TRUE(store_->Flush().ok());
  clock_.Advance(1001);
  ASSERT_TRUE(store_->CompactOrg("acme").ok());
  ASSERT_EQ(store_->Stats("acme")->live_sst_bytes, 0u);
  ASSERT_TRUE(store_->RecordHits("acme", hits).ok());
  store_.reset();
  StoreViewOptions options;
  options.data_dir = dir_;
  options.master_key = &master_;
  auto view = StoreView::Open(options);
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  size_t records = 0;  // (expired ones included)
  ASSERT_TRUE((*view)->ScanEntries("acme", [&](const EntryMeta&) { return ++records, true; }).ok());
  EXPECT_EQ(records, 0u) << "meta records written back";
}

TEST_F(StoreTest, PutOfSameDigestReplacesEntryAndItsVector) {
  Open();
  CreateOrg("acme");
  auto first = Put("acme", 7, "old");
  auto second = Put("acme", 7, "new");
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(first->slot, second->slot);
  ASSERT_TRUE(second->replaced_slot.has_value());
  EXPECT_EQ(*second->replaced_slot, first->slot);
  EXPECT_EQ(PayloadOf("acme", 7), "new");
  std::vector<uint64_t> slots;
  ASSERT_TRUE(store_
                  ->ScanVectors("acme", 0,
                                [&](uint64_t s, const Digest&, int64_t, std::span<const float>) {
                                  slots.push_back(s);
                                  return true;
                                })
                  .ok());
  EXPECT_EQ(slots, std::vector<uint64_t>{second->slot});
}

TEST_F(StoreTest, BadInputGetsAClearErrorAndStoresNothing) {
  Open();
  CreateOrg("acme");
  auto expect_invalid = [&](Result<PutResult> r, std::string_view words) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
    EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().message();
  };
  expect_invalid(Put("acme", 1, "x", 1000, "", MakeVector(kDim + 1, 1)), "dimension");
  auto nan = MakeVector(kDim, 1);
  nan[3] = std::nanf("");
  expect_invalid(Put("acme", 1, "x", 1000, "", nan), "NaN");
  auto inf = MakeVector(kDim, 1);
  inf[0] = INFINITY;
  expect_invalid(Put("acme", 1, "x", 1000, "", inf), "infinity");
  expect_invalid(Put("acme", 1, "x", 1000, "", std::vector<float>(kDim, 0.0f)), "zeros");
  expect_invalid(Put("acme", 1, "x", 0), "ttl");
  expect_invalid(Put("acme", 1, "x", -5), "ttl");
  expect_invalid(Put("acme", 1, "x", 1000, std::string(129, 'n')), "namespace");
  expect_invalid(Put("acme", 1, "x", 1000, "\xff\xfe"), "UTF-8");
  expect_invalid(Put("acme", 1, std::string(5u << 20, 'x')), "payload");
  EXPECT_TRUE(Put("nobody", 1, "x").status().IsNotFound());
  EXPECT_EQ(Put("../etc", 1, "x").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(CountVectors("acme"), 0u);
  EXPECT_TRUE(store_->Get("acme", MakeDigest(1)).status().IsNotFound());
}

TEST_F(StoreTest, CreateOrgValidatesItsArguments) {
  Open();
  OrgConfig c;
  c.dimension = 0;
  EXPECT_EQ(store_->CreateOrg("acme", c).code(), Status::Code::kInvalidArgument);
  c.dimension = 4097;
  EXPECT_EQ(store_->CreateOrg("acme", c).code(), Status::Code::kInvalidArgument);
  c.dimension = 8;
  c.metric = "l2";
  EXPECT_EQ(store_->CreateOrg("acme", c).code(), Status::Code::kInvalidArgument);
  c.metric = "cosine";
  EXPECT_EQ(store_->CreateOrg("Acme", c).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store_->CreateOrg("a/b", c).code(), Status::Code::kInvalidArgument);
  ASSERT_TRUE(store_->CreateOrg("acme", c).ok());
  EXPECT_EQ(store_->CreateOrg("acme", c).code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(store_->ListOrgs(), std::vector<std::string>{"acme"});
}

TEST_F(StoreTest, EntriesOrgsAndSlotsSurviveReopenWithoutSlotReuse) {
  Open();
  CreateOrg("acme");
  CreateOrg("globex", 8);
  uint64_t last_slot = 0;
  for (int i = 0; i < 20; ++i) last_slot = Put("acme", i, "payload " + std::to_string(i))->slot;
  // Delete the newest entry: its slot must still never be handed out again.
  ASSERT_TRUE(store_->Delete("acme", MakeDigest(19)).ok());
  Open();
  EXPECT_EQ(store_->GetOrg("globex")->dimension, 8u);
  for (int i = 0; i < 19; ++i) EXPECT_EQ(PayloadOf("acme", i), "payload " + std::to_string(i));
  auto next = Put("acme", 100, "after reopen");
  ASSERT_TRUE(next.ok());
  EXPECT_GT(next->slot, last_slot);
}

TEST_F(StoreTest, MultiGetMixesHitsMissesAndExpired) {
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "one").ok());
  ASSERT_TRUE(Put("acme", 2, "two", 10).ok());
  clock_.Advance(20);
  std::vector<Digest> digests{MakeDigest(1), MakeDigest(2), MakeDigest(3)};
  auto results = store_->MultiGet("acme", digests, true);
  ASSERT_EQ(results.size(), 3u);
  ASSERT_TRUE(results[0].ok());
  EXPECT_EQ(std::string(results[0]->payload.begin(), results[0]->payload.end()), "one");
  EXPECT_TRUE(results[1].status().IsNotFound());
  EXPECT_TRUE(results[2].status().IsNotFound());
}

TEST_F(StoreTest, GetBySlotFollowsTheLiveEntry) {
  Open();
  CreateOrg("acme");
  auto a = Put("acme", 1, "first");
  auto b = Put("acme", 1, "second");
  EXPECT_TRUE(store_->GetBySlot("acme", a->slot, true).status().IsNotFound());
  auto e = store_->GetBySlot("acme", b->slot, true);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(std::string(e->payload.begin(), e->payload.end()), "second");
}

TEST_F(StoreTest, DeleteRemovesEntryAndReportsItsSlot) {
  Open();
  CreateOrg("acme");
  auto put = Put("acme", 5, "bye");
  auto del = store_->Delete("acme", MakeDigest(5));
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->slots, std::vector<uint64_t>{put->slot});
  EXPECT_TRUE(store_->Get("acme", MakeDigest(5)).status().IsNotFound());
  EXPECT_TRUE(store_->Delete("acme", MakeDigest(5)).status().IsNotFound());
  EXPECT_EQ(CountVectors("acme"), 0u);
}

TEST_F(StoreTest, InvalidateByNamespaceOrAge) {
  Open();
  CreateOrg("acme");
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(Put("acme", i, "x", 3'600'000, i % 2 ? "odd" : "even").ok());
  clock_.Advance(1000);
  const int64_t cutoff = clock_.NowMillis();
  for (int i = 10; i < 15; ++i) ASSERT_TRUE(Put("acme", i, "x", 3'600'000, "odd").ok());
  auto by_ns =
      store_->Invalidate("acme", InvalidateFilter{.name_space = "even", .older_than_ms = {}});
  ASSERT_TRUE(by_ns.ok());
  EXPECT_EQ(by_ns->count, 5u);
  EXPECT_EQ(by_ns->slots.size(), 5u);
  auto by_age =
      store_->Invalidate("acme", InvalidateFilter{.name_space = {}, .older_than_ms = cutoff});
  ASSERT_TRUE(by_age.ok());
  EXPECT_EQ(by_age->count, 5u);  // the odd ones written before the cutoff
  EXPECT_EQ(CountVectors("acme"), 5u);
  EXPECT_EQ(store_->Invalidate("acme", {}).status().code(), Status::Code::kInvalidArgument);
}

// Behaviour that must not depend on the table of hot values: each test runs with it (On)
// and without it (Off).
class StoreTableOnOffTest : public StoreTest, public ::testing::WithParamInterface<bool> {
 protected:
  StoreOptions TableOptions() {
    StoreOptions options = Options();
    if (!GetParam()) options.value_cache_bytes = 0;
    return options;
  }
};

INSTANTIATE_TEST_SUITE_P(TableOfHotValues, StoreTableOnOffTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "On" : "Off"; });

// The hit counts' writes read each meta record from the table of hot values where it holds
// it (the puts offer theirs), else from the files: the same counts either way.
TEST_P(StoreTableOnOffTest, RecordHitsAccumulatesCountsAndLastHit) {
  StoreOptions options = TableOptions();
  Open(options);
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "x").ok());
  HitUpdate h{MakeDigest(1), 3, 5000};
  ASSERT_TRUE(store_->RecordHits("acme", {&h, 1}).ok());
  h.hits = 2;
  h.last_hit_ms = 4000;
  ASSERT_TRUE(store_->RecordHits("acme", {&h, 1}).ok());
  auto e = store_->Get("acme", MakeDigest(1), false);
  EXPECT_EQ(e->meta.hits, 5u);
  EXPECT_EQ(e->meta.last_hit_ms, 5000);
  Open(options);
  EXPECT_EQ(store_->Get("acme", MakeDigest(1), false)->meta.hits, 5u);

  // Many at once (written a lock stripe at a time, in batches): digests named twice add up,
  // deleted ones are skipped, and an entry's other metadata is kept.
  constexpr uint64_t kEntries = 600;
  for (uint64_t i = 10; i < 10 + kEntries; ++i) ASSERT_TRUE(Put("acme", i, "y", 60'000, "ns").ok());
  ASSERT_TRUE(store_->Delete("acme", MakeDigest(11)).ok());
  std::vector<HitUpdate> hits;
  for (uint64_t i = 10; i < 10 + kEntries; ++i)
    hits.push_back({MakeDigest(i), i, 1000 + int64_t(i)});
  for (uint64_t i = 10; i < 10 + kEntries; i += 3) hits.push_back({MakeDigest(i), 1, 9});
  ASSERT_TRUE(store_->RecordHits("acme", hits).ok());
  for (uint64_t i = 12; i < 10 + kEntries; ++i) {
    auto got = store_->Get("acme", MakeDigest(i), false);
    ASSERT_TRUE(got.ok()) << i;
    EXPECT_EQ(got->meta.hits, i + ((i - 10) % 3 == 0 ? 1 : 0)) << i;
    EXPECT_EQ(got->meta.last_hit_ms, 1000 + int64_t(i));
    EXPECT_EQ(got->meta.name_space, "ns");
  }
  EXPECT_TRUE(store_->Get("acme", MakeDigest(11), false).status().IsNotFound());
}

TEST_F(StoreTest, OrgFilesRoundTripAndRejectBadNames) {
  Open();
  CreateOrg("acme");
  std::vector<uint8_t> bytes(10000);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7);
  ASSERT_TRUE(store_->WriteOrgFile("acme", "snapshot-1", bytes).ok());
  auto back = store_->ReadOrgFile("acme", "snapshot-1");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, bytes);
  EXPECT_TRUE(store_->ReadOrgFile("acme", "missing").status().IsNotFound());
  EXPECT_EQ(store_->WriteOrgFile("acme", "../x", bytes).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store_->WriteOrgFile("acme", ".hidden", bytes).code(), Status::Code::kInvalidArgument);
}

TEST_F(StoreTest, StatsCountOperations) {
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "x").ok());
  (void)store_->Get("acme", MakeDigest(1));
  (void)store_->Get("acme", MakeDigest(2));
  auto st = store_->Stats("acme");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->puts, 1u);
  EXPECT_EQ(st->gets, 2u);
  EXPECT_EQ(st->hits, 1u);
  EXPECT_EQ(st->misses, 1u);
  EXPECT_EQ(st->active_key_version, 1u);
}

}  // namespace
}  // namespace sealcache::storage

namespace sealcache::storage {
namespace {

TEST_F(StoreTest, TokensAreFoundByHashRevokedAndDroppedWithTheirOrg) {
  Open();
  CreateOrg("acme");
  Digest h1 = MakeDigest(1), h2 = MakeDigest(2), admin = MakeDigest(3);
  ASSERT_TRUE(store_->AddToken(h1, {"acme", "id1", 10}).ok());
  ASSERT_TRUE(store_->AddToken(h2, {"acme", "id2", 11}).ok());
  ASSERT_TRUE(store_->AddToken(admin, {"", "adm", 12}).ok());
  EXPECT_TRUE(store_->AddToken(h1, {"nobody", "x", 1}).IsNotFound());
  auto t = store_->FindToken(h1);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->org, "acme");
  EXPECT_EQ(t->token_id, "id1");
  EXPECT_EQ(*store_->RevokeTokens("acme", "id1"), 1u);
  EXPECT_TRUE(store_->FindToken(h1).status().IsNotFound());
  EXPECT_TRUE(store_->FindToken(h2).ok());
  ASSERT_TRUE(store_->DropOrg("acme").ok());
  EXPECT_TRUE(store_->FindToken(h2).status().IsNotFound());
  EXPECT_EQ(store_->FindToken(admin)->org, "");
}

// ---- Exact-only entries, put conditions and expiry changes (the Redis-protocol front) ------

// A count of RocksDB's perf context on this thread while `fn` runs.
template <typename Fn>
uint64_t PerfCountDuring(uint64_t rocksdb::PerfContext::*count, Fn&& fn) {
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  rocksdb::get_perf_context()->Reset();
  fn();
  const uint64_t n = rocksdb::get_perf_context()->*count;
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  return n;
}

// The memtable reads while `fn` runs.
template <typename Fn>
uint64_t MemtableReadsDuring(Fn&& fn) {
  return PerfCountDuring(&rocksdb::PerfContext::get_from_memtable_count, fn);
}

// The bytes of values RocksDB's MultiGets returned while `fn` runs, from the memtables or the
// files.
template <typename Fn>
uint64_t MultiGetBytesDuring(Fn&& fn) {
  return PerfCountDuring(&rocksdb::PerfContext::multiget_read_bytes, fn);
}

Result<PutResult> PutExact(Store& store, uint64_t i, std::string_view payload, int64_t ttl_ms,
                           PutRequest::Condition condition = PutRequest::Condition::kAlways,
                           bool keep_expiry = false, bool return_previous = false) {
  PutRequest r;
  r.digest = MakeDigest(i);
  r.payload = {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()};
  r.ttl_ms = ttl_ms;
  r.condition = condition;
  r.keep_expiry = keep_expiry;
  r.return_previous = return_previous;
  return store.Put("acme", r);
}

// A put, a delete or an expiry change reads the entry's meta record under the digest's lock
// from the table of hot values when it holds it (every put offers it), else from the files (a
// put over a live entry asks the capacity tracker instead, below): each write sees the one
// before it either way, through replaces, hit counts and expiry changes.
TEST_P(StoreTableOnOffTest, EachWriteSeesTheLatestMetaRecord) {
  Open(TableOptions());
  CreateOrg("acme");
  using C = PutRequest::Condition;
  auto first = Put("acme", 1, "first");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(PutExact(*store_, 1, "refused", 60'000, C::kIfAbsent).status().code(),
            Status::Code::kAlreadyExists);
  auto second = Put("acme", 1, "second");
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(second->replaced_slot.has_value());
  EXPECT_EQ(*second->replaced_slot, first->slot);

  // Hit counts rewrite the record (and the table's copy): the next put still replaces the
  // second vector.
  HitUpdate h{MakeDigest(1), 4, 5000};
  ASSERT_TRUE(store_->RecordHits("acme", {&h, 1}).ok());
  auto third = Put("acme", 1, "third", 120'000);
  ASSERT_TRUE(third.ok());
  ASSERT_TRUE(third->replaced_slot.has_value());
  EXPECT_EQ(*third->replaced_slot, second->slot);

  // An expiry change, then a put that keeps the expiry: it keeps the changed one.
  const int64_t later = third->expires_ms + 500'000;
  ASSERT_TRUE(store_->SetExpiry("acme", MakeDigest(1), later).ok());
  auto kept = PutExact(*store_, 1, "fourth", 60'000, C::kIfPresent, /*keep_expiry=*/true);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(kept->expires_ms, later);
  ASSERT_TRUE(kept->replaced_slot.has_value());
  EXPECT_EQ(*kept->replaced_slot, third->slot);
  EXPECT_EQ(CountVectors("acme"), 0u);  // the fourth is exact-only; every vector replaced

  // A vector again, then deleted: the delete removes that slot; after it the entry is absent
  // to every writer.
  auto fifth = Put("acme", 1, "fifth");
  ASSERT_TRUE(fifth.ok());
  EXPECT_FALSE(fifth->replaced_slot.has_value());
  auto removed = store_->Delete("acme", MakeDigest(1));
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->slots, std::vector<uint64_t>{fifth->slot});
  EXPECT_EQ(PutExact(*store_, 1, "absent", 60'000, C::kIfPresent).status().code(),
            Status::Code::kNotFound);
  EXPECT_TRUE(store_->Delete("acme", MakeDigest(1)).status().IsNotFound());
  EXPECT_TRUE(store_->SetExpiry("acme", MakeDigest(1), later).status().IsNotFound());
  auto sixth = Put("acme", 1, "sixth");
  ASSERT_TRUE(sixth.ok());
  EXPECT_FALSE(sixth->replaced_slot.has_value());
  EXPECT_EQ(PayloadOf("acme", 1), "sixth");
  EXPECT_EQ(CountVectors("acme"), 1u);

  // An entry that expired and whose records a compaction dropped (the table is not told) is
  // gone for a writer too.
  ASSERT_TRUE(Put("acme", 2, "short-lived", 1'000).ok());
  clock_.Advance(2'000);
  ASSERT_TRUE(store_->CompactOrg("acme").ok());
  EXPECT_TRUE(store_->Delete("acme", MakeDigest(2)).status().IsNotFound());
  auto again = Put("acme", 2, "again");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->replaced_slot.has_value());
}

// A put over a live entry learns what it replaces (its vector slot, expiry and size) from
// the org's capacity tracker, which knows every live entry as the database has it under the
// digest's lock, and reads nothing; over an entry that expired (its records may still be
// there) it reads them, and removes the expired vector record with them.
TEST_F(StoreTest, APutOverALiveEntryReadsNothingAndOverAnExpiredOneRemovesItsRecords) {
  StoreOptions options = Options();
  options.value_cache_bytes = 0;  // no table of hot values to answer instead
  Open(options);
  CreateOrg("acme");
  auto first = Put("acme", 1, "first");
  ASSERT_TRUE(first.ok());
  auto short_lived = Put("acme", 2, "short-lived", 1'000);
  ASSERT_TRUE(short_lived.ok());

  Result<PutResult> second = Status::Internal("not run");
  EXPECT_EQ(MemtableReadsDuring([&] { second = Put("acme", 1, "second", 120'000); }), 0u);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(second->replaced_slot.has_value());
  EXPECT_EQ(*second->replaced_slot, first->slot);
  using C = PutRequest::Condition;
  Result<PutResult> kept = Status::Internal("not run");
  EXPECT_EQ(MemtableReadsDuring([&] {
              kept = PutExact(*store_, 1, "kept", 60'000, C::kIfPresent, /*keep_expiry=*/true);
            }),
            0u);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(kept->expires_ms, second->expires_ms);
  EXPECT_EQ(*kept->replaced_slot, second->slot);
  EXPECT_EQ(PutExact(*store_, 1, "refused", 60'000, C::kIfAbsent).status().code(),
            Status::Code::kAlreadyExists);

  clock_.Advance(2'000);
  Result<PutResult> again = Status::Internal("not run");
  EXPECT_GT(MemtableReadsDuring([&] { again = Put("acme", 2, "again"); }), 0u);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(again->replaced_slot.has_value());
  EXPECT_EQ(*again->replaced_slot, short_lived->slot);  // its record deleted in the put's write
  EXPECT_EQ(CountVectors("acme"), 1u);

  EXPECT_EQ(PayloadOf("acme", 1), "kept");
  EXPECT_EQ(PayloadOf("acme", 2), "again");
  // The counts the replaces kept are those a restart computes from the records.
  auto stats = store_->Stats("acme");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->live_entries, 2u);
  Open(options);
  auto reopened = store_->Stats("acme");
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(reopened->live_entries, 2u);
  EXPECT_EQ(reopened->logical_bytes, stats->logical_bytes);
}

// An expiry change rewrites the payload record with the new expiry: from the table of hot
// values when it holds the entry (one written or read by key recently), so it reads nothing
// from the database then; the payload is the same either way, also after a restart.
TEST_P(StoreTableOnOffTest, AnExpiryChangeTakesThePayloadFromTheTableWhenItHoldsIt) {
  Open(TableOptions());
  CreateOrg("acme");
  ASSERT_TRUE(PutExact(*store_, 1, "the payload", 60'000).ok());
  Result<EntryMeta> changed = Status::Internal("not run");
  const uint64_t memtable_reads = MemtableReadsDuring(
      [&] { changed = store_->SetExpiry("acme", MakeDigest(1), clock_.NowMillis() + 120'000); });
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  if (GetParam()) {
    EXPECT_EQ(memtable_reads, 0u);
  } else {
    EXPECT_GT(memtable_reads, 0u);
  }
  for (int restarted = 0; restarted < 2; ++restarted) {
    auto e = store_->Get("acme", MakeDigest(1));
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    EXPECT_EQ(std::string(e->payload.begin(), e->payload.end()), "the payload");
    EXPECT_EQ(e->meta.expires_ms, changed->expires_ms);
    Open(TableOptions());
  }
  // Past the old expiry and before the new one, a compaction keeps the entry.
  clock_.Advance(90'000);
  ASSERT_TRUE(store_->CompactOrg("acme").ok());
  EXPECT_EQ(PayloadOf("acme", 1), "the payload");
}

// A batch read (a lookup's answers) takes each entry from the table of hot values when it
// holds it (the puts offer theirs), reading nothing from the database then, and fills the
// table from the rest as a Get does (at a key's third miss): the same entries, payloads,
// misses and counts either way, and every write seen at once.
TEST_P(StoreTableOnOffTest, ABatchReadTakesWhatTheTableHoldsAndFillsItLikeAGet) {
  Open(TableOptions());
  CreateOrg("acme");
  for (uint64_t i = 1; i <= 3; ++i) ASSERT_TRUE(Put("acme", i, "p" + std::to_string(i)).ok());
  ASSERT_TRUE(Put("acme", 4, "short-lived", 1'000).ok());
  clock_.Advance(2'000);
  const std::vector<Digest> batch = {MakeDigest(1), MakeDigest(2), MakeDigest(3), MakeDigest(4),
                                     MakeDigest(5)};
  auto expect_batch = [&](const std::vector<Result<Entry>>& got, bool with_payload) {
    ASSERT_EQ(got.size(), batch.size());
    for (uint64_t i = 1; i <= 3; ++i) {
      const Result<Entry>& e = got[i - 1];
      ASSERT_TRUE(e.ok()) << i << ": " << e.status().ToString();
      EXPECT_EQ(e->meta.digest, MakeDigest(i));
      EXPECT_EQ(std::string(e->payload.begin(), e->payload.end()),
                with_payload ? "p" + std::to_string(i) : "");
    }
    EXPECT_TRUE(got[3].status().IsNotFound()) << "expired";
    EXPECT_TRUE(got[4].status().IsNotFound()) << "never written";
  };
  std::vector<Result<Entry>> got;
  const uint64_t live_reads =
      MultiGetBytesDuring([&] { got = store_->MultiGet("acme", std::span(batch).first(3), true); });
  if (GetParam()) {
    EXPECT_EQ(live_reads, 0u) << "the puts offered all three";
  } else {
    EXPECT_GT(live_reads, 0u);
  }
  expect_batch(store_->MultiGet("acme", batch, /*with_payload=*/true), true);
  expect_batch(store_->MultiGet("acme", batch, /*with_payload=*/false), false);
  auto stats = store_->Stats("acme");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->gets, 13u);
  EXPECT_EQ(stats->hits, 9u);
  EXPECT_EQ(stats->misses, 4u);

  // A write is seen by the next batch read.
  ASSERT_TRUE(Put("acme", 2, "replaced").ok());
  ASSERT_TRUE(store_->Delete("acme", MakeDigest(3)).ok());
  got = store_->MultiGet("acme", batch, true);
  ASSERT_TRUE(got[1].ok());
  EXPECT_EQ(std::string(got[1]->payload.begin(), got[1]->payload.end()), "replaced");
  EXPECT_TRUE(got[2].status().IsNotFound());

  // After a restart the table is empty: the third batch read of an entry caches it, and the
  // fourth reads nothing from the database (with the table).
  Open(TableOptions());
  for (int read = 1; read <= 4; ++read) {
    const uint64_t reads = MultiGetBytesDuring(
        [&] { got = store_->MultiGet("acme", std::span(batch).first(1), true); });
    ASSERT_TRUE(got[0].ok()) << got[0].status().ToString();
    EXPECT_EQ(std::string(got[0]->payload.begin(), got[0]->payload.end()), "p1");
    if (GetParam() && read == 4) {
      EXPECT_EQ(reads, 0u);
    } else {
      EXPECT_GT(reads, 0u) << "read " << read;
    }
  }
  // The cached copy is forgotten by the next write of the entry.
  ASSERT_TRUE(store_->SetExpiry("acme", MakeDigest(1), clock_.NowMillis() + 120'000).ok());
  ASSERT_TRUE(Put("acme", 1, "rewritten").ok());
  got = store_->MultiGet("acme", std::span(batch).first(1), true);
  ASSERT_TRUE(got[0].ok());
  EXPECT_EQ(std::string(got[0]->payload.begin(), got[0]->payload.end()), "rewritten");
}

TEST_F(StoreTest, AnExactOnlyEntryHasNoVectorAndLivesLikeAnyOther) {
  Open();
  CreateOrg("acme");
  auto put = PutExact(*store_, 1, "exact", 60'000);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->slot, kNoVectorSlot);
  EXPECT_EQ(PayloadOf("acme", 1), "exact");
  EXPECT_EQ(CountVectors("acme"), 0u);
  // Replacing a vector entry by an exact-only one hands back the old slot, and vice versa.
  auto vectored = Put("acme", 2, "with a vector");
  ASSERT_TRUE(vectored.ok());
  auto replaced = PutExact(*store_, 2, "now exact", 60'000);
  ASSERT_TRUE(replaced.ok());
  ASSERT_TRUE(replaced->replaced_slot.has_value());
  EXPECT_EQ(*replaced->replaced_slot, vectored->slot);
  EXPECT_EQ(CountVectors("acme"), 0u);
  auto again = Put("acme", 1, "a vector again");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->replaced_slot.has_value());
  EXPECT_EQ(CountVectors("acme"), 1u);
  // Deleted with no slot to report, and survives a reopen like any entry.
  auto removed = store_->Delete("acme", MakeDigest(2));
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(removed->slots.empty());
  ASSERT_EQ(removed->exact_only.size(), 1u);
  EXPECT_EQ(removed->exact_only[0], MakeDigest(2));
  ASSERT_TRUE(PutExact(*store_, 3, "kept", 60'000).ok());
  Open();
  EXPECT_EQ(PayloadOf("acme", 3), "kept");
  // An exact-only entry expires like any other.
  clock_.Advance(60'000);
  EXPECT_TRUE(store_->Get("acme", MakeDigest(3)).status().IsNotFound());
}

TEST_F(StoreTest, PutConditionsKeepExpiryAndPreviousPayload) {
  Open();
  CreateOrg("acme");
  using C = PutRequest::Condition;
  EXPECT_TRUE(PutExact(*store_, 1, "x", 60'000, C::kIfPresent).status().IsNotFound());
  ASSERT_TRUE(PutExact(*store_, 1, "first", 60'000, C::kIfAbsent).ok());
  EXPECT_EQ(PutExact(*store_, 1, "x", 60'000, C::kIfAbsent).status().code(),
            Status::Code::kAlreadyExists);
  EXPECT_EQ(PayloadOf("acme", 1), "first");
  clock_.Advance(10'000);
  auto kept = PutExact(*store_, 1, "second", 999'000, C::kIfPresent, /*keep_expiry=*/true,
                       /*return_previous=*/true);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(kept->expires_ms, clock_.NowMillis() + 50'000);
  ASSERT_TRUE(kept->previous.has_value());
  EXPECT_EQ(std::string(kept->previous->begin(), kept->previous->end()), "first");
  EXPECT_EQ(PayloadOf("acme", 1), "second");
  // An expired entry is absent to every condition.
  clock_.Advance(50'000);
  EXPECT_TRUE(PutExact(*store_, 1, "x", 60'000, C::kIfPresent).status().IsNotFound());
  auto fresh = PutExact(*store_, 1, "third", 60'000, C::kIfAbsent, true, true);
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(fresh->previous.has_value());
  EXPECT_EQ(fresh->expires_ms, clock_.NowMillis() + 60'000);
}

TEST_F(StoreTest, SetExpiryMovesEveryRecordOfTheEntry) {
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(Put("acme", 1, "vectored", 10'000).ok());
  ASSERT_TRUE(PutExact(*store_, 2, "exact", 10'000).ok());
  const int64_t later = clock_.NowMillis() + 100'000;
  for (uint64_t i : {1, 2}) {
    auto meta = store_->SetExpiry("acme", MakeDigest(i), later);
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    EXPECT_EQ(meta->expires_ms, later);
  }
  ASSERT_TRUE(
      store_
          ->ScanVectors("acme", 0,
                        [&](uint64_t, const Digest&, int64_t expires_ms, std::span<const float>) {
                          EXPECT_EQ(expires_ms, later);
                          return true;
                        })
          .ok());
  // Past the old expiry, a compaction (whose filter reads each record's own expiry) keeps
  // them; past the new one, it drops them.
  ASSERT_TRUE(store_->Flush().ok());
  clock_.Advance(50'000);
  ASSERT_TRUE(store_->CompactOrg("acme").ok());
  EXPECT_EQ(PayloadOf("acme", 1), "vectored");
  EXPECT_EQ(PayloadOf("acme", 2), "exact");
  EXPECT_EQ(CountVectors("acme"), 1u);
  clock_.Advance(50'000);
  ASSERT_TRUE(store_->CompactOrg("acme").ok());
  EXPECT_EQ(store_->Stats("acme")->live_sst_bytes, 0u);
  // Bad times and missing entries.
  ASSERT_TRUE(PutExact(*store_, 3, "x", 10'000).ok());
  EXPECT_EQ(store_->SetExpiry("acme", MakeDigest(3), clock_.NowMillis()).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(store_->SetExpiry("acme", MakeDigest(3), clock_.NowMillis() + Options().max_ttl_ms + 1)
                .status()
                .code(),
            Status::Code::kInvalidArgument);
  EXPECT_TRUE(store_->SetExpiry("acme", MakeDigest(9), later + 100'000).status().IsNotFound());
}

TEST_F(StoreTest, AGetRacingADeleteIsAHitOrAMissNeverAMissingPayload) {
  Open();
  CreateOrg("acme");
  constexpr int kDigests = 4;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop) {
      for (int i = 0; i < kDigests; ++i) {
        ASSERT_TRUE(Put("acme", i, "payload").ok());
        ASSERT_TRUE(store_->Delete("acme", MakeDigest(i)).ok());
      }
    }
  });
  int hits = 0, misses = 0;
  std::vector<Digest> digests;
  for (int i = 0; i < kDigests; ++i) digests.push_back(MakeDigest(i));
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < kDigests; ++i) {
      auto e = store_->Get("acme", MakeDigest(i));
      ASSERT_TRUE(e.ok() || e.status().IsNotFound()) << e.status().ToString();
      (e.ok() ? hits : misses)++;
    }
    for (const auto& e : store_->MultiGet("acme", digests, true)) {
      ASSERT_TRUE(e.ok() || e.status().IsNotFound()) << e.status().ToString();
    }
  }
  stop = true;
  writer.join();
  EXPECT_GT(hits, 0);
  EXPECT_GT(misses, 0);
}

// Copies an exported org from `from` to `to` the way a move streams it: each listed file
// in pieces, through ReadExportedFile and WriteStaged.
void CopyExport(Store& from, Store& to, const std::string& org, const OrgExport& exported) {
  constexpr size_t kPiece = 3000;  // not a multiple of any block or chunk size
  ASSERT_TRUE(to.StageImport(org).ok());
  for (const std::string& file : exported.files) {
    for (uint64_t offset = 0;;) {
      auto piece = from.ReadExportedFile(org, file, offset, kPiece);
      ASSERT_TRUE(piece.ok()) << file << ": " << piece.status().ToString();
      if (piece->empty()) break;
      ASSERT_TRUE(to.WriteStaged(org, file, offset, *piece).ok());
      offset += piece->size();
    }
  }
}

TEST_F(StoreTest, AnOrgMovesToAnotherStoreWithItsEntriesNamesAndCiphertextIntact) {
  Open();
  CreateOrg("acme");
  CreateOrg("globex");
  ASSERT_TRUE(Put("globex", 1, "globex's").ok());
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(Put("acme", i, "answer " + std::to_string(i)).ok());
  ASSERT_TRUE(store_->Flush().ok());
  for (int i = 300; i < 400; ++i) ASSERT_TRUE(Put("acme", i, "answer " + std::to_string(i)).ok());
  ASSERT_TRUE(store_->RotateKey("acme").ok());  // two key versions travel
  for (int i = 400; i < 450; ++i) ASSERT_TRUE(Put("acme", i, "answer " + std::to_string(i)).ok());
  ASSERT_TRUE(store_->Delete("acme", MakeDigest(7)).ok());
  ASSERT_TRUE(store_->WriteOrgFile("acme", "snapshot", Bytes("graph bytes")).ok());
  const Digest named = *store_->NameDigest("acme", "user:1");

  auto exported = store_->ExportOrg("acme");
  ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  // Closed while it moves; the other org serves.
  EXPECT_EQ(store_->Get("acme", MakeDigest(1)).status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(PayloadOf("globex", 1), "globex's") << "globex serves";
  for (const std::string& f : exported->files) {
    EXPECT_EQ(f.find(".log"), std::string::npos) << "no WAL travels: " << f;
  }

  const std::string other_dir = MakeTempDir("sealcache-store-dest");
  StoreOptions o = Options();
  o.data_dir = other_dir;
  auto dest = std::move(Store::Open(o, master_)).value();
  CopyExport(*store_, *dest, "acme", *exported);
  ASSERT_TRUE(dest->ImportOrg("acme", *exported).ok());
  for (int i = 0; i < 450; ++i) {
    auto e = dest->Get("acme", MakeDigest(i));
    if (i == 7) {
      EXPECT_TRUE(e.status().IsNotFound());
      continue;
    }
    ASSERT_TRUE(e.ok()) << i << ": " << e.status().ToString();
    EXPECT_EQ(std::string(e->payload.begin(), e->payload.end()), "answer " + std::to_string(i));
  }
  EXPECT_EQ(*dest->NameDigest("acme", "user:1"), named) << "client-named keys still map";
  EXPECT_EQ(*dest->ReadOrgFile("acme", "snapshot"), Bytes("graph bytes"));
  EXPECT_EQ(dest->KeyStatus("acme")->size(), 2u);
  // Byte for byte the source's files: ciphertext moved, nothing re-encrypted.
  for (const std::string& f : exported->files) {
    // RocksDB writes a new MANIFEST, OPTIONS and CURRENT at every open.
    if (f.rfind("MANIFEST", 0) == 0 || f.rfind("OPTIONS", 0) == 0 || f == "CURRENT") continue;
    EXPECT_EQ(ReadFile(other_dir + "/orgs/acme/" + f), ReadFile(dir_ + "/orgs/acme/" + f)) << f;
  }
  // New writes after the move, and a reopen of the destination.
  ASSERT_TRUE(dest->Put("acme",
                        [&] {
                          PutRequest r;
                          r.digest = MakeDigest(1000);
                          static const std::string p = "after the move";
                          r.payload = {reinterpret_cast<const uint8_t*>(p.data()), p.size()};
                          static const auto v = MakeVector(kDim, 1000);
                          r.vector = v;
                          r.ttl_ms = 60'000;
                          return r;
                        }())
                  .ok());
  dest.reset();
  dest = std::move(Store::Open(o, master_)).value();
  EXPECT_TRUE(dest->Get("acme", MakeDigest(1000)).ok());
  EXPECT_TRUE(dest->Get("acme", MakeDigest(449)).ok());
  EXPECT_EQ(dest->ImportOrg("acme", *exported).code(), Status::Code::kAlreadyExists);

  // The source: a failed move reopens it; a finished one drops it.
  ASSERT_TRUE(store_->ReopenOrg("acme").ok());
  EXPECT_EQ(PayloadOf("acme", 3), "answer 3");
  ASSERT_TRUE(store_->DropOrg("acme").ok());
  std::filesystem::remove_all(other_dir);
}

TEST_F(StoreTest, AnImportThatCannotCompleteLeavesNothingOfTheOrg) {
  Open();
  CreateOrg("acme");
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(Put("acme", i, "answer").ok());
  auto exported = store_->ExportOrg("acme");
  ASSERT_TRUE(exported.ok());
  const std::string other_dir = MakeTempDir("sealcache-store-dest");
  StoreOptions o = Options();
  o.data_dir = other_dir;
  auto dest = std::move(Store::Open(o, master_)).value();
  // Names outside the org's copy are refused.
  ASSERT_TRUE(dest->StageImport("acme").ok());
  for (std::string_view bad : {"../keys/keystore", "/etc/passwd", "a/b/c", ".hidden", "000001.log",
                               "LOCK", "meta/../x", ""}) {
    EXPECT_EQ(dest->WriteStaged("acme", bad, 0, Bytes("x")).code(), Status::Code::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(dest->WriteStaged("acme", "CURRENT", 5, Bytes("x")).code(),
            Status::Code::kInvalidArgument)
      << "a gap";
  // A missing file: refused, no ring and no directory left.
  CopyExport(*store_, *dest, "acme", *exported);
  std::filesystem::remove(other_dir + "/incoming/acme/CURRENT");
  EXPECT_FALSE(dest->ImportOrg("acme", *exported).ok());
  EXPECT_FALSE(std::filesystem::exists(other_dir + "/orgs/acme"));
  EXPECT_TRUE(dest->KeyStatus("acme").status().IsNotFound() || dest->KeyStatus("acme")->empty());
  // Under another master key the ring is refused and nothing is imported.
  auto foreign_key = std::move(crypto::RandomSecret(32)).value();
  StoreOptions f = Options();
  f.data_dir = MakeTempDir("sealcache-store-foreign");
  auto foreign = std::move(Store::Open(f, foreign_key)).value();
  CopyExport(*store_, *foreign, "acme", *exported);
  EXPECT_EQ(foreign->ImportOrg("acme", *exported).code(), Status::Code::kPermissionDenied);
  EXPECT_FALSE(std::filesystem::exists(f.data_dir + "/orgs/acme"));
  // A torn-off copy's staged files are gone at the next open.
  CopyExport(*store_, *dest, "acme", *exported);
  dest.reset();
  dest = std::move(Store::Open(o, master_)).value();
  EXPECT_FALSE(std::filesystem::exists(other_dir + "/incoming/acme"));
  EXPECT_TRUE(dest->ListOrgs().empty());
  foreign.reset();
  std::filesystem::remove_all(f.data_dir);
  std::filesystem::remove_all(other_dir);
}

// The Redis front's MULTI/EXEC: a transaction's writes are invisible until its commit and
// then all there at once; its own reads see them.
TEST_F(StoreTest, ATransactionWritesNothingUntilItsCommitAndThenEverythingAtOnce) {
  Open();
  CreateOrg("acme");
  clock_.Set(1'000'000);
  ASSERT_TRUE(Put("acme", 1, "old", 10'000).ok());
  ASSERT_TRUE(Put("acme", 3, "doomed", 10'000).ok());
  auto txn = store_->BeginTransaction("acme");
  ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  const std::vector<float> vec = MakeVector(kDim, 7);
  auto put = [&](uint64_t i, std::string_view payload) {
    PutRequest r;
    r.digest = MakeDigest(i);
    r.payload = {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()};
    r.vector = vec;
    r.ttl_ms = 20'000;
    return (*txn)->Put(r);
  };
  ASSERT_TRUE(put(1, "new").ok());
  ASSERT_TRUE(put(2, "two").ok());
  ASSERT_TRUE((*txn)->Delete(MakeDigest(3)).ok());
  auto moved = (*txn)->SetExpiry(MakeDigest(1), 1'050'000);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_TRUE((*txn)->Delete(MakeDigest(9)).status().IsNotFound());  // refused alone
  // Its own reads see its writes ...
  auto own = (*txn)->Get(MakeDigest(1));
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  EXPECT_EQ(std::string(own->payload.begin(), own->payload.end()), "new");
  EXPECT_EQ(own->meta.expires_ms, 1'050'000);
  EXPECT_EQ((*txn)->GetValue(MakeDigest(1))->expires_ms, 1'050'000);
  EXPECT_EQ((*txn)->GetValue(MakeDigest(2))->payload, Bytes("two"));
  EXPECT_TRUE((*txn)->Get(MakeDigest(3)).status().IsNotFound());
  // ... nobody else does.
  EXPECT_EQ(PayloadOf("acme", 1), "old");
  EXPECT_TRUE(store_->Get("acme", MakeDigest(2)).status().IsNotFound());
  EXPECT_EQ(PayloadOf("acme", 3), "doomed");
  EXPECT_EQ(store_->Stats("acme")->live_entries, 2u);
  EXPECT_EQ(CountVectors("acme"), 2u);

  auto committed = (*txn)->Commit();
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(PayloadOf("acme", 1), "new");
  EXPECT_EQ(store_->Get("acme", MakeDigest(1))->meta.expires_ms, 1'050'000);
  EXPECT_EQ(store_->GetValue("acme", MakeDigest(1))->expires_ms, 1'050'000);
  EXPECT_EQ(PayloadOf("acme", 2), "two");
  EXPECT_TRUE(store_->Get("acme", MakeDigest(3)).status().IsNotFound());
  EXPECT_EQ(store_->Stats("acme")->live_entries, 2u);
  EXPECT_EQ(CountVectors("acme"), 2u);  // 1's new one and 2's; 1's old one and 3's are gone
  EXPECT_EQ((*txn)->Commit().status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ((*txn)->Put({}).status().code(), Status::Code::kFailedPrecondition);
  txn->reset();

  // Durable as any write.
  Open();
  EXPECT_EQ(PayloadOf("acme", 1), "new");
  EXPECT_EQ(PayloadOf("acme", 2), "two");
  EXPECT_TRUE(store_->Get("acme", MakeDigest(3)).status().IsNotFound());
}

TEST_F(StoreTest, ATransactionDroppedUncommittedWritesNothingAndGivesBackWhatItReserved) {
  Open();
  CreateOrg("acme");
  ASSERT_TRUE(store_->SetOrgLimits("acme", {0, 2, "lru"}).ok());
  ASSERT_TRUE(Put("acme", 1, "one").ok());
  clock_.Advance(10);
  ASSERT_TRUE(Put("acme", 2, "two").ok());
  clock_.Advance(10);
  {
    auto txn = store_->BeginTransaction("acme");
    ASSERT_TRUE(txn.ok());
    PutRequest r;
    r.digest = MakeDigest(3);
    const std::string payload = "three";
    r.payload = {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()};
    r.ttl_ms = 60'000;
    auto put = (*txn)->Put(r);
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    EXPECT_EQ(put->evicted.count, 1u);  // the least recently used, in the same write
    EXPECT_TRUE((*txn)->Get(MakeDigest(1)).status().IsNotFound());
    EXPECT_EQ(CountVectors("acme"), 2u);  // (a scan: a read would make 1 the most recent)
  }
  // Nothing written; entry 1 is the least recent candidate again (a put evicts it, not 2),
  // and the room the put had reserved is free.
  EXPECT_TRUE(store_->Get("acme", MakeDigest(3)).status().IsNotFound());
  EXPECT_EQ(CountVectors("acme"), 2u);
  EXPECT_EQ(store_->Stats("acme")->live_entries, 2u);
  clock_.Advance(10);
  auto put = Put("acme", 4, "four");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->evicted.count, 1u);
  EXPECT_TRUE(store_->Get("acme", MakeDigest(1)).status().IsNotFound());
  EXPECT_EQ(PayloadOf("acme", 2), "two");
  EXPECT_EQ(store_->Stats("acme")->live_entries, 2u);

  // A transaction whose org is dropped under it writes nothing into a later org of the name.
  auto txn = store_->BeginTransaction("acme");
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(Put("acme", 5, "five").ok());
  ASSERT_TRUE(store_->DropOrg("acme").ok());
  CreateOrg("acme");
  EXPECT_EQ((*txn)->Delete(MakeDigest(5)).status().code(), Status::Code::kUnavailable);
  EXPECT_EQ((*txn)->Commit().status().code(), Status::Code::kUnavailable);
  txn->reset();
  EXPECT_EQ(store_->Stats("acme")->live_entries, 0u);
  EXPECT_TRUE(store_->BeginTransaction("nosuch").status().IsNotFound());
}

}  // namespace
}  // namespace sealcache::storage
