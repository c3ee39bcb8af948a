// HnswSegment: an immutable HNSW graph (HnswGraph: FAISS's links, inner product, vectors in
// half precision and int8 codes) over a sealed run of vectors. The graph's ids are the
// segment's local ids; `slots_` maps them to slots.
#pragma once

#include <memory>
#include <vector>

#include "segment.h"
#include "simd_hnsw.h"

namespace sealcache::index {

class HnswSegment final : public Segment {
 public:
  // REQUIRES: graph->n == slots.size(); tombstones->capacity() >= slots.size().
  HnswSegment(uint64_t id, std::shared_ptr<Tombstones> tombstones, std::unique_ptr<HnswGraph> graph,
              std::vector<uint64_t> slots, int ef_search);

  Kind kind() const override { return Kind::kHnsw; }
  size_t size() const override { return slots_.size(); }
  uint64_t slot(size_t local) const override { return slots_[local]; }
  float Similarity(const float* query, size_t local) const override {
    return graph_->Similarity(query, local);
  }
  void CopyVector(size_t local, float* out) const override { graph_->Vector(local, out); }

  // A graph walk over int8 codes that skips tombstoned entries (a short one first when the
  // lookup has a threshold: see WalkHnsw); its kept nodes are then taken
  // by decreasing bound on their score, asked the filter and re-scored with the half-precision
  // vectors until no further one can be among the best k, so a lookup asks the filter and
  // reads the halves of a handful of entries instead of every node the walk keeps. If fewer than k
  // of the walk's nodes pass (a selective filter), the walk is repeated with the filter inside it;
  // if that finds fewer than k too, or gives up (SearchHnsw), the segment is scanned exactly,
  // so k admitted results come back whenever k exist.
  void Search(const float* query, const Int8Query& code, const Filter* filter,
              TopK& top) const override;

  const HnswGraph& graph() const { return *graph_; }
  int ef_search() const { return ef_search_; }

 private:
  std::unique_ptr<HnswGraph> graph_;
  std::vector<uint64_t> slots_;
  int ef_search_;
};

}  // namespace sealcache::index
