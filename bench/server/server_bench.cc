// Purpose: what the server's per-org slot table costs the requests that hold the org's lock:
// the longest single Set while an org grows slot by slot (a resize's share included: every
// lookup of the org waits for it), and a lookup's finds of live slots, in a table that is
// not resizing and in one that is.
//   build/bench/server/server_bench
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <vector>

#include "slot_table.h"

namespace sealcache::server::internal {
namespace {

SlotInfo InfoOf(uint64_t slot) {
  SlotInfo info;
  info.digest[0] = static_cast<uint8_t>(slot);
  info.expires_ms = static_cast<int64_t>(slot);
  return info;
}

// Grows a table to range(0) entries, one Set per new slot, as an org's puts issue them.
// Reports the mean Set and the longest one.
void BM_SlotTableGrow(benchmark::State& state) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  double longest_ms = 0.0;
  for (auto _ : state) {
    SlotTable table;
    for (uint64_t s = 0; s < n; ++s) {
      const auto start = std::chrono::steady_clock::now();
      table.Set(s, InfoOf(s));
      const std::chrono::duration<double, std::milli> took =
          std::chrono::steady_clock::now() - start;
      longest_ms = std::max(longest_ms, took.count());
    }
    benchmark::DoNotOptimize(table.size());
  }
  state.counters["longest_set_ms"] = longest_ms;
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
}
BENCHMARK(BM_SlotTableGrow)
    ->Arg(1 << 20)
    ->Arg(1 << 21)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

// Finds of random live slots in a table of range(0) entries (a lookup asks one per candidate
// its walk keeps). Arg 1 = 1: just after the write that started a growth, so nearly every
// entry is still in the old table and a find looks in both.
void BM_SlotTableFind(benchmark::State& state) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  const bool resizing = state.range(1) == 1;
  SlotTable table;
  uint64_t next = 0;
  for (; next < n; ++next) table.Set(next, InfoOf(next));
  if (resizing) {
    // The next growth starts at 13/16 of the capacity.
    while (!table.resizing()) table.Set(next, InfoOf(next)), ++next;
  } else {
    while (table.resizing()) table.Set(next, InfoOf(next)), ++next;
  }
  std::mt19937_64 rng(3);
  std::vector<uint64_t> probes(1 << 16);
  for (uint64_t& p : probes) p = rng() % next;
  size_t i = 0;
  int64_t found = 0;
  for (auto _ : state) {
    const SlotInfo* info = table.Find(probes[i++ & (probes.size() - 1)]);
    found += info != nullptr ? info->expires_ms : 0;
  }
  benchmark::DoNotOptimize(found);
  state.SetLabel(resizing ? "resizing" : "settled");
}
BENCHMARK(BM_SlotTableFind)->Args({1 << 20, 0})->Args({1 << 20, 1});

}  // namespace
}  // namespace sealcache::server::internal

BENCHMARK_MAIN();
