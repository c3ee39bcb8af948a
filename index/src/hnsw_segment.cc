#include "hnsw_segment.h"

#include <faiss/impl/IDSelector.h>

#include <algorithm>

#include "simd_hnsw.h"

namespace sealcache::index {
namespace {

// Admits local ids that are not tombstoned.
class Live final : public faiss::IDSelector {
 public:
  explicit Live(const Tombstones& tombstones) : tombstones_(tombstones) {}
  bool is_member(idx_t id) const override { return !tombstones_.Test(static_cast<size_t>(id)); }

 private:
  const Tombstones& tombstones_;
};

// Admits local ids whose entry the caller's filter admits.
class Admitted final : public faiss::IDSelector {
 public:
  Admitted(const std::vector<uint64_t>& slots, const Filter* filter)
      : slots_(slots), filter_(filter) {}
  bool is_member(idx_t id) const override {
    return filter_->Admits(slots_[static_cast<size_t>(id)]);
  }

 private:
  const std::vector<uint64_t>& slots_;
  const Filter* filter_;
};

// Admits local ids that are neither tombstoned nor rejected by the caller's filter.
class LiveAndAdmitted final : public faiss::IDSelector {
 public:
  LiveAndAdmitted(const Segment& segment, const Filter* filter)
      : segment_(segment), filter_(filter) {}
  bool is_member(idx_t id) const override {
    return segment_.Admits(static_cast<size_t>(id), filter_);
  }

 private:
  const Segment& segment_;
  const Filter* filter_;
};

}  // namespace

HnswSegment::HnswSegment(uint64_t id, std::shared_ptr<Tombstones> tombstones,
                         std::unique_ptr<HnswGraph> graph, std::vector<uint64_t> slots,
                         int ef_search)
    : Segment(id, graph->d, std::move(tombstones)),
      graph_(std::move(graph)),
      slots_(std::move(slots)),
      ef_search_(ef_search) {
  // Fixed before the graph is shared with readers: see WalkHnsw.
  graph_->links.efSearch = ef_search;
}

void HnswSegment::Search(const float* query, const Int8Query& code, const Filter* filter,
                         TopK& top) const {
  size_t n = size();
  if (n == 0) return;
  size_t k = top.capacity();
  if (k >= n) return ExactScan(query, n, filter, top);

  std::vector<GraphHit> hits;
  Live live(*tombstones());
  const faiss::IDSelector* live_only = tombstones()->count() == 0 ? nullptr : &live;
  // The walk keeps live nodes; of those, the caller's filter decides which may be answers,
  // before any is ranked. Fewer than k hits are all there are when the walk says so (its
  // beam reached below the threshold): a filtered walk would find no more above it.
  Admitted admitted(slots_, filter);
  const faiss::IDSelector* answers = filter == nullptr ? nullptr : &admitted;
  bool complete = false;
  if (WalkHnsw(*graph_, query, k,
               {.sel = live_only,
                .rank_only = answers,
                .min_score = top.min_score(),
                .code = &code,
                .complete = &complete},
               hits)
          .ok() &&
      (hits.size() == k || complete)) {
    for (const GraphHit& h : hits) top.Offer(slots_[static_cast<size_t>(h.label)], h.score);
    return;
  }
  if (filter != nullptr) {  // the filter rejected too many of the walk's nodes
    LiveAndAdmitted selector(*this, filter);
    if (WalkHnsw(
            *graph_, query, k,
            {.sel = &selector, .min_score = top.min_score(), .code = &code, .complete = &complete},
            hits)
            .ok() &&
        (hits.size() >= k || complete)) {
      for (size_t i = 0; i < std::min(k, hits.size()); ++i)
        top.Offer(slots_[static_cast<size_t>(hits[i].label)], hits[i].score);
      return;
    }
  }
  ExactScan(query, n, filter, top);
}

}  // namespace sealcache::index
