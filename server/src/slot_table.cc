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

SlotTable::SlotTable() : table_(Table::WithCapacity(kMinCapacity)) {}

SlotTable::Table SlotTable::Table::WithCapacity(size_t capacity) {
  Table t;
  t.block = storage::ZeroedBlock(capacity * sizeof(Cell));
  t.mask = capacity - 1;
  t.shift = 64 - std::countr_zero(capacity);
  return t;
}

size_t SlotTable::Table::Home(uint64_t key) const {
  return static_cast<size_t>((~key * kFibonacci) >> shift);  // (the slot's hash)
}

SlotTable::Cell* SlotTable::Table::Find(uint64_t key) const {
  if (cells() == nullptr) return nullptr;
  for (size_t i = Home(key);; i = (i + 1) & mask) {
    Cell& c = cells()[i];
    if (c.key == key) return &c;
    if (c.key == kFreeKey) return nullptr;
  }
}

void SlotTable::Table::Place(const Cell& cell) {
  size_t i = Home(cell.key);
  while (cells()[i].key != kFreeKey) i = (i + 1) & mask;
  cells()[i] = cell;
}

const SlotInfo* SlotTable::Find(uint64_t slot) const {
  if (slot >= kSlotLimit) return nullptr;  // (their keys mark free and moved cells)
  if (const Cell* c = table_.Find(~slot)) return &c->info;
  if (old_.cells() == nullptr) return nullptr;
  const Cell* c = old_.Find(~slot);
  return c != nullptr ? &c->info : nullptr;
}

SlotInfo* SlotTable::Find(uint64_t slot) {
  return const_cast<SlotInfo*>(std::as_const(*this).Find(slot));
}

void SlotTable::Set(uint64_t slot, const SlotInfo& info) {
  if (SlotInfo* present = Find(slot)) {
    *present = info;  // (in whichever table holds it)
  } else {
    if ((size_ + 1) * kMaxLoadDen > capacity() * kMaxLoadNum) StartResize(capacity() * 2);
    table_.Place(Cell{~slot, info});
    ++size_;
  }
  Step();
}

bool SlotTable::Erase(uint64_t slot) {
  if (slot >= kSlotLimit) return false;
  const uint64_t key = ~slot;
  if (Cell* c = old_.Find(key)) {
    c->key = kMovedKey;  // a find of a later cell of its run probes on past it
  } else {
    size_t hole = table_.Home(key);
    while (table_.cells()[hole].key != key) {
      if (table_.cells()[hole].key == kFreeKey) return false;
      hole = (hole + 1) & table_.mask;
    }
    // Backward shift: an entry after the hole, up to the next free cell, moves into the hole
    // if its home lies cyclically at or before the hole (else a find would stop at the hole
    // before reaching it). The cell it leaves is the new hole. (The table new entries go into
    // never holds moved cells.)
    const size_t mask = table_.mask;
    for (size_t j = (hole + 1) & mask; table_.cells()[j].key != kFreeKey; j = (j + 1) & mask) {
      const size_t home = table_.Home(table_.cells()[j].key);
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        table_.cells()[hole] = table_.cells()[j];
        hole = j;
      }
    }
    table_.cells()[hole].key = kFreeKey;
  }
  --size_;
  if (capacity() > kMinCapacity && size_ * kMinLoadDen < capacity()) StartResize(capacity() / 2);
  Step();
  return true;
}

void SlotTable::StartResize(size_t capacity) {
  MoveSome(SIZE_MAX);  // at most one old table: the rest of a resize under way moves now
  Table fresh = Table::WithCapacity(capacity);
  old_ = std::move(table_);
  table_ = std::move(fresh);
  moved_ = 0;
}

void SlotTable::Step() {
  MoveSome(kMovesPerWrite);
  released_.Release(kReleasesPerWrite);
}

void SlotTable::MoveSome(size_t cells) {
  if (old_.cells() == nullptr) return;
  const size_t end = old_.capacity() - moved_ > cells ? moved_ + cells : old_.capacity();
  for (; moved_ < end; ++moved_) {
    Cell& c = old_.cells()[moved_];
    if (c.key <= kMovedKey) continue;
    table_.Place(c);
    c.key = kMovedKey;
  }
  if (moved_ < old_.capacity()) return;
  released_.Retire(std::move(old_.block));
  old_ = Table{};
}

}  // namespace sealcache::server::internal
