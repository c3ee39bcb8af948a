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
constexpr int kM = IndexParams{}.hnsw_m;
constexpr int kEfConstruction = IndexParams{}.ef_construction;
constexpr int kEfSearch = IndexParams{}.ef_search;

size_t BenchN() {
  const char* env = std::getenv("SEALCACHE_BENCH_N");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 10000;
}

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
  std::vector<float> base, queries;
  std::vector<int64_t> exact_top1;
};

const Data& GetData() {
  static const Data data = [] {
    Data d{Clustered(BenchN(), 0), Clustered(kQueries, 1), {}};
    size_t n = d.base.size() / kDim;
    for (size_t q = 0; q < kQueries; ++q) {
      int64_t best = 0;
      float best_score = -2;
      for (size_t i = 0; i < n; ++i) {
        float s = InnerProduct(&d.queries[q * kDim], &d.base[i * kDim], kDim);
        if (s > best_score) best_score = s, best = static_cast<int64_t>(i);
      }
      d.exact_top1.push_back(best);
    }
    return d;
  }();
  return data;
}

// Built once per distance implementation and shared by the search benchmarks.
faiss::IndexHNSWFlat& Hnsw(bool simd, double* build_seconds = nullptr) {
  static std::map<bool, std::unique_ptr<faiss::IndexHNSWFlat>> built;
  static std::map<bool, double> seconds;
  static std::mutex mu;
  std::lock_guard lock(mu);
  if (!built.contains(simd)) {
    const Data& d = GetData();
    omp_set_num_threads(1);
    auto start = std::chrono::steady_clock::now();
    HnswBuildOptions options{.m = kM, .ef_construction = kEfConstruction, .simd = simd};
    built[simd] =
        std::move(BuildHnsw(d.base.data(), d.base.size() / kDim, kDim, options, nullptr)).value();
    seconds[simd] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  if (build_seconds != nullptr) *build_seconds = seconds[simd];
  return *built[simd];
}

// arg 0: FAISS's own IndexHNSWFlat (Debian: scalar distances); arg 1: ours (AVX2/FMA).
void BM_HnswBuild(benchmark::State& state) {
  bool simd = state.range(0) == 1;
  double seconds = 0;
  for (auto _ : state) {
    Hnsw(simd, &seconds);
    state.SetIterationTime(seconds);
  }
  state.counters["vectors_per_s"] = static_cast<double>(BenchN()) / seconds;
  state.SetLabel(simd ? std::string(InnerProductImplementationName()) : "faiss-own");
}

// Single-query latency through FAISS's IndexHNSW::search (1 OpenMP thread), same graph
// parameters; only the distance code differs.
void BM_HnswSearch(benchmark::State& state) {
  bool simd = state.range(0) == 1;
  faiss::IndexHNSWFlat& index = Hnsw(simd);
  index.hnsw.efSearch = kEfSearch;
  omp_set_num_threads(1);
  const Data& d = GetData();
  float score[10];
  faiss::Index::idx_t label[10];
  size_t q = 0, correct = 0, total = 0;
  for (auto _ : state) {
    index.search(1, &d.queries[q * kDim], 10, score, label);
    correct += label[0] == d.exact_top1[q];
    ++total;
    q = (q + 1) % kQueries;
  }
  state.counters["recall@1"] = static_cast<double>(correct) / static_cast<double>(total);
  state.SetLabel(simd ? std::string(InnerProductImplementationName()) : "faiss-own");
}

// The whole VectorIndex (default params: HNSW segments + exact mutable segment), k=5.
// Reports QPS per thread, p50/p99 latency and recall@1 against exact search.
void BM_VectorIndexSearch(benchmark::State& state) {
  static std::unique_ptr<VectorIndex> index;
  const Data& d = GetData();
  if (state.thread_index() == 0 && !index) {
    IndexParams params;
    params.dimension = kDim;
    index = std::move(VectorIndex::Create(params)).value();
    for (size_t i = 0; i < d.base.size() / kDim; ++i) {
      (void)index->Add(i, std::span<const float>(&d.base[i * kDim], kDim));
    }
    index->WaitForBackgroundWork();
  }
  std::vector<double> latencies;
  size_t q = static_cast<size_t>(state.thread_index()) * 97, correct = 0;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    auto hits = index->Search(std::span<const float>(&d.queries[q * kDim], kDim), 5, -1.0f);
    latencies.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
    correct += hits.ok() && !hits->empty() && (*hits)[0].slot == uint64_t(d.exact_top1[q]);
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
  auto stats = index->Stats();
  state.SetLabel(std::to_string(stats.hnsw_segments) + " hnsw + " +
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
BENCHMARK(BM_HnswSearch)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_FlatScan)->Arg(1)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_VectorIndexSearch)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace sealcache::index

BENCHMARK_MAIN();
