#include "hit_table.h"

#include <algorithm>
#include <bit>

namespace sealcache::server::internal {
namespace {

constexpr size_t kMinCapacity = 16;
// Grows (doubles) past 13/16 full, as the slot table (slot_table.cc says why).
constexpr size_t kMaxLoadNum = 13, kMaxLoadDen = 16;
constexpr uint64_t kFibonacci = 0x9E3779B97F4A7C15ull;

// The smallest power of two, at least kMinCapacity, that holds n within the load limit.
size_t CapacityFor(size_t n) {
  size_t c = kMinCapacity;
  while (n * kMaxLoadDen > c * kMaxLoadNum) c *= 2;
  return c;
}

}  // namespace

HitTable::HitTable() { Resize(kMinCapacity); }

size_t HitTable::Home(const storage::Digest& digest) const {
  return static_cast<size_t>((uint64_t{hash_(digest)} * kFibonacci) >> shift_);
}

uint64_t HitTable::Add(const storage::Digest& digest, int64_t now_ms) {
  for (size_t i = Home(digest);; i = (i + 1) & mask_) {
    storage::HitUpdate& c = cells_[i];
    if (c.hits == 0) break;
    if (c.digest == digest) {
      c.last_hit_ms = std::max(c.last_hit_ms, now_ms);
      return ++c.hits;
    }
  }
  if ((size_ + 1) * kMaxLoadDen > capacity() * kMaxLoadNum) Resize(capacity() * 2);
  Place(storage::HitUpdate{digest, 1, now_ms});
  ++size_;
  return 1;
}

void HitTable::Place(const storage::HitUpdate& hit) {
  size_t i = Home(hit.digest);
  while (cells_[i].hits != 0) i = (i + 1) & mask_;
  cells_[i] = hit;
}

std::vector<storage::HitUpdate> HitTable::Take() {
  std::vector<storage::HitUpdate> out;
  out.reserve(size_);
  for (size_t i = 0; i <= mask_; ++i) {
    if (cells_[i].hits != 0) out.push_back(cells_[i]);
  }
  size_ = 0;
  const size_t want = CapacityFor(out.size());
  if (want == capacity()) {
    std::fill_n(cells_.get(), capacity(), storage::HitUpdate{});
  } else {
    cells_.reset();  // nothing to re-place
    Resize(want);
  }
  return out;
}

void HitTable::Resize(size_t capacity) {
  std::unique_ptr<storage::HitUpdate[]> old = std::move(cells_);
  const size_t old_capacity = old ? mask_ + 1 : 0;
  cells_ = std::make_unique<storage::HitUpdate[]>(capacity);
  mask_ = capacity - 1;
  shift_ = 64 - std::countr_zero(capacity);
  for (size_t i = 0; i < old_capacity; ++i) {
    if (old[i].hits != 0) Place(old[i]);
  }
}

}  // namespace sealcache::server::internal
