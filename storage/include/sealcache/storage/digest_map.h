// DigestMap: a hash map from digests for tables written under a lock that a whole org's
// requests wait on (the capacity tracker's entries, the server's exact-only entries).
//
// A std::unordered_map that outgrows its buckets relinks every node in one insert: 69 ms at
// 712k digests and 111 ms at 1.45M on this machine kind, with the org's other requests
// waiting. A DigestMap is an open-addressing table (linear probing, values stored inline,
// seeded DigestHash) that resizes a few cells per write, as the server's slot table does and
// as Redis rehashes its dictionaries: each TryEmplace and Erase moves the next kMovesPerWrite
// cells of the old table into the new one, and a find looks in the new table, then the old.
// Tables' memory is ZeroedBlocks: a moved-out one goes back kReleasesPerWrite bytes a write.
// Not synchronised.
//
// A pointer that Find or TryEmplace returns is valid until the next TryEmplace or Erase.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "sealcache/storage/store.h"
#include "sealcache/storage/zeroed_block.h"

namespace sealcache::storage {

template <typename V>
class DigestMap {
  static_assert(std::is_trivially_copyable_v<V>, "cells are moved by copying their bytes");

 public:
  // Cells of the old table a write moves while a resize is under way.
  static constexpr size_t kMovesPerWrite = 16;
  // Bytes of a moved-out table a write gives back to the kernel.
  static constexpr size_t kReleasesPerWrite = size_t{256} << 10;

  DigestMap() : table_(Table::WithCapacity(kMinCapacity)) {}
  DigestMap(const DigestMap&) = delete;
  DigestMap& operator=(const DigestMap&) = delete;

  // The value of `d`, or null.
  const V* Find(const Digest& d) const {
    const uint64_t h = hash_(d);
    if (const Cell* c = table_.Find(d, h)) return &c->value;
    const Cell* c = old_.Find(d, h);
    return c != nullptr ? &c->value : nullptr;
  }
  V* Find(const Digest& d) { return const_cast<V*>(std::as_const(*this).Find(d)); }

  // The value of `d`, and whether it was added now (value-initialised) rather than found.
  std::pair<V*, bool> TryEmplace(const Digest& d) {
    Step();
    if (V* present = Find(d)) return {present, false};
    if ((size_ + 1) * kMaxLoadDen > capacity() * kMaxLoadNum) StartResize(capacity() * 2);
    ++size_;
    return {&table_.Place(Cell{d, kLive, V{}}, hash_(d))->value, true};
  }

  // False if `d` was not there.
  bool Erase(const Digest& d) {
    const uint64_t h = hash_(d);
    if (Cell* c = old_.Find(d, h)) {
      c->state = kMoved;  // a find of a later cell of its run probes on past it
    } else if (!EraseFromTable(d, h)) {
      return false;
    }
    --size_;
    if (capacity() > kMinCapacity && size_ * kMinLoadDen < capacity()) StartResize(capacity() / 2);
    Step();
    return true;
  }

  size_t size() const { return size_; }
  // The capacity of the table new entries go into.
  size_t capacity() const { return table_.capacity(); }
  // Whether a resize is under way: entries are still in the old table.
  bool resizing() const { return old_.capacity() > 0; }

  // Calls f(digest, value) for every entry, in no order. The map must not change meanwhile.
  template <typename F>
  void ForEach(F&& f) {
    for (Table* t : {&table_, &old_}) {
      for (size_t i = 0; i < t->capacity(); ++i) {
        Cell& c = t->cells()[i];
        if (c.state == kLive) f(std::as_const(c.key), c.value);
      }
    }
  }

 private:
  static constexpr size_t kMinCapacity = 16;
  // Grows (doubles) past 13/16 full, shrinks (halves) below 1/8 full: a halved table is
  // under 1/4 full, far from both limits.
  static constexpr size_t kMaxLoadNum = 13, kMaxLoadDen = 16, kMinLoadDen = 8;
  // Zeroed memory is a table of free cells.
  enum : uint8_t { kFree = 0, kLive = 1, kMoved = 2 };  // kMoved: only in an old table
  struct Cell {
    Digest key;
    uint8_t state;
    V value;
  };
  struct Table {
    ZeroedBlock block;
    size_t mask = 0;  // capacity - 1
    int shift = 0;    // 64 - log2(capacity)

    static Table WithCapacity(size_t capacity) {
      Table t;
      t.block = ZeroedBlock(capacity * sizeof(Cell));
      t.mask = capacity - 1;
      t.shift = 64 - std::countr_zero(capacity);
      return t;
    }
    Cell* cells() const { return static_cast<Cell*>(block.data()); }
    size_t capacity() const { return cells() != nullptr ? mask + 1 : 0; }
    size_t Home(uint64_t hash) const { return static_cast<size_t>(hash >> shift); }
    Cell* Find(const Digest& d, uint64_t hash) const {
      if (cells() == nullptr) return nullptr;
      for (size_t i = Home(hash);; i = (i + 1) & mask) {
        Cell& c = cells()[i];
        if (c.state == kFree) return nullptr;
        if (c.state == kLive && c.key == d) return &c;
      }
    }
    // Into the first free cell from its home. REQUIRES: the key is not in the table.
    Cell* Place(const Cell& cell, uint64_t hash) {
      size_t i = Home(hash);
      while (cells()[i].state != kFree) i = (i + 1) & mask;
      cells()[i] = cell;
      return &cells()[i];
    }
  };

  // Erases `d` from the table new entries go into (which never holds moved cells) with a
  // backward shift: an entry after the hole, up to the next free cell, moves into the hole if
  // its home lies cyclically at or before the hole (else a find would stop at the hole before
  // reaching it); the cell it leaves is the new hole.
  bool EraseFromTable(const Digest& d, uint64_t hash) {
    const size_t mask = table_.mask;
    size_t hole = table_.Home(hash);
    for (;; hole = (hole + 1) & mask) {
      const Cell& c = table_.cells()[hole];
      if (c.state == kFree) return false;
      if (c.key == d) break;
    }
    for (size_t j = (hole + 1) & mask; table_.cells()[j].state != kFree; j = (j + 1) & mask) {
      const size_t home = table_.Home(hash_(table_.cells()[j].key));
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        table_.cells()[hole] = table_.cells()[j];
        hole = j;
      }
    }
    table_.cells()[hole].state = kFree;
    return true;
  }

  // Starts moving every entry into a new table of `capacity`, first finishing a resize under
  // way (so there is at most one old table).
  void StartResize(size_t capacity) {
    MoveSome(SIZE_MAX);
    Table fresh = Table::WithCapacity(capacity);
    old_ = std::move(table_);
    table_ = std::move(fresh);
    moved_ = 0;
  }

  // A write's share of a resize.
  void Step() {
    MoveSome(kMovesPerWrite);
    released_.Release(kReleasesPerWrite);
  }

  // Moves the next `cells` cells of the old table; retires it once every one is moved.
  void MoveSome(size_t cells) {
    if (old_.cells() == nullptr) return;
    const size_t end = old_.capacity() - moved_ > cells ? moved_ + cells : old_.capacity();
    for (; moved_ < end; ++moved_) {
      Cell& c = old_.cells()[moved_];
      if (c.state != kLive) continue;
      table_.Place(c, hash_(c.key));
      c.state = kMoved;
    }
    if (moved_ < old_.capacity()) return;
    released_.Retire(std::move(old_.block));
    old_ = Table{};
  }

  DigestHash hash_;
  Table table_;       // where new entries go
  Table old_;         // while resizing: the entries not moved yet
  size_t moved_ = 0;  // while resizing: the old table's cells before this one are moved
  size_t size_ = 0;
  BlockReleaser released_;  // moved-out tables' memory
};

}  // namespace sealcache::storage
