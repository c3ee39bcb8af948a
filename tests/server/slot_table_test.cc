// Two open-addressing maps of the server: the slot table (vector slot to the entry's digest,
// expiry and namespace, which every lookup asks about each candidate it keeps) and the hit
// table (hits counted per digest until they are written to the store).
#include "slot_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <unordered_map>
#include <vector>

#include "hit_table.h"

namespace sealcache::server::internal {
namespace {

SlotInfo Info(uint64_t slot) {
  SlotInfo info;
  info.digest[0] = static_cast<uint8_t>(slot);
  info.digest[31] = static_cast<uint8_t>(slot >> 8);
  info.expires_ms = static_cast<int64_t>(slot) * 1000 + 7;
  info.ns_id = static_cast<uint32_t>(slot % 5);
  return info;
}

void ExpectHolds(const SlotTable& table, const std::unordered_map<uint64_t, SlotInfo>& want) {
  ASSERT_EQ(table.size(), want.size());
  for (const auto& [slot, info] : want) {
    const SlotInfo* got = table.Find(slot);
    ASSERT_NE(got, nullptr) << "slot " << slot;
    EXPECT_EQ(got->digest, info.digest) << "slot " << slot;
    EXPECT_EQ(got->expires_ms, info.expires_ms) << "slot " << slot;
    EXPECT_EQ(got->ns_id, info.ns_id) << "slot " << slot;
  }
  size_t seen = 0;
  table.ForEach([&](uint64_t slot, const SlotInfo&) {
    EXPECT_EQ(want.count(slot), 1u) << "slot " << slot;
    ++seen;
  });
  EXPECT_EQ(seen, want.size());
}

TEST(SlotTableTest, FindsWhatWasSetAndNothingElse) {
  SlotTable table;
  EXPECT_EQ(table.Find(0), nullptr);
  table.Set(0, Info(0));
  table.Set(41, Info(41));
  ASSERT_NE(table.Find(41), nullptr);
  EXPECT_EQ(table.Find(41)->expires_ms, Info(41).expires_ms);
  EXPECT_TRUE(table.Contains(0));
  EXPECT_FALSE(table.Contains(1));
  EXPECT_FALSE(table.Contains(40));
  EXPECT_EQ(table.size(), 2u);
}

TEST(SlotTableTest, SetReplacesAndFindChangesInPlace) {
  SlotTable table;
  table.Set(9, Info(9));
  table.Set(9, Info(10));
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.Find(9)->expires_ms, Info(10).expires_ms);
  table.Find(9)->expires_ms = 5;
  EXPECT_EQ(table.Find(9)->expires_ms, 5);
}

TEST(SlotTableTest, EraseRemovesOnlyThatSlotAndReportsAbsentOnes) {
  SlotTable table;
  for (uint64_t s = 0; s < 10; ++s) table.Set(s, Info(s));
  EXPECT_TRUE(table.Erase(4));
  EXPECT_FALSE(table.Erase(4));
  EXPECT_FALSE(table.Erase(100));
  std::unordered_map<uint64_t, SlotInfo> want;
  for (uint64_t s = 0; s < 10; ++s)
    if (s != 4) want[s] = Info(s);
  ExpectHolds(table, want);
}

// Slots are issued in order: an org holds a dense run, grown one slot at a time.
TEST(SlotTableTest, HoldsADenseRunAndStaysWithinItsLoadLimit) {
  SlotTable table;
  std::unordered_map<uint64_t, SlotInfo> want;
  for (uint64_t s = 1000; s < 21000; ++s) {
    table.Set(s, Info(s));
    want[s] = Info(s);
    ASSERT_LE(table.size() * 16, table.capacity() * 13);
  }
  ExpectHolds(table, want);
}

// Slots a capacity apart, and runs wider than the table, share home cells under a plain
// modulo; every one of them must still be found and erased.
TEST(SlotTableTest, KeysThatShareLowBitsAreAllFoundAndErased) {
  SlotTable table;
  std::unordered_map<uint64_t, SlotInfo> want;
  for (uint64_t i = 0; i < 3000; ++i) {
    const uint64_t slot = i * 1024 + (i % 3);
    table.Set(slot, Info(slot));
    want[slot] = Info(slot);
  }
  ExpectHolds(table, want);
  for (uint64_t i = 0; i < 3000; i += 2) {
    const uint64_t slot = i * 1024 + (i % 3);
    ASSERT_TRUE(table.Erase(slot));
    want.erase(slot);
  }
  ExpectHolds(table, want);
}

// A cache's life: puts at the head of the slot range, replaces and expiries anywhere behind
// it. Checked against a std::unordered_map after every step, so every backward shift of an
// erase and every resize is covered.
TEST(SlotTableTest, MatchesAMapThroughPutsReplacesAndExpiries) {
  SlotTable table;
  std::unordered_map<uint64_t, SlotInfo> want;
  std::vector<uint64_t> live;
  std::mt19937_64 rng(17);
  uint64_t next_slot = 0;
  for (int step = 0; step < 60000; ++step) {
    const int op = static_cast<int>(rng() % 10);
    if (op < 5 || live.empty()) {  // put: a new slot
      const uint64_t slot = next_slot++;
      table.Set(slot, Info(slot));
      want[slot] = Info(slot);
      live.push_back(slot);
    } else if (op < 9) {  // replace or expire: an older slot goes
      const size_t at = rng() % live.size();
      const uint64_t slot = live[at];
      live[at] = live.back();
      live.pop_back();
      ASSERT_TRUE(table.Erase(slot)) << "step " << step;
      want.erase(slot);
    } else {  // expiry moved
      const uint64_t slot = live[rng() % live.size()];
      table.Find(slot)->expires_ms = step;
      want[slot].expires_ms = step;
    }
    if (step % 997 == 0) ExpectHolds(table, want);
  }
  ExpectHolds(table, want);
}

TEST(SlotTableTest, GivesMemoryBackWhenEmptied) {
  SlotTable table;
  const size_t empty_capacity = table.capacity();
  for (uint64_t s = 0; s < 50000; ++s) table.Set(s, Info(s));
  EXPECT_GE(table.capacity(), 50000u * 16 / 13);
  for (uint64_t s = 0; s < 50000; ++s) ASSERT_TRUE(table.Erase(s));
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.capacity(), empty_capacity);
  table.Set(7, Info(7));
  EXPECT_TRUE(table.Contains(7));
}

// A resize moves a few cells per write (SlotTable::kMovesPerWrite), so no write of a growing
// org holds its lock for the whole table; meanwhile every entry is found in one table or the
// other, and replaces and erases of entries not moved yet take effect.
TEST(SlotTableTest, ResizesAFewCellsPerWriteAndKeepsEveryEntryMeanwhile) {
  SlotTable table;
  std::unordered_map<uint64_t, SlotInfo> want;
  uint64_t next = 0;
  // Up to the write that starts the growth from 4096 cells to 8192 (at 13/16 of 4096).
  while (next < 4096 * 13 / 16 + 1) {
    table.Set(next, Info(next));
    want[next] = Info(next);
    ++next;
  }
  ASSERT_TRUE(table.resizing());
  ASSERT_EQ(table.capacity(), 8192u);
  const size_t old_capacity = 4096;
  ExpectHolds(table, want);
  // Slots set before the growth: nearly all still in the old table.
  table.Set(3, Info(1000003));
  want[3] = Info(1000003);
  ASSERT_TRUE(table.Erase(5));
  want.erase(5);
  EXPECT_FALSE(table.Erase(5));
  table.Find(7)->expires_ms = 42;
  want[7].expires_ms = 42;
  ExpectHolds(table, want);
  size_t writes = 3;  // (the one that started the resize, the Set and the Erase above)
  while (table.resizing()) {
    ASSERT_LE(writes, old_capacity / SlotTable::kMovesPerWrite + 1);
    if (writes % 3 == 0) {
      const uint64_t gone = next - 100;
      ASSERT_TRUE(table.Erase(gone));
      want.erase(gone);
    } else {
      table.Set(next, Info(next));
      want[next] = Info(next);
      ++next;
    }
    ++writes;
    if (writes % 97 == 0) ExpectHolds(table, want);
  }
  EXPECT_GE(writes, old_capacity / SlotTable::kMovesPerWrite);  // not all at once
  ExpectHolds(table, want);
}

// A table that shrinks while it grew moments before, and grows again: each resize finishes
// the one under way first, so there is never more than one old table.
TEST(SlotTableTest, ShrinksAndGrowsAgainThroughResizesUnderWay) {
  SlotTable table;
  std::unordered_map<uint64_t, SlotInfo> want;
  for (uint64_t s = 0; s < 20000; ++s) {
    table.Set(s, Info(s));
    want[s] = Info(s);
  }
  for (uint64_t s = 0; s < 19990; ++s) {  // all but ten expire: halvings, one after another
    ASSERT_TRUE(table.Erase(s));
    want.erase(s);
    if (s % 1009 == 0) ExpectHolds(table, want);
  }
  ExpectHolds(table, want);
  for (uint64_t s = 30000; s < 50000; ++s) {
    table.Set(s, Info(s));
    want[s] = Info(s);
    if (s % 1013 == 0) ExpectHolds(table, want);
  }
  ExpectHolds(table, want);
}

// The two slots above kSlotLimit mark free and moved cells: never present.
TEST(SlotTableTest, TheLargestSlotIsHeldAndTheReservedOnesAreNeverFound) {
  SlotTable table;
  EXPECT_EQ(table.Find(storage::kNoVectorSlot), nullptr);
  EXPECT_EQ(table.Find(SlotTable::kSlotLimit), nullptr);
  EXPECT_FALSE(table.Erase(storage::kNoVectorSlot));
  const uint64_t largest = SlotTable::kSlotLimit - 1;
  table.Set(largest, Info(9));
  table.Set(0, Info(0));
  ASSERT_NE(table.Find(largest), nullptr);
  EXPECT_EQ(table.Find(largest)->expires_ms, Info(9).expires_ms);
  EXPECT_EQ(table.Find(storage::kNoVectorSlot), nullptr);
  EXPECT_EQ(table.Find(SlotTable::kSlotLimit), nullptr);
  EXPECT_TRUE(table.Erase(largest));
  EXPECT_EQ(table.size(), 1u);
}

}  // namespace
}  // namespace sealcache::server::internal

// The hit table: hits counted per digest between two writes of them to the store.
namespace sealcache::server::internal {
namespace {

storage::Digest DigestOf(uint64_t i) {
  storage::Digest d{};
  std::memcpy(d.data() + 24, &i, sizeof(i));  // the first 24 bytes shared by every digest
  return d;
}

TEST(HitTableTest, CountsEachDigestsHitsAndKeepsTheLatestTime) {
  HitTable table;
  EXPECT_EQ(table.Add(DigestOf(1), 100), 1u);
  EXPECT_EQ(table.Add(DigestOf(2), 150), 1u);
  EXPECT_EQ(table.Add(DigestOf(1), 300), 2u);
  EXPECT_EQ(table.Add(DigestOf(1), 200), 3u);  // an earlier clock reading keeps 300
  EXPECT_EQ(table.size(), 2u);
  auto taken = table.Take();
  std::sort(taken.begin(), taken.end(),
            [](const auto& a, const auto& b) { return a.digest < b.digest; });
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_EQ(taken[0].digest, DigestOf(1));
  EXPECT_EQ(taken[0].hits, 3u);
  EXPECT_EQ(taken[0].last_hit_ms, 300);
  EXPECT_EQ(taken[1].digest, DigestOf(2));
  EXPECT_EQ(taken[1].hits, 1u);
  EXPECT_EQ(taken[1].last_hit_ms, 150);
}

TEST(HitTableTest, TakeEmptiesItAndCountsStartAgain) {
  HitTable table;
  table.Add(DigestOf(7), 1);
  table.Add(DigestOf(7), 2);
  EXPECT_EQ(table.Take().size(), 1u);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_TRUE(table.Take().empty());
  EXPECT_EQ(table.Add(DigestOf(7), 3), 1u);
}

// Many digests that differ only in their last bytes, through several periods of growing and
// shrinking counts, against a std::map.
TEST(HitTableTest, MatchesAMapThroughManyPeriods) {
  HitTable table;
  std::mt19937_64 rng(11);
  for (size_t period : {1000u, 60000u, 3u, 20000u, 0u, 500u}) {
    std::map<storage::Digest, storage::HitUpdate> want;
    for (size_t i = 0; i < period * 3; ++i) {
      const storage::Digest d = DigestOf(rng() % (period + 1));
      const int64_t now = static_cast<int64_t>(rng() % 1'000'000);
      auto& w = want[d];
      w.digest = d;
      w.last_hit_ms = std::max(w.last_hit_ms, now);
      ASSERT_EQ(table.Add(d, now), ++w.hits);
    }
    ASSERT_EQ(table.size(), want.size());
    EXPECT_LE(table.size() * 16, table.capacity() * 13);
    auto taken = table.Take();
    ASSERT_EQ(taken.size(), want.size());
    for (const auto& h : taken) {
      auto it = want.find(h.digest);
      ASSERT_NE(it, want.end());
      EXPECT_EQ(h.hits, it->second.hits);
      EXPECT_EQ(h.last_hit_ms, it->second.last_hit_ms);
      want.erase(it);
    }
    // Room for as many as the period had, not for the largest period ever seen.
    EXPECT_LE(table.capacity(), std::max<size_t>(16, taken.size() * 16 / 13 * 2 + 2));
  }
}

}  // namespace
}  // namespace sealcache::server::internal
