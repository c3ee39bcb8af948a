// VectorIndex: one org's vectors, searchable by cosine similarity.
//
// Shape (the Lucene/Milvus segment model, DESIGN.md §5): new vectors go to a small mutable
// segment that is searched exactly; once it holds `seal_threshold` vectors it is frozen and a
// background thread builds an immutable HNSW segment from it (or a larger copy of an
// existing HNSW segment with the frozen vectors added), swapped in atomically. Removed
// slots are tombstoned (a bitmap per segment, consulted inside the search); a sealed segment
// whose tombstone fraction passes `rebuild_tombstone_ratio` is rebuilt without them in the
// background. Readers work on a snapshot of the segment list and never wait for a seal or a
// rebuild; inserts and removes serialise on one writer mutex.
//
// All inner products use our own SIMD code (inner_product.h), also inside the HNSW graph.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "sealcache/status.h"

namespace sealcache::index {

// ef_search that reaches recall@1 >= 0.99 on isotropic random 384-d vectors (no structure
// for a graph to exploit) with hnsw_m 32, ef_construction 128 and seal_threshold =
// max_segment_size = 16384: 50k vectors as 3 graphs of 16k gave recall@1 1.000,
// one graph of 48k only 0.980 (tests/index/recall_test.cc). Embedding-like data needs far
// less (the default ef_search gives 1.000 there).
inline constexpr int kHardDataEfSearch = 768;

// Largest ef_construction and ef_search accepted. Both are per-org settings a client may
// choose; build and search time and the walk's memory grow with them, and past a few
// thousand recall no longer improves (kHardDataEfSearch is enough for isotropic data).
inline constexpr int kMaxEf = 4096;

struct IndexParams {
  // Vector dimension; every added vector and every query must have exactly this many floats.
  size_t dimension = 384;

  // HNSW graph degree (links per node on the upper levels; 2*M on level 0). Larger M gives
  // better recall on hard (isotropic) data at the cost of build time and memory (M*8 bytes
  // per vector). Build time grows faster than linearly with M (every new link may prune a
  // neighbour list of 2*M): measured at 100k x 384 clustered, M=16 builds ~3x faster than
  // M=32 with the same recall@1 at ef_search 48 (bench/README.md).
  int hnsw_m = 16;

  // Candidate list size while building the HNSW graph. Build time grows about linearly; at
  // M=16, 100 instead of 64 lifts recall@1 at ef_search 32 from 0.988 to 0.994 (fresh
  // queries) and from 0.994 to 1.000 (near-duplicates), 100k x 384. Under streaming puts the
  // construction is ~40% of the server's CPU: 72 builds 1.6x faster there, at recall@1 0.316
  // instead of 0.343 on isotropic queries at ef_search 48 (bench/README.md, session 24).
  int ef_construction = 100;

  // Candidate list size while searching an HNSW segment (raised to k when k is larger).
  // Latency grows about linearly with it. The default is for embedding-like (clustered)
  // data; isotropic random data needs kHardDataEfSearch (and M=32) for the same recall.
  int ef_search = 48;

  // Vectors in the mutable (exact) segment that trigger sealing it. Max 2^30. Every search
  // scans the mutable segment (and frozen ones waiting for their graph) exactly, at ~40 ns
  // per 384-d vector, so while puts stream in an org's lookups pay for about half of this
  // and for the seals in progress: with 4096 that scan was a quarter of the server's time
  // under 40% puts. A seal copies the links of the graph it extends (~140 bytes a vector at
  // M 16: ~14 KB per inserted vector at 100k, a few us against ~130 us to link it).
  size_t seal_threshold = 1024;

  // Sealing adds the frozen vectors to a copy of an existing HNSW segment while that stays
  // below this size, so an org keeps few large graphs: every extra segment is one more graph
  // walk per search (measured at 100k x 384: 6 segments of 16k cost 5 ms a query, one graph
  // 0.5 ms). A seal copies the links of the segment it extends (~140 bytes a vector at M 16);
  // its vectors and codes are shared with the new version and copied only when their block
  // is full (~1.2 KB a 384-d vector, into a block twice as large), so this also bounds that
  // transient memory. In [seal_threshold, 2^31).
  size_t max_segment_size = 262144;

  // A sealed segment whose removed fraction exceeds this is rebuilt without the removed
  // vectors, in the background. In (0, 1].
  double rebuild_tombstone_ratio = 0.25;

  // Exact mode: never build HNSW; every segment is searched exactly (flat). For small orgs
  // or when exact recall is required.
  bool exact = false;
};

// Checks the ranges documented on IndexParams.
Status ValidateIndexParams(const IndexParams& params);

struct Hit {
  uint64_t slot;
  float score;  // cosine similarity in [-1, 1]
  bool operator==(const Hit&) const = default;
};

// A predicate on slots evaluated inside the search (through the FAISS IDSelector together
// with the tombstones), so top-k holds k admitted results whenever k exist.
class Filter {
 public:
  virtual ~Filter() = default;
  // Called from the searching thread, once per candidate; must be cheap and must not call
  // back into the index.
  virtual bool Admits(uint64_t slot) const = 0;
};

// A Filter from a callable: `FunctionFilter f([&](uint64_t s) { return ns.count(s); });`
class FunctionFilter final : public Filter {
 public:
  explicit FunctionFilter(std::function<bool(uint64_t)> fn) : fn_(std::move(fn)) {}
  bool Admits(uint64_t slot) const override { return fn_(slot); }

 private:
  std::function<bool(uint64_t)> fn_;
};

class VectorIndex {
 public:
  static Result<std::unique_ptr<VectorIndex>> Create(const IndexParams& params);

  // Rebuilds an index from Serialize() bytes. `params` supplies everything but the contents;
  // its dimension must match the snapshot's. A damaged buffer gives Corruption.
  static Result<std::unique_ptr<VectorIndex>> Deserialize(std::span<const uint8_t> bytes,
                                                          const IndexParams& params);

  // Stops the background thread (abandoning a seal or rebuild in progress) and frees all.
  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  // Adds `vec` (normalised here) under `slot`. InvalidArgument for a wrong dimension, NaN or
  // Inf elements, or a zero vector; AlreadyExists if `slot` is live. A removed slot may be
  // added again.
  Status Add(uint64_t slot, std::span<const float> vec);

  // Tombstones `slot`: no search that starts after Remove returns can return it, even while
  // the slot's segment is being sealed or rebuilt. NotFound if it is not live.
  Status Remove(uint64_t slot);

  // Up to k live slots most similar to `query` (cosine), best first (ties by smaller slot),
  // each with score >= min_score and, if `filter` is given, admitted by it.
  Result<std::vector<Hit>> Search(std::span<const float> query, size_t k, float min_score,
                                  const Filter* filter = nullptr) const;

  // The snapshot: every segment, the tombstones and the highest slot ever added. Runs
  // concurrently with searches; holds the writer lock only to capture segment sizes and
  // tombstones. Format: index/FORMAT.md.
  Result<std::vector<uint8_t>> Serialize() const;

  // Highest slot ever added (removed or not); nullopt for an index that never had one. A
  // loader replays slots above this one from the store after Deserialize.
  std::optional<uint64_t> HighestSlot() const;
  // Number of live vectors.
  size_t Size() const;
  bool Contains(uint64_t slot) const;

  // Freezes the mutable segment and queues its seal into a graph if it holds at least
  // `min_vectors` vectors (at least 1), so searches stop scanning those vectors exactly; the
  // server calls it once an org has had no inserts for a while (Milvus seals an idle growing
  // segment the same way). True if a seal was queued. Never in exact mode.
  bool SealMutable(size_t min_vectors);

  // Blocks until no seal or rebuild is queued or running. For tests and benchmarks.
  void WaitForBackgroundWork() const;

  // Segment counts by kind, for tests, benchmarks and metrics.
  struct SegmentStats {
    size_t flat_segments = 0;  // the mutable one plus frozen ones waiting to seal (or exact)
    size_t hnsw_segments = 0;
    size_t tombstoned = 0;           // removed entries still present in some segment
    size_t background_failures = 0;  // seals or rebuilds that failed (segment kept as it was)
  };
  SegmentStats Stats() const;

  const IndexParams& params() const { return params_; }

 private:
  class Impl;
  VectorIndex(const IndexParams& params, std::unique_ptr<Impl> impl);

  IndexParams params_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sealcache::index
