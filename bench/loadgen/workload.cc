#include "workload.h"

#include <cmath>
#include <filesystem>
#include <fstream>

namespace sealcache::bench {
namespace {

constexpr size_t kCorpusBytes = 8u << 20;

// splitmix64 over the combined inputs: a stable seed for every (what, org, entry, salt).
uint64_t Mix(uint64_t a, uint64_t b, uint64_t c = 0, uint64_t d = 0) {
  uint64_t x = a;
  for (uint64_t v : {b, c, d}) {
    x += 0x9E3779B97F4A7C15ull + v;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
  }
  return x;
}

std::vector<float> Gaussian(uint32_t dim, uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0, scale);
  std::vector<float> v(dim);
  for (auto& x : v) x = n(rng);
  return v;
}

std::string LoadCorpus() {
  std::string text;
  for (const char* dir : {"/usr/share/common-licenses", "/usr/share/doc"}) {
    std::error_code ec;
    for (auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
      if (text.size() > kCorpusBytes) break;
      if (!e.is_regular_file(ec)) continue;
      const auto name = e.path().filename().string();
      if (name != "copyright" && e.path().parent_path() != dir) continue;
      std::ifstream in(e.path());
      text.append(std::istreambuf_iterator<char>(in), {});
    }
  }
  while (text.size() < (64u << 10)) text += "the quick brown fox jumps over the lazy dog. ";
  return text;
}

}  // namespace

float Dot(std::span<const float> a, std::span<const float> b) {
  float s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

void Normalise(std::vector<float>& v) {
  float n = std::sqrt(Dot(v, v));
  if (n > 0) {
    for (auto& x : v) x /= n;
  }
}

Workload::Workload(const WorkloadOptions& o) : o_(o), corpus_(LoadCorpus()) {}

Digest Workload::DigestOf(uint32_t org, uint32_t entry) const {
  Digest d{};
  std::mt19937_64 rng(Mix(o_.seed, org, entry));
  for (size_t i = 0; i < d.size(); i += 8) {
    uint64_t x = rng();
    for (size_t k = 0; k < 8; ++k) d[i + k] = static_cast<uint8_t>(x >> (8 * k));
  }
  return d;
}

std::vector<float> Workload::Centre(uint32_t org, uint32_t c) const {
  auto v = Gaussian(o_.dim, Mix(o_.seed, 1000 + org, c), 1.0f);
  Normalise(v);
  return v;
}

std::vector<float> Workload::EntryVector(uint32_t org, uint32_t entry) const {
  auto v = Centre(org, static_cast<uint32_t>(Mix(o_.seed, org, entry, 7) % o_.centres));
  auto noise = Gaussian(o_.dim, Mix(o_.seed, org, entry, 9), o_.entry_noise);
  for (size_t i = 0; i < v.size(); ++i) v[i] += noise[i];
  Normalise(v);
  return v;
}

std::string_view Workload::Payload(uint32_t org, uint32_t entry) const {
  size_t off = Mix(o_.seed, org, entry, 3) % (corpus_.size() - o_.payload_bytes);
  return std::string_view(corpus_).substr(off, o_.payload_bytes);
}

std::vector<float> Workload::NearDuplicate(uint32_t org, uint32_t entry, uint64_t salt) const {
  auto v = EntryVector(org, entry);
  auto noise = Gaussian(o_.dim, Mix(o_.seed, entry, salt, 11), o_.query_noise);
  for (size_t i = 0; i < v.size(); ++i) v[i] += noise[i];
  Normalise(v);
  return v;
}

std::vector<float> Workload::Fresh(uint32_t org, uint64_t salt) const {
  auto v = Gaussian(o_.dim, Mix(o_.seed, 5000 + org, salt, 13), 1.0f);
  Normalise(v);
  return v;
}

}  // namespace sealcache::bench
