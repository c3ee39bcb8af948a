// HnswSegment: an immutable FAISS HNSW graph (inner product, SIMD distances) over a sealed
// run of vectors. FAISS labels are the segment's local ids; `slots_` maps them to slots.
#pragma once

#include <faiss/IndexHNSW.h>

#include <memory>
#include <vector>

#include "segment.h"

namespace sealcache::index {

class HnswSegment final : public Segment {
 public:
  // REQUIRES: index->ntotal == slots.size(); tombstones->capacity() >= slots.size().
  HnswSegment(uint64_t id, std::shared_ptr<Tombstones> tombstones,
              std::unique_ptr<faiss::IndexHNSWFlat> index, std::vector<uint64_t> slots,
              int ef_search);

  Kind kind() const override { return Kind::kHnsw; }
  size_t size() const override { return slots_.size(); }
  uint64_t slot(size_t local) const override { return slots_[local]; }
  const float* vector(size_t local) const override { return xb_ + local * dimension(); }

  // HNSW with tombstones and filter inside the graph walk. If the walk finds fewer than k
  // admitted entries, or gives up because the filter admits almost nothing (SearchHnsw), the
  // segment is scanned exactly instead, so k admitted results come back whenever k exist.
  void Search(const float* query, const Filter* filter, TopK& top) const override;

  const faiss::IndexHNSWFlat& faiss_index() const { return *index_; }
  int ef_search() const { return ef_search_; }

 private:
  std::unique_ptr<faiss::IndexHNSWFlat> index_;
  std::vector<uint64_t> slots_;
  const float* xb_;
  int ef_search_;
};

}  // namespace sealcache::index
