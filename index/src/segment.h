// Segment: a searchable, append-only or immutable run of vectors with local ids 0..size-1,
// each mapped to a slot. FlatSegment (exact scan) and HnswSegment (FAISS HNSW graph).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "sealcache/index/inner_product.h"
#include "sealcache/index/vector_index.h"
#include "tombstones.h"

namespace sealcache::index {

struct Int8Query;  // simd_hnsw.h

// Keeps the best k hits (score >= min_score) offered by any number of segments.
class TopK {
 public:
  TopK(size_t k, float min_score) : k_(k), min_score_(min_score) {
    heap_.reserve(std::min<size_t>(k, 1024));
  }

  void Offer(uint64_t slot, float score);
  // False when Offer(any slot, score) would certainly keep nothing: lets a scan skip the
  // filter for the (many) entries that lose on score alone.
  bool MayKeep(float score) const {
    return k_ != 0 && score >= min_score_ && (heap_.size() < k_ || score >= heap_.front().score);
  }
  size_t capacity() const { return k_; }
  float min_score() const { return min_score_; }
  // The hits, best first, ties by smaller slot.
  std::vector<Hit> Take() &&;

 private:
  size_t k_;
  float min_score_;
  std::vector<Hit> heap_;  // min-heap on (score, -slot): heap_.front() is the worst kept
};

class Segment {
 public:
  enum class Kind { kFlat, kHnsw };

  Segment(uint64_t id, size_t dimension, std::shared_ptr<Tombstones> tombstones)
      : id_(id), dimension_(dimension), tombstones_(std::move(tombstones)) {}
  virtual ~Segment() = default;

  uint64_t id() const { return id_; }
  size_t dimension() const { return dimension_; }
  const std::shared_ptr<Tombstones>& tombstones() const { return tombstones_; }

  virtual Kind kind() const = 0;
  // Entries visible to readers, removed ones included.
  virtual size_t size() const = 0;
  // REQUIRES: local < size()
  virtual uint64_t slot(size_t local) const = 0;
  // Inner product of `query` with the entry's vector, as the segment stores it.
  virtual float Similarity(const float* query, size_t local) const = 0;
  // The entry's vector as the segment stores it, widened to dimension() floats.
  virtual void CopyVector(size_t local, float* out) const = 0;

  // Offers this segment's best live, admitted entries for `query` (unit length; `code`, its
  // Int8Query::Of, computed once for every segment a search reads) to `top`.
  virtual void Search(const float* query, const Int8Query& code, const Filter* filter,
                      TopK& top) const = 0;

  // Exact scan over entries [0, n): skips tombstoned and non-admitted entries. The filter is
  // asked only about entries whose score would make the top k.
  void ExactScan(const float* query, size_t n, const Filter* filter, TopK& top) const;

  bool Admits(size_t local, const Filter* filter) const {
    return !tombstones_->Test(local) && (filter == nullptr || filter->Admits(slot(local)));
  }

 private:
  uint64_t id_;
  size_t dimension_;
  std::shared_ptr<Tombstones> tombstones_;
};

}  // namespace sealcache::index
