// Purpose: HNSW build/search, our SIMD distances vs Debian FAISS's own; VectorIndex QPS and p99.
//
// Clustered 384-d vectors (1000 Gaussian clusters, like embeddings). N defaults to 10000 so
// the FAISS-scalar build stays short; the 100k-per-org numbers:
//   SEALCACHE_BENCH_N=100000 ./index_bench --benchmark_filter='VectorIndex|Flat'
// (add 'Hnsw' to the filter to include the FAISS-scalar build, ~5x slower than ours).
#include <benchmark/benchmark.h>
#include <faiss/IndexHNSW.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "sealcache/index/inner_product.h"
#include "sealcache/index/vector_index.h"
#include "simd_hnsw.h"

namespace sealcache::index {
namespace {

constexpr size_t kDim = 384;
constexpr size_t kQueries = 500;

// SEALCACHE_BENCH_<NAME> overrides a default, e.g. SEALCACHE_BENCH_M=16.
size_t EnvOr(const char* name, size_t fallback) {
  const char* env = std::getenv(name);
  return env != nullptr ? std::strtoull(env, nullptr, 10) : fallback;
}

size_t BenchN() { return EnvOr("SEALCACHE_BENCH_N", 10000); }
const int kM = static_cast<int>(EnvOr("SEALCACHE_BENCH_M", IndexParams{}.hnsw_m));
const int kEfConstruction =
    static_cast<int>(EnvOr("SEALCACHE_BENCH_EF_CONSTRUCTION", IndexParams{}.ef_construction));
const int kEfSearch = static_cast<int>(EnvOr("SEALCACHE_BENCH_EF_SEARCH", IndexParams{}.ef_search));

void Normalize(float* v) {
  double s = 0;
  for (size_t i = 0; i < kDim; ++i) s += double{v[i]} * v[i];
  float inv = static_cast<float>(1.0 / std::sqrt(s));
  for (size_t i = 0; i < kDim; ++i) v[i] *= inv;
}

std::vector<float> Clustered(size_t n, uint32_t stream) {
  std::mt19937 centre_rng(7);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> centres(1000 * kDim);
  for (float& x : centres) x = gauss(centre_rng);
  std::mt19937 rng(1000 + stream);
  std::vector<float> out(n * kDim);
  for (size_t i = 0; i < n; ++i) {
    size_t c = rng() % 1000;
    for (size_t j = 0; j < kDim; ++j) out[i * kDim + j] = centres[c * kDim + j] + gauss(rng);
    Normalize(&out[i * kDim]);
  }
  return out;
}

struct Data {
  std::vector<float> base, queries, near_queries, far_queries;
  std::vector<int64_t> exact_top10, near_exact_top10, far_exact_top10;  // kRecallK per query
};

// Random directions, far from every cluster (best cosine ~0.2, many near-ties): the fresh
// queries of sealcache-bench, misses for a cache, and the hardest to navigate.
std::vector<float> Isotropic(size_t n) {
  std::mt19937 rng(77);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> out(n * kDim);
  for (size_t q = 0; q < n; ++q) {
    for (size_t j = 0; j < kDim; ++j) out[q * kDim + j] = gauss(rng);
    Normalize(&out[q * kDim]);
  }
  return out;
}

// Near-duplicates of base vectors (cosine ~0.97 to their source), like a gateway's repeated
// prompts: the lookups a semantic cache exists for.
std::vector<float> NearDuplicates(const std::vector<float>& base, size_t n) {
  std::mt19937 rng(99);
  std::normal_distribution<float> gauss(0.0f, 0.0125f);
  size_t nb = base.size() / kDim;
  std::vector<float> out(n * kDim);
  for (size_t q = 0; q < n; ++q) {
    size_t src = rng() % nb;
    for (size_t j = 0; j < kDim; ++j) out[q * kDim + j] = base[src * kDim + j] + gauss(rng);
    Normalize(&out[q * kDim]);
  }
  return out;
}

constexpr size_t kRecallK = 10;

// The exact kRecallK most similar base vectors of each query, best first.
std::vector<int64_t> ExactTopK(const std::vector<float>& base, const std::vector<float>& queries) {
  size_t n = base.size() / kDim;
  std::vector<int64_t> top;
  std::vector<std::pair<float, int64_t>> scored(n);
  for (size_t q = 0; q < queries.size() / kDim; ++q) {
    for (size_t i = 0; i < n; ++i) {
      scored[i] = {-InnerProduct(&queries[q * kDim], &base[i * kDim], kDim),
                   static_cast<int64_t>(i)};
    }
    std::partial_sort(scored.begin(), scored.begin() + kRecallK, scored.end());
    for (size_t j = 0; j < kRecallK; ++j) top.push_back(scored[j].second);
  }
  return top;
}

const Data& GetData() {
  static const Data data = [] {
    Data d;
    d.base = Clustered(BenchN(), 0);
    d.queries = Clustered(kQueries, 1);
    d.near_queries = NearDuplicates(d.base, kQueries);
    d.far_queries = Isotropic(kQueries);
    d.exact_top10 = ExactTopK(d.base, d.queries);
    d.near_exact_top10 = ExactTopK(d.base, d.near_queries);
    d.far_exact_top10 = ExactTopK(d.base, d.far_queries);
    return d;
  }();
  return data;
}

// Each graph is built once and shared by the search benchmarks, with its build time.
struct Built {
  std::unique_ptr<faiss::IndexHNSWFlat> faiss_own;  // the peer: FAISS's own construction
  std::unique_ptr<HnswGraph> ours;                  // BuildHnsw: int8 construction, halves
  double seconds = 0;
};

template <bool kOurs>
const Built& Hnsw() {
  static const Built built = [] {
    const Data& d = GetData();
    omp_set_num_threads(1);
    Built b;
    auto start = std::chrono::steady_clock::now();
    if (kOurs) {
      HnswBuildOptions options{.m = kM, .ef_construction = kEfConstruction};
      b.ours = std::move(BuildHnsw(d.base.data(), BenchN(), kDim, options, nullptr)).value();
    } else {
      b.faiss_own = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(kDim), kM,
                                                           faiss::METRIC_INNER_PRODUCT);
      b.faiss_own->hnsw.efConstruction = kEfConstruction;
      b.faiss_own->add(static_cast<faiss::Index::idx_t>(BenchN()), d.base.data());
    }
    b.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return b;
  }();
  return built;
}

// arg 0: FAISS's own IndexHNSWFlat (Debian: scalar distances); arg 1: ours (int8 codes,
// AVX2).
void BM_HnswBuild(benchmark::State& state) {
  const bool ours = state.range(0) == 1;
  const double seconds = ours ? Hnsw<true>().seconds : Hnsw<false>().seconds;
  for (auto _ : state) state.SetIterationTime(seconds);
  state.counters["vectors_per_s"] = static_cast<double>(BenchN()) / seconds;
  // Links a walk follows from each node it expands (level 0; the degree caps it at 2M).
  const faiss::HNSW& links = ours ? Hnsw<true>().ours->links : Hnsw<false>().faiss_own->hnsw;
  size_t level0 = 0;
  for (size_t i = 0; i < BenchN(); ++i) {
    size_t begin, end;
    links.neighbor_range(static_cast<faiss::HNSW::idx_t>(i), 0, &begin, &end);
    for (size_t j = begin; j < end && links.neighbors[j] >= 0; ++j) ++level0;
  }
  state.counters["level0_degree"] = static_cast<double>(level0) / static_cast<double>(BenchN());
  state.SetLabel(ours ? std::string(InnerProductImplementationName()) : "faiss-own");
}

// A graph grown as an org's seals grow it: the first kSealStep vectors built, each further
// kSealStep added by ExtendHnsw to the graph before it, which stays alive until the next
// version is done (as readers keep it), with the construction's LinkMemo handed from each
// version to the next as VectorIndex's worker does. Wall time of the whole series, one core.
constexpr size_t kSealStep = IndexParams{}.seal_threshold;

void BM_HnswBuildBySeals(benchmark::State& state) {
  const Data& d = GetData();
  const HnswBuildOptions options{.m = kM, .ef_construction = kEfConstruction};
  double seconds = 0;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    std::unique_ptr<HnswGraph> graph;
    LinkMemo memo;
    for (size_t first = 0; first < BenchN(); first += kSealStep) {
      const size_t n = std::min(kSealStep, BenchN() - first);
      const float* x = d.base.data() + first * kDim;
      graph = std::move(graph == nullptr ? BuildHnsw(x, n, kDim, options, nullptr, &memo)
                                         : ExtendHnsw(*graph, x, n, options, nullptr, &memo))
                  .value();
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.SetIterationTime(seconds);
  }
  state.counters["vectors_per_s"] = static_cast<double>(BenchN()) / seconds;
}

// Single-query latency through FAISS's own IndexHNSW::search (1 OpenMP thread): the peer of
// BM_OurGraphWalk.
void BM_HnswSearch(benchmark::State& state) {
  faiss::IndexHNSWFlat& index = *Hnsw<false>().faiss_own;
  index.hnsw.efSearch = kEfSearch;
  omp_set_num_threads(1);
  const Data& d = GetData();
  float score[10];
  faiss::Index::idx_t label[10];
  size_t q = 0, correct = 0, total = 0;
  for (auto _ : state) {
    index.search(1, &d.queries[q * kDim], 10, score, label);
    correct += label[0] == d.exact_top10[q * kRecallK];
    ++total;
    q = (q + 1) % kQueries;
  }
  state.counters["recall@1"] = static_cast<double>(correct) / static_cast<double>(total);
  state.SetLabel("faiss-own");
}

// The queries of one kind and their exact top kRecallK: 0 fresh from the clusters, 1
// near-duplicates, 2 random directions.
struct QuerySet {
  const std::vector<float>& queries;
  const std::vector<int64_t>& exact;
};
QuerySet QueriesOfKind(int64_t kind) {
  const Data& d = GetData();
  if (kind == 0) return {d.queries, d.exact_top10};
  if (kind == 1) return {d.near_queries, d.near_exact_top10};
  return {d.far_queries, d.far_exact_top10};
}

// Our graph walked by our SearchHnsw (per-thread visited marks, prefetching, hnswlib
// stopping rule). Arg 0: fresh queries from the clusters; 1: near-duplicates; 2: random
// directions (Isotropic). Second arg: ef_search.
// Third: 1 = walk int8 codes (what HnswSegment does), 0 = the half-precision vectors.
void BM_OurGraphWalk(benchmark::State& state) {
  HnswGraph& graph = *Hnsw<true>().ours;
  graph.links.efSearch = static_cast<int>(state.range(1));
  const auto [queries, exact] = QueriesOfKind(state.range(0));
  const WalkOn on = state.range(2) == 1 ? WalkOn::kCodes : WalkOn::kHalf;
  float score[kRecallK];
  int64_t label[kRecallK];
  size_t q = 0, correct = 0, found = 0, total = 0;
  for (auto _ : state) {
    (void)SearchHnsw(graph, &queries[q * kDim], kRecallK, nullptr, score, label, on);
    const int64_t* want = &exact[q * kRecallK];
    correct += label[0] == want[0];
    for (size_t j = 0; j < kRecallK; ++j) found += std::count(want, want + kRecallK, label[j]);
    ++total;
    q = (q + 1) % kQueries;
  }
  state.counters["recall@1"] = static_cast<double>(correct) / static_cast<double>(total);
  state.counters["recall@10"] = static_cast<double>(found) / static_cast<double>(total * kRecallK);
}

// A cache lookup's walk: k = 1 above a threshold (WalkOptions::min_score), which walks a
// short beam first and the full ef only when that finds no answer above the threshold. Args:
// query kind (as BM_OurGraphWalk), ef_search, the short walk's ef, min_score in hundredths.
// Reports the share of queries answered as exact search answers them (its top 1 if that
// reaches the threshold, else nothing at or above it: what a cache's caller keeps; a walk
// ranks no node certainly below the threshold) and the share answered above the threshold.
void BM_ThresholdWalk(benchmark::State& state) {
  HnswGraph& graph = *Hnsw<true>().ours;
  graph.links.efSearch = static_cast<int>(state.range(1));
  const auto [queries, exact] = QueriesOfKind(state.range(0));
  const WalkOptions options{.min_score = static_cast<float>(state.range(3)) / 100.0f,
                            .short_ef = static_cast<size_t>(state.range(2))};
  const std::vector<float>& base = GetData().base;
  std::vector<bool> exact_reaches(kQueries);  // whether exact search's top 1 is an answer
  for (size_t i = 0; i < kQueries; ++i) {
    const float* top = &base[static_cast<size_t>(exact[i * kRecallK]) * kDim];
    exact_reaches[i] = InnerProduct(&queries[i * kDim], top, kDim) >= options.min_score;
  }
  std::vector<GraphHit> hits;
  size_t q = 0, correct = 0, answered = 0, total = 0;
  for (auto _ : state) {
    (void)WalkHnsw(graph, &queries[q * kDim], 1, options, hits);
    const bool answer = !hits.empty() && hits[0].score >= options.min_score;
    correct += exact_reaches[q] ? answer && hits[0].label == exact[q * kRecallK] : !answer;
    answered += answer;
    ++total;
    q = (q + 1) % kQueries;
  }
  state.counters["exact_answer"] = static_cast<double>(correct) / static_cast<double>(total);
  state.counters["answered"] = static_cast<double>(answered) / static_cast<double>(total);
}

// The whole VectorIndex (HNSW segments + exact mutable segment), k=5. Arg 0: fresh queries
// from the same clusters (hard); arg 1: near-duplicates of stored vectors (a cache's hits).
// Reports QPS per thread, p50/p99 latency, recall@1 against exact search, and how long
// adding N vectors and waiting for the background builds took (build_s).
void BM_VectorIndexSearch(benchmark::State& state) {
  static std::unique_ptr<VectorIndex> index;
  static double build_seconds = 0;
  const Data& d = GetData();
  if (state.thread_index() == 0 && !index) {
    IndexParams params;
    params.dimension = kDim;
    params.hnsw_m = kM;
    params.ef_construction = kEfConstruction;
    params.ef_search = kEfSearch;
    index = std::move(VectorIndex::Create(params)).value();
    auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < d.base.size() / kDim; ++i) {
      (void)index->Add(i, std::span<const float>(&d.base[i * kDim], kDim));
    }
    index->WaitForBackgroundWork();
    build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const bool near = state.range(0) == 1;
  const std::vector<float>& queries = near ? d.near_queries : d.queries;
  const std::vector<int64_t>& exact = near ? d.near_exact_top10 : d.exact_top10;
  std::vector<double> latencies;
  size_t q = static_cast<size_t>(state.thread_index()) * 97, correct = 0;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    auto hits = index->Search(std::span<const float>(&queries[q * kDim], kDim), 5, -1.0f);
    latencies.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
    correct += hits.ok() && !hits->empty() && (*hits)[0].slot == uint64_t(exact[q * kRecallK]);
    q = (q + 1) % kQueries;
  }
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) { return latencies[static_cast<size_t>(p * (latencies.size() - 1))]; };
  state.counters["p50_us"] = benchmark::Counter(pct(0.50), benchmark::Counter::kAvgThreads);
  state.counters["p99_us"] = benchmark::Counter(pct(0.99), benchmark::Counter::kAvgThreads);
  state.counters["recall@1"] = benchmark::Counter(static_cast<double>(correct) / latencies.size(),
                                                  benchmark::Counter::kAvgThreads);
  state.counters["qps"] =
      benchmark::Counter(static_cast<double>(latencies.size()), benchmark::Counter::kIsRate);
  state.counters["build_s"] = benchmark::Counter(build_seconds, benchmark::Counter::kAvgThreads);
  auto stats = index->Stats();
  state.SetLabel(std::string(near ? "near-dup, " : "fresh, ") +
                 std::to_string(stats.hnsw_segments) + " hnsw + " +
                 std::to_string(stats.flat_segments) + " flat segments");
}

// Exact search over all N vectors with our SIMD inner product: what HNSW has to beat.
void BM_FlatScan(benchmark::State& state) {
  const Data& d = GetData();
  size_t n = d.base.size() / kDim, q = 0;
  InnerProductFn ip = state.range(0) == 1 ? InnerProductFunction() : &InnerProductScalar;
  for (auto _ : state) {
    float best = -2;
    for (size_t i = 0; i < n; ++i)
      best = std::max(best, ip(&d.queries[q * kDim], &d.base[i * kDim], kDim));
    benchmark::DoNotOptimize(best);
    q = (q + 1) % kQueries;
  }
  state.SetLabel(state.range(0) == 1 ? std::string(InnerProductImplementationName()) : "scalar");
}

void BM_InnerProduct384(benchmark::State& state) {
  const Data& d = GetData();
  InnerProductFn ip = state.range(0) == 1 ? InnerProductFunction() : &InnerProductScalar;
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ip(&d.queries[0], &d.base[(i++ % 64) * kDim], kDim));
  }
  state.SetLabel(state.range(0) == 1 ? std::string(InnerProductImplementationName()) : "scalar");
}

BENCHMARK(BM_InnerProduct384)->Arg(0)->Arg(1);
BENCHMARK(BM_HnswBuild)->Arg(0)->Arg(1)->Iterations(1)->UseManualTime()->Unit(benchmark::kSecond);
BENCHMARK(BM_HnswBuildBySeals)->Iterations(1)->UseManualTime()->Unit(benchmark::kSecond);
BENCHMARK(BM_HnswSearch)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_OurGraphWalk)
    ->ArgsProduct({{0, 1, 2}, {16, 32, 48, 64}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ThresholdWalk)
    ->ArgsProduct({{0, 1, 2}, {48}, {8, 16, 48}, {90}})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_FlatScan)->Arg(1)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_VectorIndexSearch)
    ->Arg(0)
    ->Arg(1)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace sealcache::index

BENCHMARK_MAIN();
