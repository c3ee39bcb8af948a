// HNSW graphs in FAISS's link layout, built and walked by our own code over our SIMD
// distances.
//
// A sealed graph (HnswGraph) is FAISS's link structure (faiss::HNSW, which snapshots
// serialize) over n vectors that it keeps twice, never as float32: in half precision, to
// score the nodes a walk keeps, and as int8 codes, to navigate (the walk) and to build (the
// construction's distances). 768 + 388 bytes a vector at d = 384, against 1,536 + 388 with
// float vectors.
#pragma once

#include <faiss/IndexHNSW.h>
#include <faiss/impl/HNSW.h>
#include <faiss/impl/IDSelector.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include "sealcache/index/inner_product.h"
#include "sealcache/status.h"
#include "shared_rows.h"

namespace sealcache::index {

// Int8 codes of n x d vectors (QuantizeInt8 in inner_product.h) for walks that read a
// quarter of the bytes of the float vectors.
struct WalkCodes {
  SharedRows<int8_t> codes;  // n x d
  SharedRows<float> scales;  // n x 1

  const int8_t* Code(size_t i) const { return codes.Row(i); }
  float Scale(size_t i) const { return scales.data()[i]; }
  // Appends the codes of the n x d vectors `x`.
  void Append(const float* x, size_t n, size_t d);
};

// Neighbour arrays of graph versions that no walk reads any more, kept for the next
// extension to copy its base's links into (ExtendHnsw). A new array's pages are faulted in and
// zeroed by the kernel as the copy first touches them: three quarters of the copy's cost, and
// the copy ~8% of the construction's time under streaming puts (~14 MB each seal at 100k x M
// 16, bench/README.md, session 24). A graph hands its array over when it is destroyed, on
// whichever thread drops it last; only the largest is kept. The cost: while an index takes
// seals it holds one array more than its graph's (VectorIndex frees it when its worker idles).
class SpareLinks {
 public:
  using Array = std::vector<faiss::HNSW::storage_idx_t>;
  void Keep(Array&& neighbors);
  // The kept array (cleared), or an empty one.
  Array Take();
  // Frees the kept array.
  void Clear();

 private:
  std::mutex mu_;
  Array spare_;  // GUARDED_BY(mu_)
};

// A graph's vectors and codes are shared with the graph it was extended from (SharedRows);
// only its links are its own.
struct HnswGraph {
  faiss::HNSW links;  // neighbour lists, levels, entry point; efSearch is the walk's ef
  size_t n = 0;
  size_t d = 0;
  SharedRows<uint16_t> half;  // n x d, IEEE binary16
  WalkCodes codes;

  // Where the neighbour array goes when this graph is destroyed (null: freed).
  std::shared_ptr<SpareLinks> spare_links;

  HnswGraph() = default;
  // No vectors yet, rows of d.
  explicit HnswGraph(size_t dimension)
      : d(dimension), half(dimension), codes{SharedRows<int8_t>(dimension), SharedRows<float>(1)} {}
  HnswGraph(const HnswGraph&) = default;
  HnswGraph& operator=(const HnswGraph&) = default;
  HnswGraph(HnswGraph&&) = default;
  HnswGraph& operator=(HnswGraph&&) = default;
  ~HnswGraph() {
    if (spare_links != nullptr) spare_links->Keep(std::move(links.neighbors));
  }

  const uint16_t* Half(size_t i) const { return half.data() + i * d; }  // (Int8Vectors::At)
  // Inner product of `query` with vector i, from its half-precision copy.
  float Similarity(const float* query, size_t i) const {
    return HalfInnerProductFunction()(query, Half(i), d);
  }
  // Vector i widened back to float.
  void Vector(size_t i, float* out) const { DecodeHalf(Half(i), d, out); }
};

struct HnswBuildOptions {
  int m = 32;
  int ef_construction = 128;
  // Vectors inserted between two checks of `cancel`.
  size_t batch = 2048;
};

// What the construction knows about each link slot of a graph (parallel to
// links.neighbors): the link's similarity to its list's node, and whether the selection that
// last wrote the list kept it. A full list that takes a reverse link is re-selected with
// products only between links not known to be kept together, and without recomputing their
// similarities; a list the memo knows nothing of (NaN, unchecked) costs all ~470 pairwise
// products at M 16. 5 bytes a slot (~170 a vector at M 16), held by the builder only: walks
// never read it.
struct LinkMemo {
  std::vector<float> similarity;  // NaN where unknown
  std::vector<uint8_t> checked;
};

// Builds an inner-product graph over the n x d row-major `x` on the calling thread (the
// construction of Malkov & Yashunin with FAISS's choices: its level draws, its neighbour
// heuristic, lists re-pruned when full). FailedPrecondition if `cancel` became true. If
// `memo` is not null it describes the built graph on success (and anything on failure).
Result<std::unique_ptr<HnswGraph>> BuildHnsw(const float* x, size_t n, size_t d,
                                             const HnswBuildOptions& options,
                                             const std::atomic<bool>* cancel,
                                             LinkMemo* memo = nullptr);

// `base` with the n x d row-major `x` added as ids base.n.. onwards: its links copied, its
// vectors and codes shared (SharedRows). `base` is not modified, so readers may keep
// searching it. Same construction and cancellation as BuildHnsw. `memo`, if not null, is
// taken to describe `base` (the memo its build left; an empty one is all unknown, one of
// another size is discarded) and describes the new graph on success. The graph built is the
// same with or without it. The links are copied into `spare`'s array if it has one with room.
Result<std::unique_ptr<HnswGraph>> ExtendHnsw(const HnswGraph& base, const float* x, size_t n,
                                              const HnswBuildOptions& options,
                                              const std::atomic<bool>* cancel,
                                              LinkMemo* memo = nullptr,
                                              SpareLinks* spare = nullptr);

// Checks everything a walk reads in deserialized links over n vectors: the level table,
// per-node levels and offsets, the entry point, and that every neighbour id is in range and
// on the level it is linked from. Corruption otherwise.
Status ValidateLinks(const faiss::HNSW& links, size_t n);

// A graph from a deserialized FAISS IndexHNSWFlat (snapshot format 1) over n x d float
// vectors: its links, its vectors in half precision and their codes. Corruption if the
// index's metric, dimension, storage or links do not check out (ValidateLinks).
Result<std::unique_ptr<HnswGraph>> FromFaissHnsw(faiss::IndexHNSWFlat& index, size_t n, size_t d);

struct GraphHit {
  float score;    // inner product with the half-precision vector
  int64_t label;  // id
};

// What a walk compares the query with while it navigates; the nodes it keeps are scored
// from the half-precision vectors either way.
enum class WalkOn { kCodes, kHalf };

// How wide the first walk of a threshold query is (WalkOptions::min_score): see WalkHnsw.
// At 100k x 384 (index_bench, BM_ThresholdWalk), near duplicates at min_score 0.9 with a
// short ef of 8 / 12 / 16 / 48 (none) were walked in 30 / 32 / 38 / 73 us, every one answered
// with its exact nearest; misses, walked twice, in 88 / 95 / 103 / 76 us.
inline constexpr size_t kShortWalkEf = 8;

inline constexpr size_t kAllKept = SIZE_MAX;

// The least cosine of two unit vectors: a threshold at or below it keeps every node.
inline constexpr float kLeastCosine = -1.0f;

struct Int8Query;

// What a walk did, for tests and benchmarks.
struct WalkStats {
  size_t walks = 0;  // graph walks started (a threshold query's short one included)
};

struct WalkOptions {
  // Nodes the walk may keep (all if null): rejected ones (tombstoned, filtered) are walked
  // through but never kept.
  const faiss::IDSelector* sel = nullptr;
  WalkOn on = WalkOn::kCodes;
  // How many of the kept nodes come back (0: k; kAllKept: all of them).
  size_t ranked = 0;
  // If not null, drops the kept nodes it rejects before they are ranked: they steered the
  // walk, but cannot be answers (a caller's filter checked after the walk).
  const faiss::IDSelector* rank_only = nullptr;
  // The caller keeps no answer scored below this (a cache lookup's threshold).
  float min_score = -std::numeric_limits<float>::infinity();
  // ef of the first walk of a threshold query on codes.
  size_t short_ef = kShortWalkEf;
  // The query's Int8Query::Of, if the caller has it (a walk on codes computes it otherwise).
  const Int8Query* code = nullptr;
  WalkStats* stats = nullptr;  // added to, if not null
  // If not null, set to whether the hits are every answer at or above min_score that the walk
  // found, however few: its kept nodes reached below min_score and each that might score at
  // or above it was ranked (a walk on codes only; see WalkHnsw).
  bool* complete = nullptr;
};

// One query on the calling thread into `out`, best first (ties by smaller label): the best
// `ranked` of the max(graph.links.efSearch, k) nodes the walk keeps. Scores are from the
// half-precision vectors; a walk on codes re-scores only the kept nodes that can still be
// among the best `ranked`, so the output is the same as re-scoring them all.
// Our own walk over FAISS's graph (not HNSW::search): no allocation per query (per-thread
// visited marks), prefetched neighbour lists and vectors, SIMD distances, and the hnswlib
// stopping rule that keeps ef admitted nodes, so tombstones and filters do not shrink the
// result list. ResourceExhausted if the walk reaches half the graph without finishing (a
// filter that admits almost nothing): the caller scans instead.
//
// A walk on codes with a threshold ranks no kept node whose score is certainly below
// min_score (its code score plus its error bound is below it): such a node is no answer, and
// its half-precision vector and rank_only's verdict are not read. So a threshold query can
// come back with fewer than `ranked` hits; `complete` says when those are all there are.
//
// A threshold query on codes (min_score above kLeastCosine, -1) first walks with short_ef: if that
// walk's beam reached past the threshold (its worst kept node is certainly below min_score)
// and its best answer is at or above it, the answers at or above the threshold are those a
// wider beam would find but for the walk's approximation, and they come back at a fraction
// of the cost. This is the common case of a semantic cache: a repeated prompt's near
// duplicate, the one or few stored vectors above the threshold packed next to each other in
// the graph. Otherwise (a miss, or more answers above the threshold than the short beam
// holds) the query is walked again with the full ef.
Status WalkHnsw(const HnswGraph& graph, const float* query, size_t k, const WalkOptions& options,
                std::vector<GraphHit>& out);

// A unit query as a walk on codes reads it: its own int8 code (QuantizeInt8), so each node the
// walk scores costs one integer product of two codes (Int8CodeProductFunction).
struct Int8Query {
  std::vector<int8_t> code;
  float scale = 0.0f;            // query ~ scale * code
  float bound_per_scale = 0.0f;  // ErrorBound = node_scale * bound_per_scale + bound_base
  float bound_base = 0.0f;
  static Int8Query Of(const float* query, size_t d);

  // The walk's similarity to stored vector i.
  float Similarity(const WalkCodes& codes, size_t i, size_t d) const {
    return scale * codes.Scale(i) *
           static_cast<float>(Int8CodeProductFunction()(code.data(), codes.Code(i), d));
  }

  // How far Similarity of a unit vector whose code has `node_scale` can be from the
  // half-precision score of that vector: the vector's code rounding (node_scale / 2 a
  // coordinate) against the query's code, the query's code rounding against the vector
  // (the norm of the query's rounding, by Cauchy-Schwarz), the half's rounding (2^-11
  // relative) and the float arithmetic of both scores. Its terms are computed once by Of: a
  // flat scan asks it of every vector.
  float ErrorBound(float node_scale) const { return node_scale * bound_per_scale + bound_base; }
};

// WalkHnsw's best k into scores/labels; missing results get label -1.
Status SearchHnsw(const HnswGraph& graph, const float* query, size_t k,
                  const faiss::IDSelector* sel, float* scores, int64_t* labels,
                  WalkOn on = WalkOn::kCodes);

}  // namespace sealcache::index
