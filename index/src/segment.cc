#include "segment.h"

#include <algorithm>

namespace sealcache::index {
namespace {

// Orders hits best first: higher score, then smaller slot. As a heap comparator it keeps
// the worst hit at the front.
bool Better(const Hit& a, const Hit& b) {
  return a.score != b.score ? a.score > b.score : a.slot < b.slot;
}

}  // namespace

void TopK::Offer(uint64_t slot, float score) {
  if (k_ == 0 || !(score >= min_score_)) return;
  Hit hit{slot, score};
  if (heap_.size() < k_) {
    heap_.push_back(hit);
    std::push_heap(heap_.begin(), heap_.end(), Better);
    return;
  }
  if (!Better(hit, heap_.front())) return;
  std::pop_heap(heap_.begin(), heap_.end(), Better);
  heap_.back() = hit;
  std::push_heap(heap_.begin(), heap_.end(), Better);
}

std::vector<Hit> TopK::Take() && {
  std::sort(heap_.begin(), heap_.end(), Better);
  return std::move(heap_);
}

void Segment::ExactScan(const float* query, size_t n, const Filter* filter, TopK& top) const {
  for (size_t local = 0; local < n; ++local) {
    if (tombstones_->Test(local)) continue;
    float score = Similarity(query, local);
    if (!top.MayKeep(score)) continue;
    uint64_t s = slot(local);
    if (filter != nullptr && !filter->Admits(s)) continue;
    top.Offer(s, score);
  }
}

}  // namespace sealcache::index
