#include "flat_segment.h"

#include <algorithm>
#include <cstring>

namespace sealcache::index {

FlatSegment::FlatSegment(uint64_t id, size_t dimension, size_t capacity)
    : Segment(id, dimension, std::make_shared<Tombstones>(capacity)),
      capacity_(capacity),
      blocks_((capacity + kBlockEntries - 1) / kBlockEntries) {}

size_t FlatSegment::Append(uint64_t slot, const float* vec) {
  size_t local = size_.load(std::memory_order_relaxed);
  std::unique_ptr<Block>& block = blocks_[local / kBlockEntries];
  if (!block) {
    block = std::make_unique<Block>();
    size_t entries = std::min(kBlockEntries, capacity_ - local);
    block->vectors = std::make_unique<float[]>(entries * dimension());
  }
  size_t in_block = local % kBlockEntries;
  std::memcpy(block->vectors.get() + in_block * dimension(), vec, dimension() * sizeof(float));
  block->slots[in_block] = slot;
  size_.store(local + 1, std::memory_order_release);
  return local;
}

void FlatSegment::Search(const float* query, const Filter* filter, TopK& top) const {
  ExactScan(query, size(), filter, top);
}

}  // namespace sealcache::index
