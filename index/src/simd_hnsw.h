// FAISS HNSW over our SIMD inner products.
//
// Debian's libfaiss.a computes distances with a scalar loop. faiss::IndexHNSW gets every
// distance (build and search) from `storage->get_distance_computer()`; SimdFlatStorage is an
// IndexFlatIP whose computer calls InnerProductFunction(). It serialises as a plain
// IndexFlatIP (write_index dispatches on dynamic type), and AdoptSimdStorage swaps it back in
// after read_index.
#pragma once

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/impl/IDSelector.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "sealcache/status.h"

namespace sealcache::index {

struct WalkCodes;

class SimdFlatStorage final : public faiss::IndexFlatIP {
 public:
  explicit SimdFlatStorage(idx_t d) : faiss::IndexFlatIP(d) {}
  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override;
  // While build codes are set (AddInBatches), FAISS's graph construction gets its distances
  // from them: the int8 codes of every vector, those being added included.
  faiss::DistanceComputer* get_distance_computer() const override;
  void set_build_codes(const WalkCodes* codes) { build_codes_ = codes; }

 private:
  const WalkCodes* build_codes_ = nullptr;
};

struct HnswBuildOptions {
  int m = 32;
  int ef_construction = 128;
  // false: keep FAISS's own (scalar, in Debian's build) distance code. For benchmarks.
  bool simd = true;
  // Vectors added per IndexHNSW::add call; `cancel` is checked between batches.
  size_t batch = 2048;
};

// Builds an inner-product IndexHNSWFlat over the n x d row-major `x`. Uses the calling
// thread's OpenMP thread count. FailedPrecondition if `cancel` became true.
Result<std::unique_ptr<faiss::IndexHNSWFlat>> BuildHnsw(const float* x, size_t n, size_t d,
                                                        const HnswBuildOptions& options,
                                                        const std::atomic<bool>* cancel);

// A copy of `base` (graph and vectors, on SimdFlatStorage) with the n x d row-major `x`
// added as local ids base.ntotal.. onwards. `base` is not modified, so readers may keep
// searching it. Same cancellation and threading as BuildHnsw.
Result<std::unique_ptr<faiss::IndexHNSWFlat>> ExtendHnsw(const faiss::IndexHNSWFlat& base,
                                                         const float* x, size_t n,
                                                         const HnswBuildOptions& options,
                                                         const std::atomic<bool>* cancel);

// Checks everything a search reads in a deserialized index: metric, dimension, storage type
// and size, and that the graph's levels, offsets and neighbour ids stay in range. Corruption
// otherwise.
Status ValidateHnsw(const faiss::IndexHNSWFlat& index, size_t n, size_t d);

// Replaces a deserialized index's IndexFlatIP storage by a SimdFlatStorage holding the same
// vectors. REQUIRES: ValidateHnsw passed.
void AdoptSimdStorage(faiss::IndexHNSWFlat& index);

// Int8 codes of an index's n x d vectors (QuantizeInt8 in inner_product.h) for walks that
// read a quarter of the bytes of the float vectors.
struct WalkCodes {
  std::vector<int8_t> codes;  // n x d
  std::vector<float> scales;  // n
  static WalkCodes Of(const float* xb, size_t n, size_t d);
};

struct GraphHit {
  float score;    // inner product with the float vector
  int64_t label;  // local id
};

// One query on the calling thread: up to max(index.hnsw.efSearch, k) members of `sel` (all
// if null) into `out`, best first (ties by smaller label), scored exactly.
// Our own walk over FAISS's graph (not HNSW::search): no allocation per query (per-thread
// visited marks), prefetched neighbour lists and vectors, SIMD distances, and the hnswlib
// stopping rule that keeps ef admitted nodes, so tombstones and filters do not shrink the
// result list. With `codes` the walk compares int8 codes and re-scores the nodes it keeps
// with the float vectors. ResourceExhausted if the walk reaches half the graph without
// finishing (a filter that admits almost nothing): the caller scans instead.
Status WalkHnsw(const faiss::IndexHNSW& index, const float* query, size_t k,
                const faiss::IDSelector* sel, const WalkCodes* codes, std::vector<GraphHit>& out);

// WalkHnsw's best k into scores/labels; missing results get label -1.
Status SearchHnsw(const faiss::IndexHNSW& index, const float* query, size_t k,
                  const faiss::IDSelector* sel, float* scores, int64_t* labels,
                  const WalkCodes* codes = nullptr);

}  // namespace sealcache::index
