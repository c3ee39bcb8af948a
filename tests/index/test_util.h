// Deterministic vector sets and exact search for the index tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "sealcache/index/inner_product.h"
#include "sealcache/index/vector_index.h"

namespace sealcache::index::testing {

// n row-major vectors of dimension d (not normalised).
struct VectorSet {
  size_t d = 0;
  std::vector<float> data;
  size_t size() const { return data.size() / d; }
  std::span<const float> row(size_t i) const { return {data.data() + i * d, d}; }
};

inline void NormalizeRow(float* v, size_t d) {
  double norm2 = 0;
  for (size_t i = 0; i < d; ++i) norm2 += static_cast<double>(v[i]) * v[i];
  float inv = static_cast<float>(1.0 / std::sqrt(norm2));
  for (size_t i = 0; i < d; ++i) v[i] *= inv;
}

// Isotropic Gaussian directions: no structure for a graph to exploit (the hard case).
inline VectorSet IsotropicVectors(size_t n, size_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  VectorSet set{d, std::vector<float>(n * d)};
  for (float& x : set.data) x = gauss(rng);
  for (size_t i = 0; i < n; ++i) NormalizeRow(set.data.data() + i * d, d);
  return set;
}

// Gaussian clusters around `clusters` random centres, noise `sigma` per coordinate (the
// centres have unit variance per coordinate): the shape of real embedding sets. Queries
// drawn with the same seed and a different `stream` come from the same centres.
inline VectorSet ClusteredVectors(size_t n, size_t d, uint32_t seed, uint32_t stream = 0,
                                  size_t clusters = 1000, float sigma = 1.0f) {
  std::mt19937 centre_rng(seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> centres(clusters * d);
  for (float& x : centres) x = gauss(centre_rng);
  std::mt19937 rng(seed * 7919u + stream + 1);
  std::uniform_int_distribution<size_t> pick(0, clusters - 1);
  VectorSet set{d, std::vector<float>(n * d)};
  for (size_t i = 0; i < n; ++i) {
    size_t c = pick(rng);
    for (size_t j = 0; j < d; ++j) set.data[i * d + j] = centres[c * d + j] + sigma * gauss(rng);
    NormalizeRow(set.data.data() + i * d, d);
  }
  return set;
}

// Exact top-k slots (slot = row number) by cosine, for unit-length rows and query.
inline std::vector<uint64_t> ExactTopK(const VectorSet& base, std::span<const float> query,
                                       size_t k) {
  std::vector<float> q(query.begin(), query.end());
  NormalizeRow(q.data(), q.size());
  std::vector<std::pair<float, uint64_t>> scored(base.size());
  for (size_t i = 0; i < base.size(); ++i) {
    scored[i] = {-InnerProductScalar(q.data(), base.data.data() + i * base.d, base.d), i};
  }
  std::partial_sort(scored.begin(), scored.begin() + static_cast<ptrdiff_t>(k), scored.end());
  std::vector<uint64_t> out;
  for (size_t i = 0; i < k; ++i) out.push_back(scored[i].second);
  return out;
}

inline std::unique_ptr<VectorIndex> MakeIndex(const IndexParams& params) {
  auto index = VectorIndex::Create(params);
  EXPECT_TRUE(index.ok()) << index.status().ToString();
  return std::move(index).value();
}

// Adds row i of `set` under slot i, for rows [begin, end).
inline void AddRows(VectorIndex& index, const VectorSet& set, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    Status s = index.Add(i, set.row(i));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
}

inline std::vector<uint64_t> Slots(const std::vector<Hit>& hits) {
  std::vector<uint64_t> out;
  for (const Hit& h : hits) out.push_back(h.slot);
  return out;
}

inline std::vector<Hit> SearchOrDie(const VectorIndex& index, std::span<const float> query,
                                    size_t k, const Filter* filter = nullptr,
                                    float min_score = -2.0f) {
  auto hits = index.Search(query, k, min_score, filter);
  EXPECT_TRUE(hits.ok()) << hits.status().ToString();
  return hits.ok() ? *hits : std::vector<Hit>{};
}

}  // namespace sealcache::index::testing
