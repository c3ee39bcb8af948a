// Purpose: what encryption costs the storage engine: fill, full compaction and random reads
// on the same Store code path, in one run: plaintext (insecure_plaintext_for_benchmarks),
// format v2 (authenticated chunks, the default) and format v1 (AES-256-CTR,
// legacy_v1_files_for_benchmarks). Compaction also reports the SST bytes on disk. And what a
// capacity limit costs a put: below it, and at it (every put evicts). And what writing hit
// counts costs (RecordHits), with the entries in the table of hot values and without. And
// what the capacity tracker's bookkeeping costs a put that replaces an entry
// (CapacityReplace), and a put of a new key while an org grows (CapacityGrow: the longest one
// says how long the org's other writes wait on it).
//
// Times are process CPU seconds (all threads, so RocksDB's flush and compaction threads
// count), reported through manual timing: compare the v2/plain and v1/plain ratios of one run.
//   build/bench/storage/storage_bench [--benchmark_repetitions=3]
//   SEALCACHE_BENCH_ENTRIES=200000 for the 200k-entry figures (default 20000).
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "capacity.h"
#include "sealcache/crypto/random.h"
#include "sealcache/storage/store.h"

namespace sealcache::storage {
namespace {

constexpr uint32_t kDim = 384;
constexpr size_t kPayloadBytes = 2048;
constexpr int kGetsPerIteration = 2000;
constexpr size_t kReadCacheBytes = 8u << 20;  // small: most reads go through the file system

size_t EntryCount() {
  const char* n = std::getenv("SEALCACHE_BENCH_ENTRIES");
  return n != nullptr ? std::strtoull(n, nullptr, 10) : 20000;
}

double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

// Text-like payloads: slices of the licence and copyright texts every Debian system has.
const std::string& Corpus() {
  static const std::string corpus = [] {
    std::string text;
    for (const char* dir : {"/usr/share/common-licenses", "/usr/share/doc"}) {
      std::error_code ec;
      for (auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
        if (text.size() > (8u << 20)) break;
        auto name = e.path().filename().string();
        if (!e.is_regular_file() || (name != "copyright" && e.path().parent_path() != dir)) {
          continue;
        }
        std::ifstream in(e.path());
        text.append(std::istreambuf_iterator<char>(in), {});
      }
    }
    while (text.size() < 4 * kPayloadBytes) text += "lorem ipsum dolor sit amet ";
    return text;
  }();
  return corpus;
}

Digest DigestOf(uint64_t i) {
  Digest d{};
  std::mt19937_64 rng(i + 1);
  for (auto& b : d) b = static_cast<uint8_t>(rng());
  return d;
}

struct BenchStore {
  std::string dir;
  std::unique_ptr<Store> store;
  ~BenchStore() {
    store.reset();
    std::filesystem::remove_all(dir);
  }
};

// The benchmark argument: which file format the store writes.
enum Mode : int64_t { kPlain = 0, kV2 = 1, kV1 = 2 };
const char* ModeName(int64_t mode) { return mode == kPlain ? "plain" : mode == kV2 ? "v2" : "v1"; }

std::unique_ptr<BenchStore> OpenFresh(int64_t mode, size_t block_cache, size_t value_cache = 0) {
  auto b = std::make_unique<BenchStore>();
  b->dir = (std::filesystem::temp_directory_path() / "sealcache-bench-XXXXXX").string();
  if (mkdtemp(b->dir.data()) == nullptr) std::abort();
  StoreOptions o;
  o.data_dir = b->dir;
  o.reaper_period_ms = 0;
  o.block_cache_bytes = block_cache;
  // No table of hot values unless asked: it would answer repeated random Gets above the
  // files, and these benchmarks measure what reading the files costs in each format.
  o.value_cache_bytes = value_cache;
  o.insecure_plaintext_for_benchmarks = mode == kPlain;
  o.legacy_v1_files_for_benchmarks = mode == kV1;
  static const crypto::SecretBytes master = std::move(crypto::RandomSecret(32)).value();
  b->store = std::move(Store::Open(o, master)).value();
  OrgConfig c;
  c.dimension = kDim;
  if (!b->store->CreateOrg("bench", c).ok()) std::abort();
  return b;
}

// Puts entries first .. first + n - 1.
void PutRange(Store& store, size_t first, size_t n) {
  const std::string& text = Corpus();
  std::mt19937 rng(42 + first);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> vec(kDim);
  for (size_t i = first; i < first + n; ++i) {
    for (auto& x : vec) x = normal(rng);
    size_t off = (i * 7919) % (text.size() - kPayloadBytes);
    PutRequest r;
    r.digest = DigestOf(i);
    r.payload = {reinterpret_cast<const uint8_t*>(text.data() + off), kPayloadBytes};
    r.vector = vec;
    r.ttl_ms = 86'400'000;
    if (!store.Put("bench", r).ok()) std::abort();
  }
}

void Fill(Store& store, size_t n) {
  PutRange(store, 0, n);
  if (!store.Flush().ok()) std::abort();
}

// Bytes of the table files on disk (both families), headers, nonces and tags included.
double SstBytes(const std::string& dir) {
  uint64_t total = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".sst") total += e.file_size();
  }
  return static_cast<double>(total);
}

void BM_Fill(benchmark::State& state) {
  const int64_t mode = state.range(0);
  const size_t n = EntryCount();
  for (auto _ : state) {
    auto b = OpenFresh(mode, 256u << 20);
    double start = ProcessCpuSeconds();
    Fill(*b->store, n);
    state.SetIterationTime(ProcessCpuSeconds() - start);
  }
  state.SetLabel(ModeName(mode));
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_Compaction(benchmark::State& state) {
  const int64_t mode = state.range(0);
  double sst_bytes = 0;
  for (auto _ : state) {
    auto b = OpenFresh(mode, 256u << 20);
    Fill(*b->store, EntryCount());
    double start = ProcessCpuSeconds();
    if (!b->store->CompactOrg("bench").ok()) std::abort();
    state.SetIterationTime(ProcessCpuSeconds() - start);
    sst_bytes = SstBytes(b->dir);
  }
  state.counters["sst_bytes"] = sst_bytes;
  state.SetLabel(ModeName(mode));
}

void BM_RandomGet(benchmark::State& state) {
  const int64_t mode = state.range(0);
  auto b = OpenFresh(mode, kReadCacheBytes);
  const size_t n = EntryCount();
  Fill(*b->store, n);
  if (!b->store->CompactOrg("bench").ok()) std::abort();
  // The keys are derived before timing: seeding a generator per key cost ~1 us, about a
  // tenth of a Get, and was counted as the Get's time in every mode.
  std::vector<Digest> keys(n);
  for (size_t i = 0; i < n; ++i) keys[i] = DigestOf(i);
  std::mt19937_64 rng(7);
  for (auto _ : state) {
    double start = ProcessCpuSeconds();
    for (int i = 0; i < kGetsPerIteration; ++i) {
      auto e = b->store->Get("bench", keys[rng() % n]);
      if (!e.ok()) std::abort();
      benchmark::DoNotOptimize(e);
    }
    state.SetIterationTime(ProcessCpuSeconds() - start);
  }
  state.SetLabel(ModeName(mode));
  state.SetItemsProcessed(state.iterations() * kGetsPerIteration);
}

// What a capacity limit costs a put (format v2): arg 0, an org below its max_entries (the
// eviction order is kept, nothing goes); arg 1, an org at it, so every put evicts the least
// recently used entry in its own write. Both prefill the same entries, then time as many puts.
void BM_PutAtCapacity(benchmark::State& state) {
  const bool full = state.range(0) == 1;
  const size_t n = EntryCount() / 2;
  for (auto _ : state) {
    auto b = OpenFresh(kV2, 256u << 20);
    OrgLimits limits;
    limits.max_entries = full ? n : 4 * n;
    limits.eviction_policy = "lru";
    if (!b->store->SetOrgLimits("bench", limits).ok()) std::abort();
    Fill(*b->store, n);
    double start = ProcessCpuSeconds();
    PutRange(*b->store, n, n);
    if (!b->store->Flush().ok()) std::abort();
    state.SetIterationTime(ProcessCpuSeconds() - start);
    if (b->store->Stats("bench")->live_entries != (full ? n : 2 * n)) std::abort();
  }
  state.SetLabel(full ? "at limit (every put evicts)" : "below limit");
  state.SetItemsProcessed(state.iterations() * n);
}

// What writing hit counts costs per entry hit (the server's periodic flush of the hits it
// counted, ServiceOptions::hit_flush_period_ms), format v2: every entry of the store hit
// since the last flush. Arg 0: no table of hot values; arg 1: a table holding every entry
// (its values and meta records, offered by the puts).
void BM_RecordHits(benchmark::State& state) {
  const bool cached = state.range(0) == 1;
  const size_t n = EntryCount();
  auto b = OpenFresh(kV2, 256u << 20, cached ? size_t{1} << 30 : 0);
  Fill(*b->store, n);
  std::vector<HitUpdate> hits(n);
  int64_t now_ms = 1;
  for (auto _ : state) {
    ++now_ms;
    for (size_t i = 0; i < n; ++i) hits[i] = {DigestOf(i), 1, now_ms};
    double start = ProcessCpuSeconds();
    if (!b->store->RecordHits("bench", hits).ok()) std::abort();
    state.SetIterationTime(ProcessCpuSeconds() - start);
  }
  if (b->store->Get("bench", DigestOf(0))->meta.hits != static_cast<uint64_t>(state.iterations()))
    std::abort();
  state.SetLabel(cached ? "entries in the table of hot values" : "no table of hot values");
  state.SetItemsProcessed(state.iterations() * n);
}

// The capacity tracker's bookkeeping for a put that replaces one of the org's entries, as
// SETs of existing keys with the default TTL do: the entry leaves the orders and enters them
// again with a later expiry. 100,000 entries; arg 0: no limit (the expiry order only), arg
// 1: a limit with the lru policy (the eviction order too).
void BM_CapacityReplace(benchmark::State& state) {
  constexpr size_t kEntries = 100000;
  constexpr int64_t kTtlMs = 3600 * 1000;
  internal::CapacityTracker tracker(EvictionPolicy::kLru);
  tracker.Configure(EvictionPolicy::kLru, state.range(0) == 1);
  EntryMeta meta;
  int64_t now_ms = 1;
  for (size_t i = 0; i < kEntries; ++i) {
    meta.digest = DigestOf(i);
    meta.created_ms = now_ms;
    meta.expires_ms = now_ms + kTtlMs;
    tracker.Upsert(meta, kPayloadBytes);
    if (i % 16 == 0) ++now_ms;
  }
  std::mt19937_64 rng(7);
  std::vector<Digest> keys(1u << 18);  // the entries replaced, in turn
  for (Digest& d : keys) d = DigestOf(rng() % kEntries);
  size_t next = 0;
  for (auto _ : state) {
    meta.digest = keys[next++ % keys.size()];
    meta.created_ms = now_ms;
    meta.expires_ms = now_ms + kTtlMs;
    tracker.Upsert(meta, kPayloadBytes);
    if (next % 16 == 0) ++now_ms;  // ~16 puts per millisecond
  }
  if (tracker.entries() != kEntries) std::abort();
  state.SetLabel(state.range(0) == 1 ? "lru limit" : "no limit");
}

BENCHMARK(BM_CapacityReplace)->Arg(0)->Arg(1);

// The capacity tracker while an org grows to range(0) entries, one put of a new key at a
// time: the mean Upsert and the longest one (its map's rehash included; every write of the
// org waits on the tracker's lock meanwhile).
void BM_CapacityGrow(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::vector<Digest> digests(n);
  for (size_t i = 0; i < n; ++i) digests[i] = DigestOf(i);
  double longest_ms = 0.0;
  for (auto _ : state) {
    internal::CapacityTracker tracker(EvictionPolicy::kLru);
    EntryMeta meta;
    meta.created_ms = 1;
    meta.expires_ms = 3600 * 1000;
    for (size_t i = 0; i < n; ++i) {
      meta.digest = digests[i];
      const auto start = std::chrono::steady_clock::now();
      tracker.Upsert(meta, kPayloadBytes);
      const std::chrono::duration<double, std::milli> took =
          std::chrono::steady_clock::now() - start;
      longest_ms = std::max(longest_ms, took.count());
    }
    if (tracker.entries() != n) std::abort();
  }
  state.counters["longest_upsert_ms"] = longest_ms;
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
}
BENCHMARK(BM_CapacityGrow)->Arg(1 << 20)->Unit(benchmark::kMillisecond)->Iterations(2);

BENCHMARK(BM_RecordHits)
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(10);

BENCHMARK(BM_PutAtCapacity)
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

// Arg 0 = plain, 1 = v2, 2 = v1 (Mode); each triple runs back to back in one process.
BENCHMARK(BM_Fill)
    ->Arg(kPlain)
    ->Arg(kV2)
    ->Arg(kV1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK(BM_Compaction)
    ->Arg(kPlain)
    ->Arg(kV2)
    ->Arg(kV1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK(BM_RandomGet)
    ->Arg(kPlain)
    ->Arg(kV2)
    ->Arg(kV1)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(2.0);

}  // namespace
}  // namespace sealcache::storage

BENCHMARK_MAIN();
