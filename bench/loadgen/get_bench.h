// Exact Gets over the native protocol driven the way redis-benchmark drives GETs, so the two
// can be compared on one machine: one thread holds every connection, each connection sends
// `pipeline` GetEntryRequests at once and waits for all of their responses before it sends
// the next ones, keys uniform at random. (sealcache-bench's rounds instead run a thread per
// connection with one request at a time: on 2 shared cores their context switches, not the
// server, decide how many Gets a second it measures.)
#pragma once

#include <cstdint>
#include <string>

#include "workload.h"

namespace sealcache::bench {

struct GetBenchOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 7420;
  std::string token;  // of the org whose entries are read
  uint32_t connections = 16;
  uint32_t pipeline = 1;
  uint64_t requests = 200'000;
  uint32_t keys = 100'000;  // entries 0..keys-1 of the workload's org 0
  uint64_t seed = 1;
};

struct GetBenchResult {
  double seconds = 0;
  uint64_t hits = 0;    // answered with the entry's payload, of the right size
  uint64_t misses = 0;  // NOT_FOUND
  uint64_t errors = 0;  // any other answer, or a payload of another size; a lost connection
  double rate() const { return seconds > 0 ? (hits + misses) / seconds : 0; }
};

// Runs one pass of `requests` Gets; the expected payloads are `w`'s for org 0.
GetBenchResult RunGetBench(const GetBenchOptions& o, const Workload& w);

}  // namespace sealcache::bench
