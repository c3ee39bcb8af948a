#include "flat_segment.h"

#include <algorithm>
#include <cstring>

#include "sealcache/index/inner_product.h"
#include "simd_hnsw.h"

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
    block->codes = std::make_unique<int8_t[]>(entries * dimension());
  }
  size_t in_block = local % kBlockEntries;
  std::memcpy(block->vectors.get() + in_block * dimension(), vec, dimension() * sizeof(float));
  block->scales[in_block] =
      QuantizeInt8(vec, dimension(), block->codes.get() + in_block * dimension());
  block->slots[in_block] = slot;
  size_.store(local + 1, std::memory_order_release);
  return local;
}

void FlatSegment::Search(const float* query, const Int8Query& code, const Filter* filter,
                         TopK& top) const {
  const size_t n = size();
  const size_t d = dimension();
  // The code score plus its error bound (Int8Query::ErrorBound, for unit vectors) is at least
  // the float score, so a vector whose bound cannot make the top k cannot either.
  const Int8CodeProductFn code_ip = Int8CodeProductFunction();
  for (size_t local = 0; local < n; ++local) {
    if (tombstones()->Test(local)) continue;
    const Block& block = *blocks_[local / kBlockEntries];
    const size_t in_block = local % kBlockEntries;
    const float scale = block.scales[in_block];
    const float bound =
        code.scale * scale *
            static_cast<float>(code_ip(code.code.data(), block.codes.get() + in_block * d, d)) +
        code.ErrorBound(scale);
    if (!top.MayKeep(bound)) continue;
    const float score = Similarity(query, local);
    if (!top.MayKeep(score)) continue;
    const uint64_t s = block.slots[in_block];
    if (filter != nullptr && !filter->Admits(s)) continue;
    top.Offer(s, score);
  }
}

}  // namespace sealcache::index
