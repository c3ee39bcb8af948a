// The deterministic workload of sealcache-bench: clustered embeddings, text-like payloads,
// near-duplicate and fresh queries, all derived from one seed.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace sealcache::bench {

using Digest = std::array<uint8_t, 32>;

struct WorkloadOptions {
  uint32_t orgs = 4;
  uint32_t entries = 100'000;  // per org
  uint32_t dim = 384;
  uint32_t centres = 1000;  // per org
  size_t payload_bytes = 2048;
  uint64_t seed = 42;
  // Noise of a stored vector around its centre, and of a near-duplicate query around its
  // stored source (per coordinate, before normalising).
  float entry_noise = 0.08f;
  float query_noise = 0.012f;
};

class Workload {
 public:
  explicit Workload(const WorkloadOptions& o);

  const WorkloadOptions& options() const { return o_; }
  std::string OrgName(uint32_t org) const { return "bench" + std::to_string(org); }
  Digest DigestOf(uint32_t org, uint32_t entry) const;
  // Stored vector of an entry (normalised).
  std::vector<float> EntryVector(uint32_t org, uint32_t entry) const;
  // ~payload_bytes of text sliced from files under /usr/share.
  std::string_view Payload(uint32_t org, uint32_t entry) const;
  // A query near `entry`'s vector (cosine >= 0.95 to it).
  std::vector<float> NearDuplicate(uint32_t org, uint32_t entry, uint64_t salt) const;
  // A query in a fresh direction (no stored vector is near it).
  std::vector<float> Fresh(uint32_t org, uint64_t salt) const;

 private:
  std::vector<float> Centre(uint32_t org, uint32_t c) const;
  WorkloadOptions o_;
  std::string corpus_;
};

float Dot(std::span<const float> a, std::span<const float> b);
void Normalise(std::vector<float>& v);

}  // namespace sealcache::bench
