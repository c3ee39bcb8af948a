#include "sealcache/index/vector_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "sealcache/index/inner_product.h"
#include "test_util.h"

namespace sealcache::index {
namespace {

using testing::AddRows;
using testing::ClusteredVectors;
using testing::ExactTopK;
using testing::IsotropicVectors;
using testing::MakeIndex;
using testing::SearchOrDie;
using testing::Slots;
using testing::VectorSet;

IndexParams SmallParams(size_t dimension, size_t seal_threshold) {
  IndexParams p;
  p.dimension = dimension;
  p.hnsw_m = 16;
  p.ef_construction = 64;
  p.ef_search = 64;
  p.seal_threshold = seal_threshold;
  return p;
}

TEST(VectorIndex, RejectsInvalidParams) {
  IndexParams p;
  p.dimension = 0;
  EXPECT_EQ(VectorIndex::Create(p).status().code(), Status::Code::kInvalidArgument);
  p = IndexParams{};
  p.seal_threshold = 0;
  EXPECT_EQ(VectorIndex::Create(p).status().code(), Status::Code::kInvalidArgument);
  p = IndexParams{};
  p.rebuild_tombstone_ratio = 0.0;
  EXPECT_EQ(VectorIndex::Create(p).status().code(), Status::Code::kInvalidArgument);
  p = IndexParams{};
  p.hnsw_m = 1;
  EXPECT_EQ(VectorIndex::Create(p).status().code(), Status::Code::kInvalidArgument);
  p = IndexParams{};
  p.ef_search = kMaxEf + 1;
  EXPECT_EQ(VectorIndex::Create(p).status().code(), Status::Code::kInvalidArgument);
  p = IndexParams{};
  p.ef_construction = kMaxEf + 1;
  EXPECT_EQ(VectorIndex::Create(p).status().code(), Status::Code::kInvalidArgument);
  p = IndexParams{};
  p.ef_search = kMaxEf;
  EXPECT_TRUE(VectorIndex::Create(p).ok());
}

TEST(VectorIndex, RejectsNanInfZeroAndWrongDimensionWithAClearMessage) {
  auto index = MakeIndex(SmallParams(4, 100));
  std::vector<float> nan = {1, std::numeric_limits<float>::quiet_NaN(), 0, 0};
  std::vector<float> inf = {1, 0, -std::numeric_limits<float>::infinity(), 0};
  std::vector<float> zero = {0, 0, 0, 0};
  std::vector<float> short_vec = {1, 2, 3};

  Status s = index->Add(1, nan);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("element 1 is NaN"), std::string::npos) << s.message();
  s = index->Add(1, inf);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("element 2 is infinite"), std::string::npos) << s.message();
  s = index->Add(1, zero);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("zero vector"), std::string::npos) << s.message();
  s = index->Add(1, short_vec);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("dimension 3, the index expects 4"), std::string::npos) << s.message();

  for (const auto& q : {nan, inf, zero, short_vec}) {
    auto r = index->Search(q, 5, -1.0f);
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("query"), std::string::npos);
  }
  EXPECT_EQ(index->Size(), 0u);
  EXPECT_FALSE(index->HighestSlot().has_value());
}

TEST(VectorIndex, ScoresAreCosineSimilarityOfUnnormalisedInputs) {
  auto index = MakeIndex(SmallParams(3, 100));
  ASSERT_TRUE(index->Add(10, std::vector<float>{3, 0, 0}).ok());
  ASSERT_TRUE(index->Add(11, std::vector<float>{0, 5, 0}).ok());
  ASSERT_TRUE(index->Add(12, std::vector<float>{1, 1, 0}).ok());
  auto hits = SearchOrDie(*index, std::vector<float>{7, 0, 0}, 3);
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[0].slot, 10u);
  EXPECT_NEAR(hits[0].score, 1.0f, 1e-6);
  EXPECT_EQ(hits[1].slot, 12u);
  EXPECT_NEAR(hits[1].score, std::sqrt(0.5f), 1e-6);
  EXPECT_EQ(hits[2].slot, 11u);
  EXPECT_NEAR(hits[2].score, 0.0f, 1e-6);
}

TEST(VectorIndex, MinScoreDropsWeakerHits) {
  auto index = MakeIndex(SmallParams(3, 100));
  ASSERT_TRUE(index->Add(1, std::vector<float>{1, 0, 0}).ok());
  ASSERT_TRUE(index->Add(2, std::vector<float>{1, 1, 0}).ok());
  ASSERT_TRUE(index->Add(3, std::vector<float>{0, 1, 0}).ok());
  auto hits = SearchOrDie(*index, std::vector<float>{1, 0, 0}, 10, nullptr, 0.5f);
  EXPECT_EQ(Slots(hits), (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(SearchOrDie(*index, std::vector<float>{1, 0, 0}, 0).empty());
}

TEST(VectorIndex, TracksSizeContainsAndHighestSlot) {
  auto index = MakeIndex(SmallParams(2, 100));
  ASSERT_TRUE(index->Add(5, std::vector<float>{1, 0}).ok());
  ASSERT_TRUE(index->Add(9, std::vector<float>{0, 1}).ok());
  ASSERT_TRUE(index->Add(7, std::vector<float>{1, 1}).ok());
  EXPECT_EQ(index->Add(9, std::vector<float>{1, 0}).code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(index->Size(), 3u);
  EXPECT_EQ(index->HighestSlot(), 9u);
  ASSERT_TRUE(index->Remove(9).ok());
  EXPECT_TRUE(index->Remove(9).IsNotFound());
  EXPECT_TRUE(index->Remove(1234).IsNotFound());
  EXPECT_FALSE(index->Contains(9));
  EXPECT_TRUE(index->Contains(7));
  EXPECT_EQ(index->Size(), 2u);
  EXPECT_EQ(index->HighestSlot(), 9u) << "a removed slot still counts for replay";
  ASSERT_TRUE(index->Add(9, std::vector<float>{0, 1}).ok()) << "a removed slot may come back";
  EXPECT_EQ(SearchOrDie(*index, std::vector<float>{0, 1}, 1)[0].slot, 9u);
}

TEST(VectorIndex, FullMutableSegmentIsSealedIntoHnswInTheBackground) {
  VectorSet set = IsotropicVectors(2500, 32, 21);
  auto index = MakeIndex(SmallParams(32, 1000));
  AddRows(*index, set, 0, set.size());
  index->WaitForBackgroundWork();
  auto stats = index->Stats();
  EXPECT_EQ(stats.hnsw_segments, 1u) << "the second seal extends the first HNSW segment";
  EXPECT_EQ(stats.flat_segments, 1u);
  EXPECT_EQ(stats.background_failures, 0u);
  size_t self_found = 0;
  for (size_t i = 0; i < set.size(); ++i) {
    auto hits = SearchOrDie(*index, set.row(i), 1);
    self_found += !hits.empty() && hits[0].slot == i;
  }
  EXPECT_GE(self_found, set.size() * 99 / 100);
}

// An idle org's partly filled mutable segment is sealed on request (the server asks once the
// org had no inserts for a while): afterwards only an empty mutable segment is scanned, and
// every vector is still found. Too few vectors, or an exact index, seal nothing.
TEST(VectorIndex, SealMutableSealsAPartlyFilledSegmentOnRequest) {
  VectorSet set = IsotropicVectors(1300, 32, 23);
  auto index = MakeIndex(SmallParams(32, 1000));
  AddRows(*index, set, 0, set.size());
  index->WaitForBackgroundWork();
  ASSERT_EQ(index->Stats().flat_segments, 1u) << "the mutable segment holds 300 vectors";
  EXPECT_FALSE(index->SealMutable(301)) << "fewer vectors than asked for";
  ASSERT_TRUE(index->SealMutable(300));
  index->WaitForBackgroundWork();
  auto stats = index->Stats();
  EXPECT_EQ(stats.flat_segments, 1u) << "a new, empty mutable segment";
  EXPECT_EQ(stats.hnsw_segments, 1u) << "the 300 extended the graph of the first 1000";
  EXPECT_EQ(stats.background_failures, 0u);
  EXPECT_FALSE(index->SealMutable(1)) << "nothing left to seal";
  size_t self_found = 0;
  for (size_t i = 0; i < set.size(); ++i) {
    auto hits = SearchOrDie(*index, set.row(i), 1);
    self_found += !hits.empty() && hits[0].slot == i;
  }
  EXPECT_GE(self_found, set.size() * 99 / 100);
  // Inserts after the seal go to the new mutable segment.
  ASSERT_TRUE(index->Add(5000, set.row(0)).ok());
  EXPECT_EQ(SearchOrDie(*index, set.row(0), 2).size(), 2u);

  IndexParams exact = SmallParams(32, 1000);
  exact.exact = true;
  auto flat = MakeIndex(exact);
  AddRows(*flat, set, 0, 300);
  EXPECT_FALSE(flat->SealMutable(1));
}

TEST(VectorIndex, SealExtendsAnHnswSegmentUntilMaxSegmentSize) {
  VectorSet set = IsotropicVectors(5500, 32, 31);
  IndexParams p = SmallParams(32, 1000);
  p.max_segment_size = 2000;
  auto index = MakeIndex(p);
  AddRows(*index, set, 0, set.size());
  index->WaitForBackgroundWork();
  auto stats = index->Stats();
  EXPECT_EQ(stats.hnsw_segments, 3u);  // 2000 + 2000 + 1000
  EXPECT_EQ(stats.flat_segments, 1u);  // 500 in the mutable segment
  EXPECT_EQ(index->Size(), set.size());
  size_t self_found = 0;
  for (size_t i = 0; i < set.size(); ++i) {
    auto hits = SearchOrDie(*index, set.row(i), 1);
    self_found += !hits.empty() && hits[0].slot == i;
  }
  EXPECT_GE(self_found, set.size() * 99 / 100);
}

TEST(VectorIndex, ExactModeNeverBuildsHnswAndMatchesExactSearch) {
  VectorSet set = ClusteredVectors(3000, 24, 22);
  IndexParams p = SmallParams(24, 500);
  p.exact = true;
  auto index = MakeIndex(p);
  AddRows(*index, set, 0, set.size());
  index->WaitForBackgroundWork();
  EXPECT_EQ(index->Stats().hnsw_segments, 0u);
  VectorSet queries = ClusteredVectors(50, 24, 22, /*stream=*/1);
  for (size_t q = 0; q < queries.size(); ++q) {
    EXPECT_EQ(Slots(SearchOrDie(*index, queries.row(q), 10)), ExactTopK(set, queries.row(q), 10));
  }
}

TEST(VectorIndex, RemovedSlotIsNeverReturnedFromAnySegmentKind) {
  VectorSet set = IsotropicVectors(2500, 32, 23);
  auto index = MakeIndex(SmallParams(32, 1000));
  AddRows(*index, set, 0, set.size());
  index->WaitForBackgroundWork();  // slots 0..1999 sealed, 2000..2499 flat
  for (uint64_t slot : {0u, 999u, 1000u, 1500u, 2000u, 2499u}) {
    ASSERT_TRUE(index->Remove(slot).ok());
    for (const Hit& h : SearchOrDie(*index, set.row(slot), 20)) EXPECT_NE(h.slot, slot);
  }
}

// The race the tombstones exist for: slots of a segment that is being sealed are removed
// while the HNSW build runs; none may come back from the sealed segment. With
// `existing_hnsw`, the seal extends an HNSW segment whose own slots are removed too.
void RaceRemovalsAgainstASeal(bool existing_hnsw) {
  constexpr size_t kSeal = 4000;
  size_t first = existing_hnsw ? kSeal : 0;
  VectorSet set = IsotropicVectors(first + kSeal, 64, 24);
  auto index = MakeIndex(SmallParams(64, kSeal));
  if (existing_hnsw) {
    AddRows(*index, set, 0, kSeal);
    index->WaitForBackgroundWork();
    ASSERT_EQ(index->Stats().hnsw_segments, 1u);
  }
  AddRows(*index, set, first, set.size() - 1);
  std::atomic<bool> stop{false};
  std::atomic<size_t> searches{0};
  std::vector<uint64_t> removed;
  removed.reserve(set.size());
  std::atomic<size_t> removed_count{0};
  // Another thread searches the removed slots' own vectors while the seal runs and swaps.
  std::thread searcher([&] {
    while (!stop.load()) {
      size_t n = removed_count.load();
      for (size_t i = 0; i < n; ++i) {
        uint64_t slot = removed[i];
        for (const Hit& h : SearchOrDie(*index, set.row(slot), 5)) {
          ASSERT_NE(h.slot, slot) << "removed slot returned during seal";
        }
        ++searches;
      }
    }
  });
  ASSERT_TRUE(index->Add(set.size() - 1, set.row(set.size() - 1)).ok());  // seal starts
  size_t removed_before_sealed = 0;
  for (uint64_t slot = 0; slot < set.size(); slot += 7) {
    bool sealed = index->Stats().flat_segments == 1;  // frozen segment gone
    ASSERT_TRUE(index->Remove(slot).ok());
    removed.push_back(slot);
    removed_count.store(removed.size());
    if (!sealed) ++removed_before_sealed;
    for (const Hit& h : SearchOrDie(*index, set.row(slot), 5)) ASSERT_NE(h.slot, slot);
  }
  index->WaitForBackgroundWork();
  stop.store(true);
  searcher.join();
  EXPECT_GT(removed_before_sealed, 0u) << "the removals did not overlap the seal";
  EXPECT_GT(searches.load(), 0u);
  EXPECT_EQ(index->Stats().hnsw_segments, 1u);
  EXPECT_EQ(index->Stats().flat_segments, 1u);
  EXPECT_EQ(index->Size(), set.size() - removed.size());
  for (uint64_t slot : removed) {
    EXPECT_FALSE(index->Contains(slot));
    for (const Hit& h : SearchOrDie(*index, set.row(slot), 5)) ASSERT_NE(h.slot, slot);
  }
}

TEST(VectorIndex, RemovedSlotIsNeverReturnedWhileSealing) {
  RaceRemovalsAgainstASeal(/*existing_hnsw=*/false);
}

TEST(VectorIndex, RemovedSlotIsNeverReturnedWhileASealExtendsAnHnswSegment) {
  RaceRemovalsAgainstASeal(/*existing_hnsw=*/true);
}

TEST(VectorIndex, SegmentWithManyTombstonesIsRebuiltWithoutThem) {
  VectorSet set = IsotropicVectors(3000, 32, 25);
  IndexParams p = SmallParams(32, 2000);
  p.rebuild_tombstone_ratio = 0.2;
  auto index = MakeIndex(p);
  AddRows(*index, set, 0, set.size());
  index->WaitForBackgroundWork();
  ASSERT_EQ(index->Stats().hnsw_segments, 1u);
  std::set<uint64_t> removed;
  for (uint64_t slot = 0; slot < 2000; slot += 3) {  // a third of the sealed segment
    ASSERT_TRUE(index->Remove(slot).ok());
    removed.insert(slot);
  }
  index->WaitForBackgroundWork();
  auto stats = index->Stats();
  EXPECT_EQ(stats.hnsw_segments, 1u);
  EXPECT_EQ(stats.background_failures, 0u);
  // Removes that landed before the rebuild read the segment are gone for good; the rest
  // are tombstoned in the rebuilt segment, below the ratio.
  EXPECT_LT(stats.tombstoned, removed.size());
  EXPECT_LE(stats.tombstoned, 2000 * 0.2);
  EXPECT_EQ(index->Size(), set.size() - removed.size());
  size_t self_found = 0;
  for (uint64_t slot = 0; slot < 3000; ++slot) {
    auto hits = SearchOrDie(*index, set.row(slot), 3);
    if (removed.contains(slot)) {
      for (const Hit& h : hits) ASSERT_NE(h.slot, slot);
    } else {
      self_found += !hits.empty() && hits[0].slot == slot;
    }
  }
  EXPECT_GE(self_found, (3000 - removed.size()) * 99 / 100);
}

TEST(VectorIndex, SegmentWhoseEntriesAreAllRemovedIsDropped) {
  VectorSet set = IsotropicVectors(1200, 16, 26);
  auto index = MakeIndex(SmallParams(16, 1000));
  AddRows(*index, set, 0, set.size());
  index->WaitForBackgroundWork();
  for (uint64_t slot = 0; slot < 1000; ++slot) ASSERT_TRUE(index->Remove(slot).ok());
  index->WaitForBackgroundWork();
  EXPECT_EQ(index->Stats().hnsw_segments, 0u);
  EXPECT_EQ(index->Size(), 200u);
  EXPECT_EQ(SearchOrDie(*index, set.row(0), 300).size(), 200u);
}

// The filter runs inside the graph walk: with 10% of slots admitted, top-k is k admitted
// hits, the same ones an exact filtered scan finds (near enough for HNSW).
TEST(VectorIndex, FilterAdmittingTenPercentStillReturnsKAdmittedResults) {
  VectorSet set = ClusteredVectors(6000, 32, 27, 0, /*clusters=*/100);
  IndexParams p = SmallParams(32, 2500);
  p.max_segment_size = 2500;  // two HNSW segments, and the exact mutable one
  auto index = MakeIndex(p);
  AddRows(*index, set, 0, set.size());
  index->WaitForBackgroundWork();
  ASSERT_EQ(index->Stats().hnsw_segments, 2u);
  FunctionFilter tenth([](uint64_t slot) { return slot % 10 == 3; });
  VectorSet queries = ClusteredVectors(100, 32, 27, /*stream=*/1, 100);
  size_t overlap = 0;
  for (size_t q = 0; q < queries.size(); ++q) {
    auto hits = SearchOrDie(*index, queries.row(q), 10, &tenth);
    ASSERT_EQ(hits.size(), 10u);
    for (const Hit& h : hits) ASSERT_EQ(h.slot % 10, 3u);
    VectorSet admitted{32, {}};
    std::vector<uint64_t> admitted_slots;
    for (size_t i = 3; i < set.size(); i += 10) {
      admitted.data.insert(admitted.data.end(), set.row(i).begin(), set.row(i).end());
      admitted_slots.push_back(i);
    }
    std::set<uint64_t> expected;
    for (uint64_t row : ExactTopK(admitted, queries.row(q), 10)) {
      expected.insert(admitted_slots[row]);
    }
    for (const Hit& h : hits) overlap += expected.contains(h.slot);
  }
  EXPECT_GE(overlap, 100u * 10 * 95 / 100);
}

TEST(VectorIndex, AThresholdSearchAsksTheFilterOnlyAboutNodesThatMayReachTheThreshold) {
  // A semantic cache's lookup: near duplicates of stored vectors, k 5, min_score 0.9, a filter
  // (an FT.SEARCH index's membership) that is slow to ask. The walk's other kept nodes are
  // certainly below the threshold: asking the filter about them, or walking again because
  // fewer than k answers passed it, finds nothing more.
  constexpr size_t kD = 64;
  constexpr size_t kK = 5;
  constexpr float kMinScore = 0.9f;
  VectorSet set = ClusteredVectors(4000, kD, 61, 0, /*clusters=*/100);
  auto index = MakeIndex(SmallParams(kD, 1000));
  AddRows(*index, set, 0, set.size());
  index->WaitForBackgroundWork();
  ASSERT_GE(index->Stats().hnsw_segments, 1u);
  std::atomic<size_t> asked{0};
  FunctionFilter even([&](uint64_t slot) {
    asked.fetch_add(1, std::memory_order_relaxed);
    return slot % 2 == 0;
  });
  std::mt19937 rng(62);
  std::normal_distribution<float> noise(0.0f, 0.01f);
  size_t near_threshold = 0, answered = 0;
  for (size_t source = 0; source < set.size(); source += 37) {  // admitted and rejected sources
    std::vector<float> query(set.row(source).begin(), set.row(source).end());
    for (float& x : query) x += noise(rng);
    testing::NormalizeRow(query.data(), kD);
    // The exact answers: admitted vectors at or above the threshold, best first.
    std::vector<std::pair<float, uint64_t>> exact;
    for (size_t i = 0; i < set.size(); ++i) {
      const float score = InnerProductScalar(query.data(), set.row(i).data(), kD);
      if (score >= kMinScore - 0.05f) ++near_threshold;
      if (score >= kMinScore && i % 2 == 0) exact.emplace_back(score, i);
    }
    std::sort(exact.begin(), exact.end(), std::greater<>());
    if (exact.size() > kK) exact.resize(kK);
    std::vector<uint64_t> hits = Slots(SearchOrDie(*index, query, kK, &even, kMinScore));
    ASSERT_EQ(hits.size(), exact.size()) << "source " << source;
    for (size_t i = 0; i < exact.size(); ++i) EXPECT_EQ(hits[i], exact[i].second);
    answered += !exact.empty();
  }
  EXPECT_GT(answered, 40u);  // half the sources are admitted
  // At most once a walk for each vector near the threshold (the walk's int8 scores are within
  // their error bound of the real ones; a query whose short walk found no admitted answer is
  // walked again in full), where ranking k kept nodes, and walking again with the filter when
  // fewer than k passed it, asked it 17 times a query.
  EXPECT_LE(asked.load(), 2 * near_threshold);
}

TEST(VectorIndex, FilterAdmittingFewerThanKReturnsAllAdmitted) {
  VectorSet set = IsotropicVectors(3000, 16, 28);
  auto index = MakeIndex(SmallParams(16, 1000));
  AddRows(*index, set, 0, set.size());
  index->WaitForBackgroundWork();
  FunctionFilter three([](uint64_t slot) { return slot == 17 || slot == 1500 || slot == 2999; });
  std::vector<uint64_t> slots = Slots(SearchOrDie(*index, set.row(0), 10, &three));
  std::set<uint64_t> got(slots.begin(), slots.end());
  EXPECT_EQ(got, (std::set<uint64_t>{17, 1500, 2999}));
}

// Several writers and readers at once (also run under -fsanitize=thread: no reports).
// A search that starts after a Remove returned must not return that slot.
TEST(VectorIndex, ConcurrentInsertsRemovesAndSearchesAreSafe) {
  constexpr size_t kPerWriter = 1500;
  constexpr size_t kWriters = 2;
  VectorSet set = ClusteredVectors(kPerWriter * kWriters, 32, 29, 0, 50);
  IndexParams p = SmallParams(32, 400);
  p.rebuild_tombstone_ratio = 0.1;
  auto index = MakeIndex(p);
  // removed_epoch[slot]: value of `epoch` right after the slot's Remove returned, 0 if live.
  std::vector<std::atomic<uint64_t>> removed_epoch(set.size());
  for (auto& e : removed_epoch) e.store(0);
  std::atomic<uint64_t> epoch{1};
  std::atomic<bool> done{false};
  std::atomic<size_t> violations{0}, searches{0};

  auto writer = [&](size_t w) {
    for (size_t i = w * kPerWriter; i < (w + 1) * kPerWriter; ++i) {
      ASSERT_TRUE(index->Add(i, set.row(i)).ok());
      if (i % 4 == 0 && i >= w * kPerWriter + 8) {  // remove an earlier slot of our own range
        uint64_t victim = i - 8;
        ASSERT_TRUE(index->Remove(victim).ok());
        removed_epoch[victim].store(epoch.fetch_add(1) + 1);
      }
    }
  };
  auto reader = [&](size_t r) {
    FunctionFilter even([](uint64_t slot) { return slot % 2 == 0; });
    size_t q = r;
    while (!done.load()) {
      uint64_t started = epoch.load();
      auto hits = index->Search(set.row(q % set.size()), 10, -1.0f, r == 0 ? &even : nullptr);
      ASSERT_TRUE(hits.ok());
      for (const Hit& h : *hits) {
        uint64_t e = removed_epoch[h.slot].load();
        if (e != 0 && e <= started) ++violations;
        if (r == 0 && h.slot % 2 != 0) ++violations;
      }
      ++searches;
      q += 7;
    }
  };
  std::vector<std::thread> threads;
  for (size_t r = 0; r < 2; ++r) threads.emplace_back(reader, r);
  std::vector<std::thread> writers;
  for (size_t w = 0; w < kWriters; ++w) writers.emplace_back(writer, w);
  for (auto& t : writers) t.join();
  index->WaitForBackgroundWork();
  done.store(true);
  for (auto& t : threads) t.join();

  EXPECT_EQ(violations.load(), 0u);
  EXPECT_GT(searches.load(), 0u);
  size_t live = 0;
  for (size_t i = 0; i < set.size(); ++i) live += removed_epoch[i].load() == 0;
  EXPECT_EQ(index->Size(), live);
  EXPECT_EQ(index->Stats().background_failures, 0u);
  EXPECT_GT(index->Stats().hnsw_segments, 0u);
  for (size_t i = 0; i < set.size(); ++i) {
    EXPECT_EQ(index->Contains(i), removed_epoch[i].load() == 0) << i;
  }
}

TEST(VectorIndex, DestroyingDuringASealDoesNotWaitForTheBuildToFinish) {
  VectorSet set = IsotropicVectors(20000, 128, 30);
  IndexParams p = SmallParams(128, 20000);
  p.ef_construction = 200;
  auto index = MakeIndex(p);
  AddRows(*index, set, 0, set.size());  // the last Add queues a long seal
  auto start = std::chrono::steady_clock::now();
  index.reset();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 3.0);
}

}  // namespace
}  // namespace sealcache::index
