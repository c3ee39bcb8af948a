// The org index over a real store: snapshot + replay answers like a rebuild, a damaged
// snapshot falls back to a rebuild, and snapshots hold no vector bytes in the clear.
#include <gtest/gtest.h>

#include <cmath>

#include "org_runtime.h"
#include "sealcache/half.h"
#include "sealcache/storage/file_header.h"
#include "server_fixture.h"

namespace sealcache::server {
namespace {

using internal::OrgRuntime;
using testing::MakeDigest;
using testing::MakeVector;

constexpr uint32_t kDim = 32;

class IndexIntegrationTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("sealcache-idx");
    master_ = std::move(crypto::RandomSecret(32)).value();
    storage::StoreOptions o;
    o.data_dir = dir_;
    o.reaper_period_ms = 0;
    store_ = std::move(storage::Store::Open(o, master_)).value();
    storage::OrgConfig c;
    c.dimension = kDim;
    c.index_kind = GetParam();
    ASSERT_TRUE(store_->CreateOrg("acme", c).ok());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void PutRange(int from, int to) {
    for (int i = from; i < to; ++i) {
      auto v = MakeVector(kDim, i);
      storage::PutRequest r;
      r.digest = MakeDigest(i);
      r.vector = v;
      std::string p = "p" + std::to_string(i);
      r.payload = {reinterpret_cast<const uint8_t*>(p.data()), p.size()};
      r.ttl_ms = 3'600'000;
      ASSERT_TRUE(store_->Put("acme", r).ok());
    }
  }
  // Puts entry i as a request would: in the store, then in the org's runtime; the store's
  // answer into `result` if given.
  void PutThrough(OrgRuntime& rt, int i, storage::PutResult* result = nullptr) {
    auto v = MakeVector(kDim, i);
    storage::PutRequest r;
    r.digest = MakeDigest(i);
    r.vector = v;
    r.payload = {reinterpret_cast<const uint8_t*>("p"), 1};
    r.ttl_ms = 3'600'000;
    auto put = store_->Put("acme", r);
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    rt.OnPut(r.digest, *put, v, "");
    if (result != nullptr) *result = *put;
  }
  std::unique_ptr<OrgRuntime> Load(std::string* log, index::IndexParams params = {}) {
    auto rt = OrgRuntime::Load(*store_, "acme", params, log);
    EXPECT_TRUE(rt.ok()) << rt.status().ToString();
    return rt.ok() ? std::move(rt).value() : nullptr;
  }
  std::vector<std::vector<uint64_t>> Answers(OrgRuntime& rt) {
    std::vector<std::vector<uint64_t>> out;
    for (int q = 0; q < 40; ++q) {
      auto query = MakeVector(kDim, 7000 + q);
      auto hits = rt.Search(query, 5, -1.0f, nullptr, 0);
      EXPECT_TRUE(hits.ok());
      std::vector<uint64_t> slots;
      for (auto& h : *hits) slots.push_back(h.slot);
      out.push_back(slots);
    }
    return out;
  }

  std::string dir_;
  crypto::SecretBytes master_;
  std::unique_ptr<storage::Store> store_;
};

TEST_P(IndexIntegrationTest, SnapshotPlusReplayAnswersLikeARebuild) {
  PutRange(0, 1500);
  std::string log;
  auto first = Load(&log);
  EXPECT_NE(log.find("no snapshot"), std::string::npos) << log;
  ASSERT_TRUE(first->WriteSnapshot(*store_, 0).ok());
  first.reset();
  // Changes after the snapshot: new entries, deletes, a replacement.
  PutRange(1500, 1800);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(store_->Delete("acme", MakeDigest(i * 7)).ok());
  PutRange(3, 4);
  auto from_snapshot = Load(&log);
  EXPECT_NE(log.find("loaded snapshot"), std::string::npos) << log;
  EXPECT_NE(log.find("replayed"), std::string::npos) << log;
  std::filesystem::remove(dir_ + "/orgs/acme/index/index.snapshot");
  auto rebuilt = Load(&log);
  EXPECT_NE(log.find("no snapshot"), std::string::npos) << log;
  EXPECT_EQ(from_snapshot->live_slots(), rebuilt->live_slots());
  auto a = Answers(*from_snapshot), b = Answers(*rebuilt);
  if (GetParam() == "flat") {
    EXPECT_EQ(a, b);  // exact search: identical
  } else {
    size_t same = 0, total = 0;
    for (size_t q = 0; q < a.size(); ++q) {
      for (uint64_t s : a[q]) same += std::count(b[q].begin(), b[q].end(), s);
      total += b[q].size();
    }
    EXPECT_GE(static_cast<double>(same) / total, 0.95);  // two HNSW graphs, same data
  }
}

TEST_P(IndexIntegrationTest, TheSweepRemovesAnEntryWhenItsExpiryComesDueWhereverItMoved) {
  std::string log;
  auto rt = Load(&log);
  ASSERT_NE(rt, nullptr);
  // Entries a (kept), b (expiry moved later), c (moved earlier), d (removed).
  std::vector<storage::PutResult> puts(4);
  for (int i = 0; i < 4; ++i) ASSERT_NO_FATAL_FAILURE(PutThrough(*rt, i, &puts[i]));
  const storage::PutResult &a = puts[0], &b = puts[1], &c = puts[2], &d = puts[3];
  const int64_t b_expires = b.expires_ms + 600'000, c_expires = c.expires_ms - 600'000;
  rt->OnExpiryChanged(MakeDigest(1), b.slot, b_expires);
  rt->OnExpiryChanged(MakeDigest(2), c.slot, c_expires);
  rt->OnRemoved(std::vector<uint64_t>{d.slot});
  ASSERT_EQ(rt->live_slots(), 3u);

  EXPECT_EQ(rt->SweepExpired(c_expires - 1), 0u);
  EXPECT_EQ(rt->SweepExpired(c_expires), 1u);  // c, at its earlier expiry
  EXPECT_EQ(rt->live_slots(), 2u);
  EXPECT_EQ(rt->SweepExpired(a.expires_ms - 1), 0u);
  // a at its expiry; b's first filing comes due with it but b now expires later.
  EXPECT_EQ(rt->SweepExpired(std::max(a.expires_ms, b.expires_ms) + 1000), 1u);
  EXPECT_EQ(rt->live_slots(), 1u);
  EXPECT_EQ(rt->SweepExpired(b_expires - 1), 0u);
  EXPECT_EQ(rt->SweepExpired(b_expires), 1u);  // b, at its later expiry
  EXPECT_EQ(rt->live_slots(), 0u);
  EXPECT_EQ(rt->SweepExpired(b_expires + 3'600'000), 0u);  // d's filing: already removed
  auto hits = rt->Search(MakeVector(kDim, 1), 4, -1.0f, nullptr, 0);
  ASSERT_TRUE(hits.ok());
  EXPECT_TRUE(hits->empty());
}

TEST_P(IndexIntegrationTest, DamagedSnapshotFallsBackToARebuild) {
  PutRange(0, 300);
  std::string log;
  auto rt = Load(&log);
  ASSERT_TRUE(rt->WriteSnapshot(*store_, 0).ok());
  rt.reset();
  const std::string path = dir_ + "/orgs/acme/index/index.snapshot";
  // Flip the byte's bits: writing a constant left the (random) ciphertext byte unchanged
  // once in 256 runs, and the "damaged" snapshot then loaded.
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(storage::kFileHeaderSize + 100);
  const char original = static_cast<char>(f.get());
  f.seekp(storage::kFileHeaderSize + 100);
  f.put(static_cast<char>(~original));
  f.close();
  rt = Load(&log);
  ASSERT_NE(rt, nullptr);
  EXPECT_NE(log.find("rebuilt from the store"), std::string::npos) << log;
  EXPECT_EQ(rt->live_slots(), 300u);
  auto q = MakeVector(kDim, 5);
  auto hits = rt->Search(q, 1, 0.99f, nullptr, 0);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ(hits->front().digest, MakeDigest(5));
}

TEST_P(IndexIntegrationTest, SnapshotFileHoldsNoVectorBytesInTheClear) {
  PutRange(0, 200);
  std::string log;
  auto rt = Load(&log);
  ASSERT_TRUE(rt->WriteSnapshot(*store_, 0).ok());
  std::ifstream in(dir_ + "/orgs/acme/index/index.snapshot", std::ios::binary);
  std::vector<uint8_t> file{std::istreambuf_iterator<char>(in), {}};
  ASSERT_GT(file.size(), storage::kFileHeaderSize);
  for (int i = 0; i < 200; i += 10) {
    // The index stores normalised vectors: look for both raw and normalised bytes.
    auto v = MakeVector(kDim, i);
    float norm = 0;
    for (float x : v) norm += x * x;
    norm = std::sqrt(norm);
    auto n = v;
    for (auto& x : n) x /= norm;
    for (const auto* vec : {&v, &n}) {
      auto* b = reinterpret_cast<const uint8_t*>(vec->data());
      EXPECT_EQ(std::search(file.begin(), file.end(), b, b + 16), file.end()) << i;
    }
    // Sealed segments keep the normalised vectors in half precision.
    uint16_t halves[8];
    EncodeHalf(n.data(), 8, halves);
    auto* h = reinterpret_cast<const uint8_t*>(halves);
    EXPECT_EQ(std::search(file.begin(), file.end(), h, h + 16), file.end()) << i;
  }
}

// Only graph indexes seal in the background; an exact ("flat") index never does.
class SealingIndexIntegrationTest : public IndexIntegrationTest {};

TEST_P(SealingIndexIntegrationTest, BackgroundSealsMakeTheSnapshotStaleEvenWithoutInserts) {
  PutRange(0, 3000);
  index::IndexParams small;
  small.seal_threshold = 1024;
  std::string log;
  auto rt = Load(&log, small);
  ASSERT_TRUE(rt->WriteSnapshot(*store_, 0).ok());  // taken while segments are still flat
  const std::string path = dir_ + "/orgs/acme/index/index.snapshot";
  std::ifstream in(path, std::ios::binary);
  std::vector<char> before{std::istreambuf_iterator<char>(in), {}};
  rt->index().WaitForBackgroundWork();
  ASSERT_GT(rt->index().Stats().hnsw_segments, 0u);
  // No insert since the snapshot, but the seals changed the index: shutdown must rewrite it.
  ASSERT_TRUE(rt->MaybeSnapshot(*store_, 50'000, 600'000, 1, /*force=*/true).ok());
  std::ifstream again(path, std::ios::binary);
  std::vector<char> after{std::istreambuf_iterator<char>(again), {}};
  EXPECT_NE(before, after);
  // And an unchanged index is not rewritten.
  ASSERT_TRUE(rt->MaybeSnapshot(*store_, 50'000, 600'000, 2, /*force=*/true).ok());
  std::ifstream third(path, std::ios::binary);
  EXPECT_EQ(after, std::vector<char>(std::istreambuf_iterator<char>(third), {}));
  rt.reset();
  auto reloaded = Load(&log, small);
  EXPECT_NE(log.find("loaded snapshot; replayed 0"), std::string::npos) << log;
  EXPECT_GT(reloaded->index().Stats().hnsw_segments, 0u);
}

// Once an org had no vector inserts for the idle period, the background loop's pass seals the
// vectors left in its mutable segment into the graph (lookups then scan none exactly); an
// insert restarts the period, and a segment with fewer than 256 vectors is left alone.
TEST_P(SealingIndexIntegrationTest, AnIdleOrgsMutableSegmentIsSealedAfterTheIdlePeriod) {
  PutRange(0, 1300);
  index::IndexParams small;
  small.seal_threshold = 1000;
  std::string log;
  auto rt = Load(&log, small);
  rt->index().WaitForBackgroundWork();
  ASSERT_EQ(rt->index().Stats().flat_segments, 1u) << "300 vectors wait in the mutable segment";
  constexpr int64_t kIdle = 5'000;
  EXPECT_FALSE(rt->MaybeSealIdle(1'000, 0)) << "0 disables it";
  EXPECT_FALSE(rt->MaybeSealIdle(1'000, kIdle)) << "idle since the runtime started, 1 s ago";
  // An insert at 4 s restarts the idle period.
  PutThrough(*rt, 1300);
  EXPECT_FALSE(rt->MaybeSealIdle(4'000, kIdle)) << "the pass that sees the insert";
  EXPECT_FALSE(rt->MaybeSealIdle(8'999, kIdle));
  ASSERT_TRUE(rt->MaybeSealIdle(9'000, kIdle));
  rt->index().WaitForBackgroundWork();
  auto stats = rt->index().Stats();
  EXPECT_EQ(stats.flat_segments, 1u);
  EXPECT_EQ(stats.hnsw_segments, 1u);
  EXPECT_EQ(stats.background_failures, 0u);
  EXPECT_EQ(rt->index().Size(), 1301u);
  auto hits = rt->Search(MakeVector(kDim, 1300), 1, -1.0f, nullptr, 0);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  // Nothing left to seal; 255 new vectors are too few to be worth a seal.
  EXPECT_FALSE(rt->MaybeSealIdle(20'000, kIdle));
  for (int i = 2000; i < 2255; ++i) PutThrough(*rt, i);
  EXPECT_FALSE(rt->MaybeSealIdle(21'000, kIdle));
  EXPECT_FALSE(rt->MaybeSealIdle(60'000, kIdle));
}

INSTANTIATE_TEST_SUITE_P(Kinds, IndexIntegrationTest, ::testing::Values("hnsw", "flat"));
INSTANTIATE_TEST_SUITE_P(Graph, SealingIndexIntegrationTest, ::testing::Values("hnsw"));

}  // namespace
}  // namespace sealcache::server
