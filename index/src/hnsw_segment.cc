#include "hnsw_segment.h"

#include <faiss/impl/IDSelector.h>

#include "simd_hnsw.h"

namespace sealcache::index {
namespace {

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
                         std::unique_ptr<faiss::IndexHNSWFlat> index, std::vector<uint64_t> slots,
                         int ef_search)
    : Segment(id, static_cast<size_t>(index->d), std::move(tombstones)),
      index_(std::move(index)),
      slots_(std::move(slots)),
      xb_(static_cast<const faiss::IndexFlat*>(index_->storage)->get_xb()),
      ef_search_(ef_search) {
  // Fixed before the index is shared with readers: see SearchHnsw.
  index_->hnsw.efSearch = ef_search;
}

void HnswSegment::Search(const float* query, const Filter* filter, TopK& top) const {
  size_t n = size();
  if (n == 0) return;
  size_t k = top.capacity();
  if (k >= n) return ExactScan(query, n, filter, top);

  LiveAndAdmitted selector(*this, filter);
  bool everything_admitted = filter == nullptr && tombstones()->count() == 0;
  std::vector<float> scores(k);
  std::vector<int64_t> labels(k);
  Status s = SearchHnsw(*index_, query, k, everything_admitted ? nullptr : &selector, scores.data(),
                        labels.data());
  size_t found = 0;
  for (size_t i = 0; s.ok() && i < k && labels[i] >= 0; ++i) ++found;
  if (!s.ok() || found < k) return ExactScan(query, n, filter, top);
  for (size_t i = 0; i < found; ++i) {
    top.Offer(slots_[static_cast<size_t>(labels[i])], scores[i]);
  }
}

}  // namespace sealcache::index
