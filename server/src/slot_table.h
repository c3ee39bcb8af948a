// The slot table of an org: vector slot -> the entry's digest, expiry and namespace. A lookup
// asks it once for every candidate its walk keeps (is the entry live, unexpired, in the
// namespace?), so a find has to cost one cache miss: an open-addressing table with linear
// probing, entries stored inline, no tombstones (an erase shifts the entries after it back).
// Slots are issued in order, so keys are dense runs; a multiplicative hash spreads a run over
// the table instead of letting a wrapped run pile into one cluster. Not synchronised: the
// owner's lock guards it. Private to server/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "sealcache/storage/store.h"

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

  // The entry of `slot`, or null. Valid until the next Set or Erase.
  const SlotInfo* Find(uint64_t slot) const;
  SlotInfo* Find(uint64_t slot);
  bool Contains(uint64_t slot) const { return Find(slot) != nullptr; }
  // Inserts or replaces. `slot` must not be storage::kNoVectorSlot (it marks free cells).
  void Set(uint64_t slot, const SlotInfo& info);
  // False if `slot` was not there.
  bool Erase(uint64_t slot);

  size_t size() const { return size_; }
  size_t capacity() const { return mask_ + 1; }
  // Calls f(slot, info) for every entry, in no order. The table must not change meanwhile.
  template <typename F>
  void ForEach(F&& f) const {
    for (size_t i = 0; i <= mask_; ++i) {
      if (cells_[i].slot != kFree) f(cells_[i].slot, cells_[i].info);
    }
  }

 private:
  static constexpr uint64_t kFree = storage::kNoVectorSlot;

  struct Cell {
    uint64_t slot = kFree;
    SlotInfo info;
  };

  size_t Home(uint64_t slot) const;
  void Place(const Cell& cell);  // into the first free cell from its home; slot not present
  void Resize(size_t capacity);  // a power of two that holds size_ within the load limit

  std::unique_ptr<Cell[]> cells_;
  size_t mask_ = 0;  // capacity - 1
  int shift_ = 0;    // 64 - log2(capacity)
  size_t size_ = 0;
};

}  // namespace sealcache::server::internal
