// Tombstones: one bit per local id of a segment, set when the slot there is removed.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace sealcache::index {

// Fixed-size bitmap readable by any number of searching threads while the writer sets bits.
// A frozen flat segment and the HNSW segment sealed from it share one Tombstones (same local
// ids), so a slot removed while its segment is being sealed stays removed in the result.
class Tombstones {
 public:
  explicit Tombstones(size_t capacity)
      : capacity_(capacity), words_(new std::atomic<uint64_t>[(capacity + 63) / 64]) {
    for (size_t i = 0; i < (capacity + 63) / 64; ++i) words_[i].store(0, std::memory_order_relaxed);
  }

  size_t capacity() const { return capacity_; }

  bool Test(size_t local) const {
    return (words_[local / 64].load(std::memory_order_acquire) >> (local % 64)) & 1;
  }

  // REQUIRES: the index's writer lock (the count is not atomic with the bit).
  // Returns false if the bit was already set.
  bool Set(size_t local) {
    uint64_t bit = uint64_t{1} << (local % 64);
    uint64_t old = words_[local / 64].fetch_or(bit, std::memory_order_acq_rel);
    if (old & bit) return false;
    count_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // Number of bits set.
  size_t count() const { return count_.load(std::memory_order_relaxed); }

  // The first `n` bits as 64-bit words (bit i of word w is local 64*w + i).
  std::vector<uint64_t> CopyWords(size_t n) const {
    std::vector<uint64_t> out((n + 63) / 64);
    for (size_t w = 0; w < out.size(); ++w) out[w] = words_[w].load(std::memory_order_acquire);
    if (n % 64 != 0 && !out.empty()) out.back() &= (uint64_t{1} << (n % 64)) - 1;
    return out;
  }

 private:
  size_t capacity_;
  std::unique_ptr<std::atomic<uint64_t>[]> words_;
  std::atomic<size_t> count_{0};
};

}  // namespace sealcache::index
