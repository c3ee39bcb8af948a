#include "simd_hnsw.h"

#include <faiss/impl/HNSW.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "sealcache/index/inner_product.h"

namespace sealcache::index {
namespace {

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
inline void PrefetchLine(const char* p) {
#if defined(__x86_64__)
  // An asm statement the compiler must keep: g++ 12 deleted __builtin_prefetch loops from
  // SearchLevel depending on the code around them (a walk then ran 1.35x slower).
  asm volatile("prefetcht0 %0" : : "m"(*p));
#else
  __builtin_prefetch(p, 0, 3);
#endif
}
inline void Prefetch(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t offset = 0; offset < bytes; offset += 64) PrefetchLine(c + offset);
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

// Approximate similarity from int8 codes, a query's code against each node's: a quarter of
// the memory traffic of the halves, and one integer product a node. The query is a lookup's
// (Int8Query) or, while a graph is built, the new node's own code.
struct Int8Vectors {
  const WalkCodes& codes;
  size_t d;
  const int8_t* query_code;
  float query_scale;
  Int8CodeProductFn ip;
  float operator()(int32_t id) const {
    return query_scale * codes.Scale(static_cast<size_t>(id)) *
           static_cast<float>(ip(query_code, At(id), d));
  }
  // (Offsets from this struct's d, not the rows' own width: with the width loaded from the
  // rows, g++ 12 dropped the code prefetches below, and walks ran 1.4x slower.)
  const int8_t* At(int32_t id) const { return codes.codes.data() + static_cast<size_t>(id) * d; }
  void Prefetch(int32_t id) const { index::Prefetch(At(id), d); }
};

// How many nodes ahead of the one being scored SearchLevel asks for codes. A walk on codes is
// bound by memory latency (a code is 6 cache lines far outside the caches, its product a
// few dozen cycles), so one node ahead leaves most of each miss exposed: in index_bench at
// 100k x 384, ef 48, one process, 1 / 4 / 6 / 8 / 12 ahead walked in 97-104 / 85-92 / 82-89
// / 86-92 / 86-91 us.
constexpr size_t kPrefetchAhead = 4;

// One greedy pass on an upper level: moves to the most similar neighbour until none is more
// similar than the current node.
template <typename Similarity>
Scored GreedyOnLevel(const faiss::HNSW& g, int level, const Similarity& similarity,
                     Scored current) {
  const auto& cum = g.cum_nneighbor_per_level;
  for (bool moved = true; moved;) {
    moved = false;
    size_t begin = g.offsets[current.id] + cum[level];
    size_t end = g.offsets[current.id] + cum[level + 1];
    for (size_t j = begin; j < end; ++j) {
      int32_t v = g.neighbors[j];
      if (v < 0) break;
      float s = similarity(v);
      if (s > current.similarity) current = {s, v}, moved = true;
    }
  }
  return current;
}

// The best-first search of one level (Malkov & Yashunin, algorithm 2) with hnswlib's stopping
// rule: keeps in `kept` (a WorseFirst heap) the `ef` most similar admitted nodes reached from
// `start` and stops when the best unexpanded candidate is worse than all of them. Rejected
// nodes (tombstoned, filtered) are walked through but never kept. `visited` must have been
// started for this search. Returns false if the search gave up because it had reached more
// than `max_visits` nodes.
template <typename Similarity>
bool SearchLevel(const faiss::HNSW& g, int level, const Similarity& similarity, size_t ef,
                 const faiss::IDSelector* sel, Scored start, size_t max_visits,
                 VisitedMarks& visited, std::vector<Scored>& candidates,
                 std::vector<Scored>& kept) {
  auto admitted = [&](int32_t id) { return sel == nullptr || sel->is_member(id); };
  const auto& cum = g.cum_nneighbor_per_level;
  const size_t first = static_cast<size_t>(cum[level]);
  const size_t degree = static_cast<size_t>(cum[level + 1] - cum[level]);
  size_t visits = 1;
  candidates.clear();  // BetterFirst heap: next to expand on top
  kept.clear();
  visited.TestAndSet(static_cast<size_t>(start.id));
  candidates.push_back(start);
  if (admitted(start.id)) kept.push_back(start);

  int32_t fresh[512];  // a level's degree is at most 2 * M <= 512
  while (!candidates.empty()) {
    Scored best = candidates.front();
    if (kept.size() >= ef && best.similarity < kept.front().similarity) break;
    std::pop_heap(candidates.begin(), candidates.end(), BetterFirst{});
    candidates.pop_back();
    if (!candidates.empty()) {  // the next expansion's neighbour list
      Prefetch(&g.neighbors[g.offsets[candidates.front().id] + first], degree * sizeof(int32_t));
    }

    size_t begin = g.offsets[best.id] + first;
    size_t end = begin + std::min<size_t>(degree, std::size(fresh));
    size_t count = 0;
    for (size_t j = begin; j < end; ++j) {
      int32_t v = g.neighbors[j];
      if (v < 0) break;
      if (!visited.TestAndSet(static_cast<size_t>(v))) fresh[count++] = v;
    }
    visits += count;
    if (visits > max_visits) return false;
    for (size_t j = 0; j < std::min(count, kPrefetchAhead); ++j) similarity.Prefetch(fresh[j]);
    for (size_t j = 0; j < count; ++j) {
      if (j + kPrefetchAhead < count) similarity.Prefetch(fresh[j + kPrefetchAhead]);
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

// A query's walk (hnswlib's, over FAISS's graph layout): greedy on the upper levels, then
// SearchLevel on level 0. Returns false if the walk gave up because it had reached more than
// max(n / 2, kMaxVisitsPerEfDegree * ef * degree) nodes (a filter that admits almost
// nothing), so the caller can scan instead.
template <typename Similarity>
bool WalkGraph(const faiss::HNSW& g, size_t n, const Similarity& similarity, size_t ef,
               const faiss::IDSelector* sel, std::vector<Scored>& kept) {
  Scored current{similarity(g.entry_point), g.entry_point};
  for (int level = g.max_level; level >= 1; --level) {
    current = GreedyOnLevel(g, level, similarity, current);
  }
  thread_local VisitedMarks visited;
  visited.StartQuery(n);
  const auto& cum = g.cum_nneighbor_per_level;
  const size_t degree = static_cast<size_t>(cum[1] - cum[0]);
  // An unfiltered walk reaches a few ef x degree nodes; far more means the filter admits
  // little, where a scan that tests the filter first is cheaper than walking on.
  const size_t max_visits = std::max(n / 2, kMaxVisitsPerEfDegree * ef * degree);
  std::vector<Scored> candidates;
  candidates.reserve(4 * ef);
  return SearchLevel(g, 0, similarity, ef, sel, current, max_visits, visited, candidates, kept);
}

// Our own HNSW construction (Malkov & Yashunin, algorithms 1 and 4) into FAISS's link layout,
// every distance an integer product of two int8 codes (WalkCodes), the new vector's own code
// included. It makes the choices FAISS's construction made here before (its level draws, the
// same neighbour-selection heuristic, a full list re-pruned when a reverse link overflows
// it, so lists stay as sparse and walks as short), but searches with the query walk's
// SearchLevel (prefetched lists and codes, no virtual call or allocation per distance) and
// multiplies codes with vpmaddubsw. Measured at 100k x 384 clustered, M 16, efC 100, one
// core: FAISS's construction over our distances 54-60 s, this 30-31 s, recall of the walk
// the same (bench/README.md); at 50k, using the new vector's code rather than its float
// vector while it searches was 1.13x with the same recall.
class GraphBuilder {
 public:
  // `memo` describes the graph's slots up to its size (the rest are new: unknown) and is
  // kept up to date as links are written.
  GraphBuilder(HnswGraph& graph, size_t ef_construction, LinkMemo& memo)
      : g_(graph.links),
        codes_(graph.codes),
        d_(graph.d),
        ef_(std::max<size_t>(ef_construction, 1)),
        code_ip_(Int8CodeProductFunction()),
        link_similarity_(memo.similarity),
        checked_(memo.checked) {
    link_similarity_.resize(g_.neighbors.size(), kUnknownSimilarity);
    checked_.resize(g_.neighbors.size(), 0);
  }

  // Links node `id` (its level drawn by prepare_level_tab, its code stored) into the graph.
  void Insert(int32_t id) {
    const int level = g_.levels[id] - 1;
    if (g_.entry_point < 0) {
      g_.entry_point = id;
      g_.max_level = level;
      return;
    }
    const Int8Vectors similarity{codes_, d_, Code(id), codes_.Scale(static_cast<size_t>(id)),
                                 code_ip_};
    Scored current{similarity(g_.entry_point), g_.entry_point};
    for (int l = g_.max_level; l > level; --l) current = GreedyOnLevel(g_, l, similarity, current);
    const auto& cum = g_.cum_nneighbor_per_level;
    for (int l = std::min(level, g_.max_level); l >= 0; --l) {
      visited_.StartQuery(g_.levels.size());
      SearchLevel(g_, l, similarity, ef_, nullptr, current, SIZE_MAX, visited_, candidates_,
                  found_);
      std::sort(found_.begin(), found_.end(), Ranked{});
      current = found_.front();  // where the next level's search starts
      const size_t max = static_cast<size_t>(g_.nb_neighbors(l));
      SelectDiverse(found_, max, links_);
      // Fewer candidates than the list holds are all kept, unchecked against each other.
      const uint8_t checked = found_.size() >= max ? 1 : 0;
      const size_t begin = g_.offsets[id] + cum[l];
      for (size_t j = 0; j < links_.size(); ++j) {
        SetLink(begin + j, links_[j], checked);
      }
      for (const Scored& other : links_) LinkBack(other.id, {other.similarity, id}, l);
    }
    if (level > g_.max_level) {
      g_.max_level = level;
      g_.entry_point = id;
    }
  }

 private:
  const int8_t* Code(int32_t i) const {
    return codes_.codes.data() + static_cast<size_t>(i) * d_;  // (as Int8Vectors::At)
  }
  float CodeSimilarity(int32_t a, int32_t b) const {
    return codes_.Scale(static_cast<size_t>(a)) * codes_.Scale(static_cast<size_t>(b)) *
           static_cast<float>(code_ip_(Code(a), Code(b), d_));
  }

  // A link in a re-selection: whether it is checked against the list's other checked links.
  struct Pooled {
    Scored link;
    bool checked;
  };
  static const Scored& LinkOf(const Scored& s) { return s; }
  static const Scored& LinkOf(const Pooled& p) { return p.link; }
  static bool Checked(const Scored&) { return false; }
  static bool Checked(const Pooled& p) { return p.checked; }

  // The heuristic of algorithm 4 (as FAISS and hnswlib apply it): from `candidates`, best
  // first by similarity to the node being linked, keeps a candidate unless an already kept
  // one is more similar to it than the node is, up to `max` of them. Fewer than `max`
  // candidates are all kept. Two checked candidates (Pooled) are not compared: one earlier
  // selection already kept both.
  template <typename Candidate>
  void SelectDiverse(const std::vector<Candidate>& candidates, size_t max,
                     std::vector<Candidate>& out) {
    out.clear();
    if (candidates.size() < max) {
      out = candidates;
      return;
    }
    for (size_t i = 0; i < candidates.size() && out.size() < max; ++i) {
      if (i + 1 < candidates.size()) Prefetch(Code(LinkOf(candidates[i + 1]).id), d_);
      const Scored& c = LinkOf(candidates[i]);
      bool diverse = true;
      for (const Candidate& kept : out) {
        if (Checked(candidates[i]) && Checked(kept)) continue;
        if (CodeSimilarity(c.id, LinkOf(kept).id) > c.similarity) {
          diverse = false;
          break;
        }
      }
      if (diverse) out.push_back(candidates[i]);
    }
  }

  // Writes `link` (its similarity to the list's node) into slot j of a neighbour list.
  // `checked`: whether it was kept by the selection that wrote every other checked link of
  // the list.
  void SetLink(size_t j, const Scored& link, uint8_t checked) {
    g_.neighbors[j] = link.id;
    link_similarity_[j] = link.similarity;
    checked_[j] = checked;
  }

  // Adds the link src -> dest.id on `level` (dest.similarity: theirs): into a free slot, or
  // by re-selecting src's list from its links and dest when it is full. The re-selection
  // keeps exactly the links SelectDiverse over them would, with fewer products: the links
  // one selection kept are known not to prune each other (each was compared with every
  // better one), so only pairs with a link added since (dest, or one that took a free slot)
  // are compared, and each link's similarity to src is remembered from when it was made. At
  // 50k x 384 (M 16, efC 100) a full re-selection compared ~470 pairs, 70% of the build's
  // code products.
  void LinkBack(int32_t src, const Scored& dest, int level) {
    const auto& cum = g_.cum_nneighbor_per_level;
    const size_t begin = g_.offsets[src] + cum[level];
    const size_t end = g_.offsets[src] + cum[level + 1];
    if (g_.neighbors[end - 1] < 0) {  // lists are packed from the front
      size_t j = begin;
      while (g_.neighbors[j] >= 0) ++j;
      SetLink(j, dest, 0);
      return;
    }
    pool_.clear();
    pool_.push_back({dest, false});
    for (size_t j = begin; j < end; ++j) {
      const int32_t id = g_.neighbors[j];
      Prefetch(Code(id), d_);
      float similarity = link_similarity_[j];
      if (std::isnan(similarity)) similarity = CodeSimilarity(src, id);  // an extended base's
      pool_.push_back({{similarity, id}, checked_[j] != 0});
    }
    std::sort(pool_.begin(), pool_.end(),
              [](const Pooled& a, const Pooled& b) { return Ranked{}(a.link, b.link); });
    SelectDiverse(pool_, end - begin, relinked_);
    size_t j = begin;
    for (const Pooled& kept : relinked_) SetLink(j++, kept.link, 1);
    for (; j < end; ++j) SetLink(j, {kUnknownSimilarity, -1}, 0);
  }

  static constexpr float kUnknownSimilarity = std::numeric_limits<float>::quiet_NaN();

  faiss::HNSW& g_;
  const WalkCodes& codes_;
  const size_t d_;
  const size_t ef_;
  const Int8CodeProductFn code_ip_;
  // The LinkMemo's: parallel to g_.neighbors, each link's similarity to its list's node
  // (kUnknownSimilarity where not known) and whether it is checked (SetLink).
  std::vector<float>& link_similarity_;
  std::vector<uint8_t>& checked_;
  VisitedMarks visited_;
  std::vector<Scored> candidates_, found_, links_;
  std::vector<Pooled> pool_, relinked_;
};

// Adds the n x d row-major `x` to `graph` (whose links, codes and halves hold graph.n
// vectors), checking `cancel` every options.batch vectors. In the order they come, as
// hnswlib, Lucene and pgvector insert: FAISS's order (the highest levels first, each level
// shuffled) gave the same recall at 100k but built 10-17% slower, because a shuffled
// insertion reaches across the whole of the code and link arrays from the start where the
// arrival order works in a prefix that stays in the caches.
Status AddToGraph(HnswGraph& graph, const float* x, size_t n, const HnswBuildOptions& options,
                  const std::atomic<bool>* cancel, LinkMemo& memo) {
  const size_t d = graph.d;
  if (graph.n + n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return Status::InvalidArgument("hnsw: more vectors than a graph can link");
  }
  graph.codes.Append(x, n, d);
  graph.half.Grow(n);
  EncodeHalf(x, n * d, graph.half.MutableRow(graph.n));
  graph.links.efConstruction = options.ef_construction;
  graph.links.prepare_level_tab(n, /*preset_levels=*/false);
  GraphBuilder builder(graph, static_cast<size_t>(options.ef_construction), memo);
  const size_t batch = std::max<size_t>(options.batch, 1);
  for (size_t i = 0; i < n; ++i) {
    if (i % batch == 0 && cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
      return Status::FailedPrecondition("hnsw build cancelled");
    }
    builder.Insert(static_cast<int32_t>(graph.n + i));
  }
  graph.n += n;
  return Status::Ok();
}

// Room a new neighbour array gets beyond what its extension needs, as a fraction of that:
// a spare array (SpareLinks) comes back two extensions later, each having added ~1% of the
// links at 100k, so one array serves about six extensions before a larger one is needed.
constexpr size_t kSpareRoomDivisor = 8;

// A copy of `links` (with its level generator's state) whose arrays have room for n more
// nodes, so that prepare_level_tab appends in place. Assigning the links and letting
// prepare_level_tab grow them copied the neighbour array twice (~14 MB at 100k x M 16, its
// fresh pages zeroed by the kernel both times: 6% of the server under streaming puts) and
// left it at twice the size it needed for as long as that version lived. The neighbours go
// into `spare`'s array if it has room (its pages already faulted in), else a new one with
// room for a few more extensions.
faiss::HNSW CopyWithRoom(const faiss::HNSW& links, size_t n, SpareLinks* spare) {
  // Slots a node takes on average: one at level i has cum_nneighbor_per_level[i + 1].
  double per_node = 0.0;
  for (size_t level = 0; level < links.assign_probas.size(); ++level) {
    per_node += links.assign_probas[level] * links.cum_nneighbor_per_level[level + 1];
  }
  const size_t most = static_cast<size_t>(links.cum_nneighbor_per_level.back());
  const size_t room = static_cast<size_t>(per_node * 1.05 * static_cast<double>(n)) + 4 * most;
  faiss::HNSW copy;
  copy.assign_probas = links.assign_probas;
  copy.cum_nneighbor_per_level = links.cum_nneighbor_per_level;
  copy.levels.reserve(links.levels.size() + n);
  copy.levels = links.levels;
  copy.offsets.reserve(links.offsets.size() + n);
  copy.offsets = links.offsets;
  const size_t need = links.neighbors.size() + room;
  SpareLinks::Array neighbors = spare != nullptr ? spare->Take() : SpareLinks::Array{};
  if (neighbors.capacity() < need) {
    neighbors = {};  // freed before the larger one is allocated
    neighbors.reserve(spare != nullptr ? need + need / kSpareRoomDivisor : need);
  }
  neighbors.assign(links.neighbors.begin(), links.neighbors.end());
  copy.neighbors = std::move(neighbors);
  copy.entry_point = links.entry_point;
  copy.rng = links.rng;
  copy.max_level = links.max_level;
  copy.efConstruction = links.efConstruction;
  copy.efSearch = links.efSearch;
  copy.check_relative_distance = links.check_relative_distance;
  copy.upper_beam = links.upper_beam;
  copy.search_bounded_queue = links.search_bounded_queue;
  return copy;
}

}  // namespace

Result<std::unique_ptr<HnswGraph>> BuildHnsw(const float* x, size_t n, size_t d,
                                             const HnswBuildOptions& options,
                                             const std::atomic<bool>* cancel, LinkMemo* memo) {
  auto graph = std::make_unique<HnswGraph>(d);
  graph->links = faiss::HNSW(options.m);
  LinkMemo own;
  LinkMemo& used = memo != nullptr ? *memo : own;
  used = {};
  SC_RETURN_IF_ERROR(AddToGraph(*graph, x, n, options, cancel, used));
  return graph;
}

Result<std::unique_ptr<HnswGraph>> ExtendHnsw(const HnswGraph& base, const float* x, size_t n,
                                              const HnswBuildOptions& options,
                                              const std::atomic<bool>* cancel, LinkMemo* memo,
                                              SpareLinks* spare) {
  LinkMemo own;
  LinkMemo& used = memo != nullptr ? *memo : own;
  if (used.similarity.size() != base.links.neighbors.size() ||
      used.checked.size() != base.links.neighbors.size()) {
    used = {};
  }
  auto graph = std::make_unique<HnswGraph>();
  graph->links = CopyWithRoom(base.links, n, spare);
  graph->n = base.n;
  graph->d = base.d;
  graph->half = base.half;
  graph->codes = base.codes;
  SC_RETURN_IF_ERROR(AddToGraph(*graph, x, n, options, cancel, used));
  return graph;
}

void SpareLinks::Keep(Array&& neighbors) {
  Array smaller;  // freed outside the lock
  std::lock_guard lock(mu_);
  if (neighbors.capacity() <= spare_.capacity()) return;
  smaller.swap(spare_);
  spare_ = std::move(neighbors);
}

SpareLinks::Array SpareLinks::Take() {
  Array taken;
  {
    std::lock_guard lock(mu_);
    taken = std::move(spare_);
    spare_ = {};
  }
  taken.clear();
  return taken;
}

void SpareLinks::Clear() {
  Array freed;
  std::lock_guard lock(mu_);
  freed.swap(spare_);
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
  auto graph = std::make_unique<HnswGraph>(d);
  graph->links = std::move(index.hnsw);
  graph->n = n;
  graph->half.Grow(n);
  EncodeHalf(storage->get_xb(), n * d, graph->half.MutableRow(0));
  graph->codes.Append(storage->get_xb(), n, d);
  return graph;
}

void WalkCodes::Append(const float* x, size_t n, size_t d) {
  const size_t first = scales.rows();
  codes.Grow(n);
  scales.Grow(n);
  for (size_t i = 0; i < n; ++i) {
    *scales.MutableRow(first + i) = QuantizeInt8(x + i * d, d, codes.MutableRow(first + i));
  }
}

Int8Query Int8Query::Of(const float* query, size_t d) {
  Int8Query q;
  q.code.resize(d);
  q.scale = QuantizeInt8(query, d, q.code.data());
  double abs_sum = 0.0, error2 = 0.0;
  for (size_t i = 0; i < d; ++i) {
    abs_sum += std::fabs(double{query[i]});
    const double e = double{query[i]} - double{q.scale} * q.code[i];
    error2 += e * e;
  }
  // sum |query_i| and error_norm = |query - scale * code| (Euclidean), computed in double,
  // then rounded up by far more than float's rounding of each.
  const float abs_sum_up = static_cast<float>(abs_sum * (1.0 + 0x1p-12));
  const float error_norm = static_cast<float>(std::sqrt(error2) * (1.0 + 0x1p-12));
  // ErrorBound's two terms. With q = scale * code_q + e_q and x = node_scale * code_x + e_x
  // (|e_x,i| <= node_scale / 2), q.x - scale * node_scale * (code_q . code_x) = (scale *
  // code_q) . e_x + e_q . x, at most node_scale / 2 * sum |scale * code_q,i| (<= abs_sum +
  // d * scale / 2) plus error_norm * |x| (|x| <= 1 + 2^-11: a unit vector, or its half when
  // the codes were made from the halves). The integer product is exact; the two float
  // multiplications add at most 2^-22 of a score below 2. A half holds x_i to 2^-11 of
  // |x_i|, so |q.x - q.half| <= 2^-11, plus the half product's float sum of d terms,
  // d * 2^-24 (doubled). Both are rounded up by 2^-12, which also covers the three float
  // roundings of ErrorBound (each at most 2^-24 relative).
  const double fd = static_cast<double>(d);
  const double arithmetic = 0x1p-21 + fd * 0x1p-23;
  q.bound_per_scale =
      static_cast<float>(0.5 * (double{abs_sum_up} + fd * q.scale * 0.5) * (1.0 + 0x1p-12));
  q.bound_base = static_cast<float>((double{error_norm} * (1.0 + 0x1p-10) + 0x1p-11 + arithmetic) *
                                    (1.0 + 0x1p-12));
  return q;
}

namespace {

// Scores the kept nodes of a walk on codes from the halves and leaves in `kept` the best
// `ranked` of those `rank_only` admits (all if null) and whose scores may reach `min_score`,
// best first. A node's half score lies within its error bound of its int8 score, so the nodes
// are taken by decreasing upper bound and the rest dropped once the `ranked`-th best score
// found beats the next upper bound, or the next upper bound is below min_score: neither the
// filter nor the half-precision vector of a node that cannot be among the best answers is
// read (for a near-duplicate query usually all but the nearest few). Returns true if it
// stopped at min_score: every kept node that may score at or above it was ranked.
bool RescoreFromHalves(const HnswGraph& graph, const float* query, const Int8Query& walked,
                       size_t ranked, const faiss::IDSelector* rank_only, float min_score,
                       std::vector<Scored>& kept) {
  const HalfInnerProductFn half_ip = HalfInnerProductFunction();
  for (Scored& s : kept) {  // from here on, each node's upper bound
    s.similarity += walked.ErrorBound(graph.codes.Scale(static_cast<size_t>(s.id)));
  }
  std::sort(kept.begin(), kept.end(),
            [](const Scored& a, const Scored& b) { return a.similarity > b.similarity; });
  std::vector<Scored> best;  // best first, at most `ranked`
  best.reserve(std::min(ranked, kept.size()) + 1);
  bool below_threshold = false;
  for (const Scored& candidate : kept) {
    if (best.size() == ranked && candidate.similarity < best.back().similarity) break;
    if (candidate.similarity < min_score) {
      below_threshold = true;
      break;
    }
    if (rank_only != nullptr && !rank_only->is_member(candidate.id)) continue;
    Scored scored{half_ip(query, graph.Half(static_cast<size_t>(candidate.id)), graph.d),
                  candidate.id};
    best.insert(std::upper_bound(best.begin(), best.end(), scored, Ranked{}), scored);
    if (best.size() > ranked) best.pop_back();
  }
  kept = std::move(best);
  return below_threshold;
}

}  // namespace

Status WalkHnsw(const HnswGraph& graph, const float* query, size_t k, const WalkOptions& options,
                std::vector<GraphHit>& out) {
  out.clear();
  const size_t n = graph.n;
  if (n == 0 || k == 0) return Status::Ok();
  const size_t ef = std::max(static_cast<size_t>(std::max(graph.links.efSearch, 1)), k);
  const size_t ranked = options.ranked == 0 ? k : options.ranked;
  const bool on_codes = options.on == WalkOn::kCodes;
  Int8Query own_code;
  if (on_codes && options.code == nullptr) own_code = Int8Query::Of(query, graph.d);
  const Int8Query& walked = options.code != nullptr ? *options.code : own_code;
  std::vector<Scored> kept;
  kept.reserve(ef + 1);
  auto walk = [&](size_t beam) {
    if (options.stats != nullptr) ++options.stats->walks;
    if (on_codes) {
      return WalkGraph(graph.links, n,
                       Int8Vectors{graph.codes, graph.d, walked.code.data(), walked.scale,
                                   Int8CodeProductFunction()},
                       beam, options.sel, kept);
    }
    return WalkGraph(graph.links, n, HalfVectors{graph, HalfInnerProductFunction(), query}, beam,
                     options.sel, kept);
  };
  bool complete = false;
  auto rank = [&] {
    if (on_codes) {
      complete = RescoreFromHalves(graph, query, walked, ranked, options.rank_only,
                                   options.min_score, kept);
      return;
    }
    if (options.rank_only != nullptr) {
      std::erase_if(kept, [&](const Scored& s) { return !options.rank_only->is_member(s.id); });
    }
    std::sort(kept.begin(), kept.end(), Ranked{});
    if (kept.size() > ranked) kept.resize(ranked);
  };

  const size_t short_ef = std::max(options.short_ef, k);
  bool answered = false;
  // A threshold at or below -1 (the least cosine of unit vectors) keeps every node.
  if (on_codes && options.min_score > kLeastCosine && short_ef < ef && walk(short_ef) &&
      kept.size() == short_ef) {
    // kept is a WorseFirst heap: its front has the lowest code score of the beam.
    const Scored& worst = kept.front();
    const bool past_threshold =
        worst.similarity + walked.ErrorBound(graph.codes.Scale(static_cast<size_t>(worst.id))) <
        options.min_score;
    if (past_threshold) {
      rank();  // (stops at the threshold, at the latest at the beam's worst node)
      answered = !kept.empty() && kept.front().similarity >= options.min_score;
    }
  }
  if (!answered) {
    if (!walk(ef)) {
      return Status::ResourceExhausted("hnsw walk reached half the graph without enough matches");
    }
    rank();
  }
  out.reserve(kept.size());
  for (const Scored& s : kept) out.push_back({s.similarity, s.id});
  if (options.complete != nullptr) *options.complete = complete;
  return Status::Ok();
}

Status SearchHnsw(const HnswGraph& graph, const float* query, size_t k,
                  const faiss::IDSelector* sel, float* scores, int64_t* labels, WalkOn on) {
  std::fill_n(scores, k, -std::numeric_limits<float>::infinity());
  std::fill_n(labels, k, int64_t{-1});
  std::vector<GraphHit> hits;
  SC_RETURN_IF_ERROR(WalkHnsw(graph, query, k, {.sel = sel, .on = on}, hits));
  for (size_t i = 0; i < std::min(k, hits.size()); ++i) {
    scores[i] = hits[i].score;
    labels[i] = hits[i].label;
  }
  return Status::Ok();
}

}  // namespace sealcache::index
