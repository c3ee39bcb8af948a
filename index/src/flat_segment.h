// FlatSegment: vectors searched by exact scan. The mutable segment of an index is a
// FlatSegment that one writer appends to while readers scan it; once full it is frozen.
// Each vector is kept as floats and as its int8 code: a scan multiplies the query's code with
// each vector's and computes the float score only of vectors whose bound on it can still make
// the top k, so it returns the float scan's hits while reading a quarter of the bytes.
#pragma once

#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

#include "segment.h"

namespace sealcache::index {

class FlatSegment final : public Segment {
 public:
  // Space for `capacity` entries is reserved in blocks, allocated as they fill.
  FlatSegment(uint64_t id, size_t dimension, size_t capacity);

  Kind kind() const override { return Kind::kFlat; }
  size_t size() const override { return size_.load(std::memory_order_acquire); }
  size_t capacity() const { return capacity_; }
  bool full() const { return size() == capacity_; }

  uint64_t slot(size_t local) const override {
    return blocks_[local / kBlockEntries]->slots[local % kBlockEntries];
  }
  const float* vector(size_t local) const {
    return blocks_[local / kBlockEntries]->vectors.get() + (local % kBlockEntries) * dimension();
  }
  float Similarity(const float* query, size_t local) const override {
    return InnerProductFunction()(query, vector(local), dimension());
  }
  void CopyVector(size_t local, float* out) const override {
    std::copy_n(vector(local), dimension(), out);
  }

  // Appends and publishes one entry; returns its local id. Readers see it once this returns.
  // REQUIRES: a single writer at a time (the index's writer lock); !full();
  // `vec` has dimension() floats.
  size_t Append(uint64_t slot, const float* vec);

  void Search(const float* query, const Int8Query& code, const Filter* filter,
              TopK& top) const override;

 private:
  static constexpr size_t kBlockEntries = 256;
  struct Block {
    std::unique_ptr<float[]> vectors;
    std::unique_ptr<int8_t[]> codes;  // QuantizeInt8 of each vector
    float scales[kBlockEntries];
    uint64_t slots[kBlockEntries];
  };

  size_t capacity_;
  // Sized once; a block pointer is written before the size that makes it reachable is
  // published (release), so readers that load the size (acquire) see it.
  std::vector<std::unique_ptr<Block>> blocks_;
  std::atomic<size_t> size_{0};
};

}  // namespace sealcache::index
