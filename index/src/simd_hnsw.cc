#include "simd_hnsw.h"

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/HNSW.h>
#include <faiss/utils/Heap.h>

#include <algorithm>
#include <exception>
#include <string>
#include <vector>

#include "sealcache/index/inner_product.h"

namespace sealcache::index {
namespace {

class SimdInnerProductComputer final : public faiss::FlatCodesDistanceComputer {
 public:
  SimdInnerProductComputer(const float* xb, size_t d)
      : faiss::FlatCodesDistanceComputer(reinterpret_cast<const uint8_t*>(xb), d * sizeof(float)),
        xb_(xb),
        d_(d),
        ip_(InnerProductFunction()) {}

  void set_query(const float* x) override { query_ = x; }
  float distance_to_code(const uint8_t* code) override {
    return ip_(query_, reinterpret_cast<const float*>(code), d_);
  }
  float symmetric_dis(idx_t i, idx_t j) override { return ip_(xb_ + i * d_, xb_ + j * d_, d_); }

 private:
  const float* xb_;
  size_t d_;
  InnerProductFn ip_;
  const float* query_ = nullptr;
};

// HNSW minimises; for the inner product metric it walks on negated similarities (as FAISS's
// own IndexHNSW::search does).
class NegatedInnerProductComputer final : public faiss::DistanceComputer {
 public:
  NegatedInnerProductComputer(const float* xb, size_t d)
      : xb_(xb), d_(d), ip_(InnerProductFunction()) {}
  void set_query(const float* x) override { query_ = x; }
  float operator()(idx_t i) override { return -ip_(query_, xb_ + i * d_, d_); }
  float symmetric_dis(idx_t i, idx_t j) override { return -ip_(xb_ + i * d_, xb_ + j * d_, d_); }

 private:
  const float* xb_;
  size_t d_;
  InnerProductFn ip_;
  const float* query_ = nullptr;
};

Status CheckGraph(const faiss::HNSW& g, size_t n) {
  const auto& cum = g.cum_nneighbor_per_level;
  if (cum.empty() || cum[0] != 0) return Status::Corruption("hnsw: bad level table");
  for (size_t l = 1; l < cum.size(); ++l) {
    if (cum[l] < cum[l - 1]) return Status::Corruption("hnsw: bad level table");
  }
  if (g.levels.size() != n || g.offsets.size() != n + 1 || g.offsets[0] != 0) {
    return Status::Corruption("hnsw: node tables do not match the vector count");
  }
  for (size_t i = 0; i < n; ++i) {
    int level = g.levels[i];  // number of levels the node is on, >= 1
    if (level < 1 || static_cast<size_t>(level) >= cum.size() || g.offsets[i + 1] < g.offsets[i] ||
        g.offsets[i + 1] - g.offsets[i] != static_cast<size_t>(cum[level])) {
      return Status::Corruption("hnsw: node " + std::to_string(i) + " has a bad level or offset");
    }
  }
  if (g.offsets[n] != g.neighbors.size()) return Status::Corruption("hnsw: bad neighbour count");
  if (n == 0) return Status::Ok();
  if (g.entry_point < 0 || static_cast<size_t>(g.entry_point) >= n ||
      g.max_level != g.levels[g.entry_point] - 1) {
    return Status::Corruption("hnsw: bad entry point");
  }
  // A link on level l must lead to a node that is on level l too: the search reads the
  // target's level-l neighbour range.
  for (size_t i = 0; i < n; ++i) {
    for (int l = 0; l < g.levels[i]; ++l) {
      for (size_t j = g.offsets[i] + cum[l]; j < g.offsets[i] + cum[l + 1]; ++j) {
        int v = g.neighbors[j];
        if (v < -1 || v >= static_cast<int64_t>(n) || (v >= 0 && g.levels[v] <= l)) {
          return Status::Corruption("hnsw: neighbour out of range at node " + std::to_string(i));
        }
      }
    }
  }
  return Status::Ok();
}

// Adds x[0..n) to `index` in batches, checking `cancel` between them.
Status AddInBatches(faiss::IndexHNSWFlat& index, const float* x, size_t n,
                    const HnswBuildOptions& options, const std::atomic<bool>* cancel) {
  size_t d = static_cast<size_t>(index.d);
  index.hnsw.efConstruction = options.ef_construction;
  try {
    for (size_t i = 0; i < n; i += options.batch) {
      if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
        return Status::FailedPrecondition("hnsw build cancelled");
      }
      size_t count = std::min(options.batch, n - i);
      index.add(static_cast<faiss::Index::idx_t>(count), x + i * d);
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("faiss hnsw build: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace

faiss::FlatCodesDistanceComputer* SimdFlatStorage::get_FlatCodesDistanceComputer() const {
  return new SimdInnerProductComputer(get_xb(), d);
}

Result<std::unique_ptr<faiss::IndexHNSWFlat>> BuildHnsw(const float* x, size_t n, size_t d,
                                                        const HnswBuildOptions& options,
                                                        const std::atomic<bool>* cancel) {
  std::unique_ptr<faiss::IndexHNSWFlat> index;
  try {
    index = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(d), options.m,
                                                   faiss::METRIC_INNER_PRODUCT);
    if (options.simd) {
      delete index->storage;
      index->storage = new SimdFlatStorage(static_cast<faiss::Index::idx_t>(d));
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("faiss hnsw build: ") + e.what());
  }
  SC_RETURN_IF_ERROR(AddInBatches(*index, x, n, options, cancel));
  return index;
}

Result<std::unique_ptr<faiss::IndexHNSWFlat>> ExtendHnsw(const faiss::IndexHNSWFlat& base,
                                                         const float* x, size_t n,
                                                         const HnswBuildOptions& options,
                                                         const std::atomic<bool>* cancel) {
  std::unique_ptr<faiss::IndexHNSWFlat> index;
  try {
    index = std::make_unique<faiss::IndexHNSWFlat>(base.d, 2, faiss::METRIC_INNER_PRODUCT);
    delete index->storage;
    auto* storage = new SimdFlatStorage(base.d);
    index->storage = storage;
    const auto* base_storage = static_cast<const faiss::IndexFlat*>(base.storage);
    storage->codes = base_storage->codes;
    storage->ntotal = base_storage->ntotal;
    index->hnsw = base.hnsw;  // graph, level tables and the level RNG's state
    index->ntotal = base.ntotal;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("faiss hnsw copy: ") + e.what());
  }
  SC_RETURN_IF_ERROR(AddInBatches(*index, x, n, options, cancel));
  return index;
}

Status ValidateHnsw(const faiss::IndexHNSWFlat& index, size_t n, size_t d) {
  if (index.metric_type != faiss::METRIC_INNER_PRODUCT || index.d != static_cast<int64_t>(d) ||
      index.ntotal != static_cast<int64_t>(n)) {
    return Status::Corruption("hnsw: metric, dimension or size does not match the header");
  }
  const auto* storage = dynamic_cast<const faiss::IndexFlat*>(index.storage);
  if (storage == nullptr || storage->metric_type != faiss::METRIC_INNER_PRODUCT ||
      storage->d != index.d || storage->ntotal != index.ntotal ||
      storage->code_size != d * sizeof(float) || storage->codes.size() != n * d * sizeof(float)) {
    return Status::Corruption("hnsw: storage does not match the header");
  }
  return CheckGraph(index.hnsw, n);
}

void AdoptSimdStorage(faiss::IndexHNSWFlat& index) {
  auto* old_storage = static_cast<faiss::IndexFlat*>(index.storage);
  auto* storage = new SimdFlatStorage(index.d);
  storage->codes.swap(old_storage->codes);
  storage->ntotal = old_storage->ntotal;
  if (index.own_fields) delete old_storage;
  index.storage = storage;
  index.own_fields = true;
}

Status SearchHnsw(const faiss::IndexHNSW& index, const float* query, size_t k,
                  const faiss::IDSelector* sel, float* scores, int64_t* labels) {
  const auto* storage = static_cast<const faiss::IndexFlat*>(index.storage);
  NegatedInnerProductComputer distance(storage->get_xb(), static_cast<size_t>(index.d));
  distance.set_query(query);
  faiss::SearchParametersHNSW params;
  params.efSearch = std::max(index.hnsw.efSearch, static_cast<int>(k));  // stopping rule
  // SearchParameters holds a non-const pointer but only calls the const is_member().
  params.sel = const_cast<faiss::IDSelector*>(sel);
  try {
    faiss::VisitedTable visited(static_cast<int>(index.ntotal));
    faiss::maxheap_heapify(k, scores, labels);
    index.hnsw.search(distance, static_cast<int>(k), labels, scores, visited, &params);
    faiss::maxheap_reorder(k, scores, labels);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("faiss hnsw search: ") + e.what());
  }
  for (size_t i = 0; i < k; ++i) scores[i] = -scores[i];
  return Status::Ok();
}

}  // namespace sealcache::index
