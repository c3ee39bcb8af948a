// Counters and latency histograms rendered in the Prometheus text format. Private.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace sealcache::server::internal {

class LatencyHistogram {
 public:
  static constexpr std::array<double, 12> kBucketsSeconds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};

  void Observe(double seconds) {
    size_t i = 0;
    while (i < kBucketsSeconds.size() && seconds > kBucketsSeconds[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
  }

  // Appends `name{labels,le=...}` lines (cumulative), _sum and _count.
  void Render(std::string& out, const std::string& name, const std::string& labels) const {
    uint64_t cumulative = 0;
    auto label = [&](const std::string& le) {
      return "{" + labels + (labels.empty() ? "" : ",") + "le=\"" + le + "\"}";
    };
    for (size_t i = 0; i < kBucketsSeconds.size(); ++i) {
      cumulative += buckets_[i].load(std::memory_order_relaxed);
      out += name + "_bucket" + label(Format(kBucketsSeconds[i])) + " " +
             std::to_string(cumulative) + "\n";
    }
    cumulative += buckets_[kBucketsSeconds.size()].load(std::memory_order_relaxed);
    out += name + "_bucket" + label("+Inf") + " " + std::to_string(cumulative) + "\n";
    std::string l = labels.empty() ? "" : "{" + labels + "}";
    out +=
        name + "_sum" + l + " " + Format(sum_micros_.load(std::memory_order_relaxed) / 1e6) + "\n";
    out += name + "_count" + l + " " + std::to_string(cumulative) + "\n";
  }

 private:
  static std::string Format(double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", v);
    return buf;
  }
  std::array<std::atomic<uint64_t>, kBucketsSeconds.size() + 1> buckets_{};
  std::atomic<uint64_t> sum_micros_{0};
};

struct OrgMetrics {
  std::atomic<uint64_t> puts{0}, gets{0}, get_hits{0}, get_misses{0}, lookups{0}, lookup_hits{0},
      lookup_misses{0}, deletes{0}, errors{0};
  // Requests of the org answered CORRUPTION (damaged or undecryptable stored data); part of
  // the org's decrypt_failures with the store's failed file opens.
  std::atomic<uint64_t> corrupt_answers{0};
  LatencyHistogram put_latency, get_latency, lookup_latency;
};

}  // namespace sealcache::server::internal
