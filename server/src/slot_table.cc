#include "slot_table.h"

#include <bit>
#include <utility>

namespace sealcache::server::internal {
namespace {

// Smallest table: an org with a handful of entries costs 16 cells (~900 bytes).
constexpr size_t kMinCapacity = 16;
// Grows (doubles) past 13/16 full: linear probing then reads at most ~3 cells on average
// per find of a present slot (what a lookup asks), adjacent in memory, so mostly the cache
// line of the one miss; between 13/32 and 13/16 full a table costs 69-138 bytes an entry
// (std::unordered_map: ~90).
constexpr size_t kMaxLoadNum = 13, kMaxLoadDen = 16;
// Shrinks (halves) below 1/8 full, so a table emptied by expiry gives its memory back; a
// halved table is under 1/4 full, far from both limits, so alternating puts and removes do
// not resize back and forth.
constexpr size_t kMinLoadDen = 8;
// 2^64 / golden ratio: multiplying by it spreads a run of consecutive slots evenly.
constexpr uint64_t kFibonacci = 0x9E3779B97F4A7C15ull;

}  // namespace

SlotTable::SlotTable() { Resize(kMinCapacity); }

size_t SlotTable::Home(uint64_t slot) const {
  return static_cast<size_t>((slot * kFibonacci) >> shift_);
}

const SlotInfo* SlotTable::Find(uint64_t slot) const {
  for (size_t i = Home(slot);; i = (i + 1) & mask_) {
    const Cell& c = cells_[i];
    if (c.slot == slot) return &c.info;
    if (c.slot == kFree) return nullptr;
  }
}

SlotInfo* SlotTable::Find(uint64_t slot) {
  return const_cast<SlotInfo*>(std::as_const(*this).Find(slot));
}

void SlotTable::Set(uint64_t slot, const SlotInfo& info) {
  if (SlotInfo* present = Find(slot)) {
    *present = info;
    return;
  }
  if ((size_ + 1) * kMaxLoadDen > capacity() * kMaxLoadNum) Resize(capacity() * 2);
  Place(Cell{slot, info});
  ++size_;
}

void SlotTable::Place(const Cell& cell) {
  size_t i = Home(cell.slot);
  while (cells_[i].slot != kFree) i = (i + 1) & mask_;
  cells_[i] = cell;
}

bool SlotTable::Erase(uint64_t slot) {
  size_t hole = Home(slot);
  while (cells_[hole].slot != slot) {
    if (cells_[hole].slot == kFree) return false;
    hole = (hole + 1) & mask_;
  }
  // Backward shift: an entry after the hole, up to the next free cell, moves into the hole if
  // its home lies cyclically at or before the hole (else a find would stop at the hole before
  // reaching it). The cell it leaves is the new hole.
  for (size_t j = (hole + 1) & mask_; cells_[j].slot != kFree; j = (j + 1) & mask_) {
    const size_t home = Home(cells_[j].slot);
    if (((j - home) & mask_) >= ((j - hole) & mask_)) {
      cells_[hole] = cells_[j];
      hole = j;
    }
  }
  cells_[hole].slot = kFree;
  --size_;
  if (capacity() > kMinCapacity && size_ * kMinLoadDen < capacity()) Resize(capacity() / 2);
  return true;
}

void SlotTable::Resize(size_t capacity) {
  std::unique_ptr<Cell[]> old = std::move(cells_);
  const size_t old_capacity = old ? mask_ + 1 : 0;
  cells_ = std::make_unique<Cell[]>(capacity);
  mask_ = capacity - 1;
  shift_ = 64 - std::countr_zero(capacity);
  for (size_t i = 0; i < old_capacity; ++i) {
    if (old[i].slot != kFree) Place(old[i]);
  }
}

}  // namespace sealcache::server::internal
