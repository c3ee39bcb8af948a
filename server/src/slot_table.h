// The slot table of an org: vector slot -> the entry's digest, expiry and namespace. A lookup
// asks it once for every candidate its walk keeps (is the entry live, unexpired, in the
// namespace?), so a find has to cost one cache miss: an open-addressing table with linear
// probing, entries stored inline, no tombstones (an erase shifts the entries after it back).
// Slots are issued in order, so keys are dense runs; a multiplicative hash spreads a run over
// the table instead of letting a wrapped run pile into one cluster. Not synchronised: the
// owner's lock guards it. Private to server/.
//
// A resize moves the entries a few at a time, as Redis rehashes its dictionaries: each Set and
// Erase moves the next kMovesPerWrite cells of the old table into the new one, and a find
// looks in the new table, then in the old. Moving them all at once held the org's write lock
// (and so every lookup of the org) for 15 ms at 213k entries and 60 ms at 852k on this
// machine, once per doubling. A new table's memory comes zeroed from the kernel, page by
// page as it is first written, instead of being filled before the first entry moves; an old
// one goes back to the kernel a few hundred KB a write (unmapping 58 MB at once took 4.8 ms).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "sealcache/storage/store.h"
#include "sealcache/storage/zeroed_block.h"

namespace sealcache::server::internal {

struct SlotInfo {
  storage::Digest digest{};
  int64_t expires_ms = 0;
  uint32_t ns_id = 0;
};

class SlotTable {
 public:
  SlotTable();
  SlotTable(const SlotTable&) = delete;
  SlotTable& operator=(const SlotTable&) = delete;

  // Slots from 0 up to, not including, this one (the two above it mark free and moved cells).
  static constexpr uint64_t kSlotLimit = storage::kNoVectorSlot - 1;
  // Cells of the old table a Set or Erase moves while a resize is under way.
  static constexpr size_t kMovesPerWrite = 16;
  // Bytes of a moved-out old table a Set or Erase gives back to the kernel.
  static constexpr size_t kReleasesPerWrite = size_t{256} << 10;

  // The entry of `slot`, or null. Valid until the next Set or Erase.
  const SlotInfo* Find(uint64_t slot) const;
  SlotInfo* Find(uint64_t slot);
  bool Contains(uint64_t slot) const { return Find(slot) != nullptr; }
  // Inserts or replaces. REQUIRES: slot < kSlotLimit.
  void Set(uint64_t slot, const SlotInfo& info);
  // False if `slot` was not there.
  bool Erase(uint64_t slot);

  size_t size() const { return size_; }
  // The capacity of the table new entries go into (the new one while a resize is under way).
  size_t capacity() const { return table_.capacity(); }
  // Whether a resize is under way: entries are still in the old table.
  bool resizing() const { return old_.capacity() > 0; }
  // Calls f(slot, info) for every entry, in no order. The table must not change meanwhile.
  template <typename F>
  void ForEach(F&& f) const {
    for (const Table* t : {&table_, &old_}) {
      for (size_t i = 0; i < t->capacity(); ++i) {
        const Cell& c = t->cells()[i];
        if (c.key > kMovedKey) f(~c.key, c.info);
      }
    }
  }

 private:
  // A cell holds ~slot, so that zeroed memory is a table of free cells.
  static constexpr uint64_t kFreeKey = 0;   // ~storage::kNoVectorSlot
  static constexpr uint64_t kMovedKey = 1;  // ~(kSlotLimit): moved to the new table, or erased
                                            // from the old one; a find probes on past it
  struct Cell {
    uint64_t key;
    SlotInfo info;
  };
  // Cells of a power-of-two capacity, zeroed (free) when allocated.
  struct Table {
    storage::ZeroedBlock block;
    size_t mask = 0;  // capacity - 1
    int shift = 0;    // 64 - log2(capacity)

    static Table WithCapacity(size_t capacity);
    Cell* cells() const { return static_cast<Cell*>(block.data()); }
    size_t capacity() const { return cells() != nullptr ? mask + 1 : 0; }
    size_t Home(uint64_t key) const;
    // The cell holding `key`, or null.
    Cell* Find(uint64_t key) const;
    // Into the first free cell from its home (moved cells, only in an old table, are not
    // reused). REQUIRES: key is not in the table.
    void Place(const Cell& cell);
  };

  // Starts moving every entry into a new table of `capacity` (a power of two that holds size_
  // within the load limit), first finishing a resize under way.
  void StartResize(size_t capacity);
  // A write's share of a resize: the next kMovesPerWrite cells moved, kReleasesPerWrite bytes
  // of a moved-out table given back.
  void Step();
  // Moves the next `cells` cells of the old table; retires it once every one is moved.
  void MoveSome(size_t cells);

  Table table_;       // where new entries go
  Table old_;         // while resizing: the entries not moved yet (key > kMovedKey)
  size_t moved_ = 0;  // while resizing: the old table's cells before this one are moved
  size_t size_ = 0;
  storage::BlockReleaser released_;  // moved-out tables' memory
};

}  // namespace sealcache::server::internal
