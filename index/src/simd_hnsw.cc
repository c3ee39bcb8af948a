#include "simd_hnsw.h"

#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/HNSW.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "sealcache/index/inner_product.h"

namespace sealcache::index {
namespace {

// Graph construction on int8 codes (WalkCodes). A construction spends most of its time in
// distances (77% of a build thread's samples in the float inner product, measured at 4 x 100k
// x 384): the new vector against the candidates of each level, and stored vectors against
// each other when a neighbour list is pruned. Codes read a quarter of the bytes of the float
// vectors, which at graph sizes live far outside the caches; the pruning's stored-against-
// stored distances become integer products. The walk already navigates this graph on the same
// codes, and the kept nodes are re-scored with the float vectors.
class Int8BuildComputer final : public faiss::DistanceComputer {
 public:
  Int8BuildComputer(const WalkCodes& codes, size_t d)
      : codes_(codes.codes.data()),
        scales_(codes.scales.data()),
        d_(d),
        query_ip_(Int8InnerProductFunction()),
        code_ip_(Int8CodeProductFunction()) {}

  void set_query(const float* x) override { query_ = x; }
  float operator()(idx_t i) override { return scales_[i] * query_ip_(query_, Code(i), d_); }
  float symmetric_dis(idx_t i, idx_t j) override {
    return scales_[i] * scales_[j] * static_cast<float>(code_ip_(Code(i), Code(j), d_));
  }

 private:
  const int8_t* Code(idx_t i) const { return codes_ + static_cast<size_t>(i) * d_; }
  const int8_t* codes_;
  const float* scales_;
  size_t d_;
  Int8InnerProductFn query_ip_;
  Int8CodeProductFn code_ip_;
  const float* query_ = nullptr;
};

Status CheckGraph(const faiss::HNSW& g, size_t n) {
  const auto& cum = g.cum_nneighbor_per_level;
  if (cum.empty() || cum[0] != 0 || g.assign_probas.size() + 1 != cum.size()) {
    return Status::Corruption("hnsw: bad level table");
  }
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

// The storage FAISS's construction sees: it keeps no vectors (the graph keeps them in half
// precision and as codes) and answers every distance from the int8 codes of all vectors,
// those being added included. IndexHNSW::add only appends to its storage and asks it for
// distance computers.
class CodesOnlyStorage final : public faiss::Index {
 public:
  CodesOnlyStorage(idx_t d, const WalkCodes& codes)
      : faiss::Index(d, faiss::METRIC_INNER_PRODUCT), codes_(codes) {}
  void add(idx_t n, const float*) override { ntotal += n; }
  void search(idx_t, const float*, idx_t, float*, idx_t*,
              const faiss::SearchParameters*) const override {
    throw std::logic_error("the construction storage keeps no vectors to search");
  }
  void reset() override { ntotal = 0; }
  faiss::DistanceComputer* get_distance_computer() const override {
    return new Int8BuildComputer(codes_, static_cast<size_t>(d));
  }

 private:
  const WalkCodes& codes_;
};

// Adds the n x d row-major `x` to `graph` (whose links, codes and halves hold graph.n
// vectors) in batches, checking `cancel` between them.
Status AddToGraph(HnswGraph& graph, const float* x, size_t n, const HnswBuildOptions& options,
                  const std::atomic<bool>* cancel) {
  const size_t d = graph.d;
  graph.codes.Append(x, n, d);
  graph.half.resize((graph.n + n) * d);
  EncodeHalf(x, n * d, graph.half.data() + graph.n * d);
  try {
    CodesOnlyStorage storage(static_cast<faiss::Index::idx_t>(d), graph.codes);
    storage.ntotal = static_cast<faiss::Index::idx_t>(graph.n);
    faiss::IndexHNSW index(&storage, options.m);
    index.hnsw = std::move(graph.links);
    index.hnsw.efConstruction = options.ef_construction;
    index.ntotal = storage.ntotal;
    struct GiveBackLinks {  // also when the build is cancelled or throws
      faiss::IndexHNSW& index;
      HnswGraph& graph;
      ~GiveBackLinks() { graph.links = std::move(index.hnsw); }
    } give_back{index, graph};
    for (size_t i = 0; i < n; i += options.batch) {
      if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
        return Status::FailedPrecondition("hnsw build cancelled");
      }
      const size_t count = std::min(options.batch, n - i);
      index.add(static_cast<faiss::Index::idx_t>(count), x + i * d);
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("faiss hnsw build: ") + e.what());
  }
  graph.n += n;
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<HnswGraph>> BuildHnsw(const float* x, size_t n, size_t d,
                                             const HnswBuildOptions& options,
                                             const std::atomic<bool>* cancel) {
  auto graph = std::make_unique<HnswGraph>();
  graph->links = faiss::HNSW(options.m);
  graph->d = d;
  SC_RETURN_IF_ERROR(AddToGraph(*graph, x, n, options, cancel));
  return graph;
}

Result<std::unique_ptr<HnswGraph>> ExtendHnsw(const HnswGraph& base, const float* x, size_t n,
                                              const HnswBuildOptions& options,
                                              const std::atomic<bool>* cancel) {
  // A copy with room for the new vectors, so appending them does not copy everything again.
  auto graph = std::make_unique<HnswGraph>();
  graph->links = base.links;  // with the level generator's state
  graph->n = base.n;
  graph->d = base.d;
  const size_t total = base.n + n;
  graph->half.reserve(total * base.d);
  graph->half.assign(base.half.begin(), base.half.end());
  graph->codes.codes.reserve(total * base.d);
  graph->codes.codes.assign(base.codes.codes.begin(), base.codes.codes.end());
  graph->codes.scales.reserve(total);
  graph->codes.scales.assign(base.codes.scales.begin(), base.codes.scales.end());
  SC_RETURN_IF_ERROR(AddToGraph(*graph, x, n, options, cancel));
  return graph;
}

Status ValidateLinks(const faiss::HNSW& links, size_t n) { return CheckGraph(links, n); }

Result<std::unique_ptr<HnswGraph>> FromFaissHnsw(faiss::IndexHNSWFlat& index, size_t n, size_t d) {
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
  SC_RETURN_IF_ERROR(CheckGraph(index.hnsw, n));
  auto graph = std::make_unique<HnswGraph>();
  graph->links = std::move(index.hnsw);
  graph->n = n;
  graph->d = d;
  graph->half.resize(n * d);
  EncodeHalf(storage->get_xb(), n * d, graph->half.data());
  graph->codes = WalkCodes::Of(storage->get_xb(), n, d);
  return graph;
}

namespace {

// Per-thread scratch for graph walks: which nodes this query has reached, by generation, so
// a query costs no allocation and no clearing. Grows to the largest graph the thread walks.
class VisitedMarks {
 public:
  void StartQuery(size_t n) {
    if (marks_.size() < n) marks_.resize(n, 0);
    if (++generation_ == 0) {  // wrapped: old marks could alias the new generation
      std::fill(marks_.begin(), marks_.end(), 0);
      generation_ = 1;
    }
  }
  // True if `i` was already reached in this query; marks it reached.
  bool TestAndSet(size_t i) {
    if (marks_[i] == generation_) return true;
    marks_[i] = generation_;
    return false;
  }

 private:
  std::vector<uint16_t> marks_;
  uint16_t generation_ = 0;
};

constexpr size_t kMaxVisitsPerEfDegree = 8;

struct Scored {
  float similarity;
  int32_t id;
};
struct WorseFirst {  // heap comparator: the least similar on top
  bool operator()(const Scored& a, const Scored& b) const { return a.similarity > b.similarity; }
};
struct BetterFirst {  // heap comparator: the most similar on top
  bool operator()(const Scored& a, const Scored& b) const { return a.similarity < b.similarity; }
};
struct Ranked {  // sort order of answers: the most similar first, ties by smaller id
  bool operator()(const Scored& a, const Scored& b) const {
    return a.similarity != b.similarity ? a.similarity > b.similarity : a.id < b.id;
  }
};

// Asks for `bytes` at `p` before they are read: the walk jumps across a graph far larger
// than the caches, so each neighbour is otherwise a chain of misses.
inline void Prefetch(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(c + offset, 0, 3);
}

// Similarity from the half-precision vectors.
struct HalfVectors {
  const HnswGraph& graph;
  HalfInnerProductFn ip;
  const float* query;
  float operator()(int32_t id) const {
    return ip(query, graph.Half(static_cast<size_t>(id)), graph.d);
  }
  void Prefetch(int32_t id) const {
    index::Prefetch(graph.Half(static_cast<size_t>(id)), graph.d * sizeof(uint16_t));
  }
};

// Approximate similarity from int8 codes: a quarter of the memory traffic.
struct Int8Vectors {
  const int8_t* codes;
  const float* scales;
  size_t d;
  Int8InnerProductFn ip;
  const float* query;
  float operator()(int32_t id) const { return scales[id] * ip(query, At(id), d); }
  const int8_t* At(int32_t id) const { return codes + static_cast<size_t>(id) * d; }
  void Prefetch(int32_t id) const { index::Prefetch(At(id), d); }
};

// The walk of hnswlib (Malkov & Yashunin, algorithm 2) over FAISS's graph layout: greedy on
// the upper levels, then a best-first search on level 0 that keeps the `ef` most similar
// admitted nodes and stops when the best unexpanded candidate is worse than all of them.
// Rejected nodes (tombstoned, filtered) are walked through but never kept. Returns false if
// the walk gave up because it had reached more than `max_visits` nodes (a filter that admits
// almost nothing), so the caller can scan instead.
template <typename Similarity>
bool WalkGraph(const faiss::HNSW& g, size_t n, const Similarity& similarity, size_t ef,
               const faiss::IDSelector* sel, std::vector<Scored>& kept) {
  auto admitted = [&](int32_t id) { return sel == nullptr || sel->is_member(id); };
  const auto& cum = g.cum_nneighbor_per_level;

  int32_t current = g.entry_point;
  float current_similarity = similarity(current);
  for (int level = g.max_level; level >= 1; --level) {
    for (bool moved = true; moved;) {
      moved = false;
      size_t begin = g.offsets[current] + cum[level], end = g.offsets[current] + cum[level + 1];
      for (size_t j = begin; j < end; ++j) {
        int32_t v = g.neighbors[j];
        if (v < 0) break;
        float s = similarity(v);
        if (s > current_similarity) current = v, current_similarity = s, moved = true;
      }
    }
  }

  thread_local VisitedMarks visited;
  visited.StartQuery(n);
  const size_t degree = static_cast<size_t>(cum[1] - cum[0]);
  // An unfiltered walk reaches a few ef x degree nodes; far more means the filter admits
  // little, where a scan that tests the filter first is cheaper than walking on.
  const size_t max_visits = std::max(n / 2, kMaxVisitsPerEfDegree * ef * degree);
  size_t visits = 1;
  std::vector<Scored> candidates;  // BetterFirst heap: next to expand on top
  candidates.reserve(4 * ef);
  kept.clear();  // WorseFirst heap of at most ef admitted nodes
  visited.TestAndSet(current);
  candidates.push_back({current_similarity, current});
  if (admitted(current)) kept.push_back({current_similarity, current});

  int32_t fresh[512];  // level-0 degree is 2 * M <= 512
  while (!candidates.empty()) {
    Scored best = candidates.front();
    if (kept.size() >= ef && best.similarity < kept.front().similarity) break;
    std::pop_heap(candidates.begin(), candidates.end(), BetterFirst{});
    candidates.pop_back();
    if (!candidates.empty()) {  // the next expansion's neighbour list
      Prefetch(&g.neighbors[g.offsets[candidates.front().id]], degree * sizeof(int32_t));
    }

    size_t begin = g.offsets[best.id], end = begin + std::min<size_t>(degree, std::size(fresh));
    size_t count = 0;
    for (size_t j = begin; j < end; ++j) {
      int32_t v = g.neighbors[j];
      if (v < 0) break;
      if (!visited.TestAndSet(static_cast<size_t>(v))) fresh[count++] = v;
    }
    visits += count;
    if (visits > max_visits) return false;
    if (count > 0) similarity.Prefetch(fresh[0]);
    for (size_t j = 0; j < count; ++j) {
      if (j + 1 < count) similarity.Prefetch(fresh[j + 1]);
      int32_t v = fresh[j];
      float s = similarity(v);
      if (kept.size() >= ef && s <= kept.front().similarity) continue;
      candidates.push_back({s, v});
      std::push_heap(candidates.begin(), candidates.end(), BetterFirst{});
      if (!admitted(v)) continue;
      kept.push_back({s, v});
      std::push_heap(kept.begin(), kept.end(), WorseFirst{});
      if (kept.size() > ef) {
        std::pop_heap(kept.begin(), kept.end(), WorseFirst{});
        kept.pop_back();
      }
    }
  }
  return true;
}

}  // namespace

WalkCodes WalkCodes::Of(const float* xb, size_t n, size_t d) {
  WalkCodes out;
  out.Append(xb, n, d);
  return out;
}

void WalkCodes::Append(const float* x, size_t n, size_t d) {
  const size_t first = scales.size();
  codes.resize((first + n) * d);
  scales.resize(first + n);
  for (size_t i = 0; i < n; ++i) {
    scales[first + i] = QuantizeInt8(x + i * d, d, &codes[(first + i) * d]);
  }
}

float Int8ScoreErrorBound(float scale, float query_abs_sum, size_t d) {
  // |q.x - scale * q.code| <= sum |q_i| * scale / 2, and the float sum of d products of up to
  // 127 * |q_i| adds at most d * 2^-24 * 127 * scale * sum |q_i| (twice that here). A half
  // holds x_i to 2^-11 of |x_i|, so for the unit vectors the index stores |q.x - q.half| <=
  // 2^-11 plus its own float sum's d * 2^-24 (again doubled).
  const double fd = static_cast<double>(d);
  const double code = scale * query_abs_sum * (0.5 + 127.0 * fd * 0x1p-23);
  const double half = 0x1p-11 + fd * 0x1p-23;
  return static_cast<float>(code + half);
}

namespace {

// Scores the kept nodes of a walk on codes from the halves and leaves in `kept` the best
// `ranked` of those `rank_only` admits (all if null), best first. A node's half score lies
// within its error bound of its int8 score, so the nodes are taken by decreasing upper bound
// and the rest dropped once the `ranked`-th best score found beats the next upper bound:
// neither the filter nor the half-precision vector of a node that cannot be among the best
// is read (for a near-duplicate query usually all but the nearest few).
void RescoreFromHalves(const HnswGraph& graph, const float* query, size_t ranked,
                       const faiss::IDSelector* rank_only, std::vector<Scored>& kept) {
  const HalfInnerProductFn half_ip = HalfInnerProductFunction();
  float query_abs_sum = 0.0f;
  for (size_t i = 0; i < graph.d; ++i) query_abs_sum += std::fabs(query[i]);
  query_abs_sum *= 1.001f;  // the sum above is itself a float sum of d terms
  for (Scored& s : kept) {  // from here on, each node's upper bound
    s.similarity += Int8ScoreErrorBound(graph.codes.scales[s.id], query_abs_sum, graph.d);
  }
  std::sort(kept.begin(), kept.end(),
            [](const Scored& a, const Scored& b) { return a.similarity > b.similarity; });
  std::vector<Scored> best;  // best first, at most `ranked`
  best.reserve(std::min(ranked, kept.size()) + 1);
  for (const Scored& candidate : kept) {
    if (best.size() == ranked && candidate.similarity < best.back().similarity) break;
    if (rank_only != nullptr && !rank_only->is_member(candidate.id)) continue;
    Scored scored{half_ip(query, graph.Half(static_cast<size_t>(candidate.id)), graph.d),
                  candidate.id};
    best.insert(std::upper_bound(best.begin(), best.end(), scored, Ranked{}), scored);
    if (best.size() > ranked) best.pop_back();
  }
  kept = std::move(best);
}

}  // namespace

Status WalkHnsw(const HnswGraph& graph, const float* query, size_t k, const faiss::IDSelector* sel,
                WalkOn on, size_t ranked, std::vector<GraphHit>& out,
                const faiss::IDSelector* rank_only) {
  out.clear();
  const size_t n = graph.n;
  if (n == 0 || k == 0) return Status::Ok();
  const size_t ef = std::max(static_cast<size_t>(std::max(graph.links.efSearch, 1)), k);
  std::vector<Scored> kept;
  kept.reserve(ef + 1);
  const HalfVectors half{graph, HalfInnerProductFunction(), query};
  bool finished;
  if (on == WalkOn::kCodes) {
    finished = WalkGraph(graph.links, n,
                         Int8Vectors{graph.codes.codes.data(), graph.codes.scales.data(), graph.d,
                                     Int8InnerProductFunction(), query},
                         ef, sel, kept);
  } else {
    finished = WalkGraph(graph.links, n, half, ef, sel, kept);
  }
  if (!finished) {
    return Status::ResourceExhausted("hnsw walk reached half the graph without enough matches");
  }
  if (ranked == 0) ranked = 1;
  if (on == WalkOn::kCodes) {
    RescoreFromHalves(graph, query, ranked, rank_only, kept);
  } else {
    if (rank_only != nullptr) {
      std::erase_if(kept, [&](const Scored& s) { return !rank_only->is_member(s.id); });
    }
    std::sort(kept.begin(), kept.end(), Ranked{});
    if (kept.size() > ranked) kept.resize(ranked);
  }
  out.reserve(kept.size());
  for (const Scored& s : kept) out.push_back({s.similarity, s.id});
  return Status::Ok();
}

Status SearchHnsw(const HnswGraph& graph, const float* query, size_t k,
                  const faiss::IDSelector* sel, float* scores, int64_t* labels, WalkOn on) {
  std::fill_n(scores, k, -std::numeric_limits<float>::infinity());
  std::fill_n(labels, k, int64_t{-1});
  std::vector<GraphHit> hits;
  SC_RETURN_IF_ERROR(WalkHnsw(graph, query, k, sel, on, k, hits));
  for (size_t i = 0; i < std::min(k, hits.size()); ++i) {
    scores[i] = hits[i].score;
    labels[i] = hits[i].label;
  }
  return Status::Ok();
}

}  // namespace sealcache::index
