// Recall against exact search on 50k x 384 vectors, with the index's sealing pipeline
// (several HNSW segments plus the exact mutable segment), on clustered data (the shape of
// real embeddings) and on isotropic random data (the hard case for any graph index).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <set>

#include "sealcache/index/vector_index.h"
#include "test_util.h"

namespace sealcache::index {
namespace {

using testing::ExactTopK;
using testing::MakeIndex;
using testing::VectorSet;

constexpr size_t kVectors = 50000;
constexpr size_t kDimension = 384;
constexpr size_t kQueries = 200;

struct Recall {
  double at1 = 0;
  double at10 = 0;
};

Recall MeasureRecall(const IndexParams& params, const VectorSet& base, const VectorSet& queries) {
  auto index = MakeIndex(params);
  auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < base.size(); ++i) EXPECT_TRUE(index->Add(i, base.row(i)).ok());
  index->WaitForBackgroundWork();
  double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto stats = index->Stats();
  EXPECT_GT(stats.hnsw_segments, 0u);

  size_t hits1 = 0, hits10 = 0;
  start = std::chrono::steady_clock::now();
  for (size_t q = 0; q < queries.size(); ++q) {
    auto result = index->Search(queries.row(q), 10, -1.0f);
    EXPECT_TRUE(result.ok());
    if (!result.ok() || result->size() != 10) continue;
    std::vector<uint64_t> exact = ExactTopK(base, queries.row(q), 10);
    hits1 += (*result)[0].slot == exact[0];
    std::set<uint64_t> truth(exact.begin(), exact.end());
    for (const Hit& h : *result) hits10 += truth.contains(h.slot);
  }
  double search_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Recall r{static_cast<double>(hits1) / queries.size(),
           static_cast<double>(hits10) / (10.0 * queries.size())};
  std::printf(
      "[ recall ] hnsw=%zu flat=%zu ef_search=%d build+seal %.1fs, %zu queries %.1fs "
      "(incl. exact), recall@1 %.3f recall@10 %.3f\n",
      stats.hnsw_segments, stats.flat_segments, params.ef_search, build_s, queries.size(), search_s,
      r.at1, r.at10);
  return r;
}

TEST(VectorIndexRecall, ClusteredDataMeetsTargetsWithDefaultParams) {
  IndexParams params;
  params.dimension = kDimension;
  VectorSet base = testing::ClusteredVectors(kVectors, kDimension, 101);
  VectorSet queries = testing::ClusteredVectors(kQueries, kDimension, 101, /*stream=*/1);
  Recall r = MeasureRecall(params, base, queries);
  EXPECT_GE(r.at1, 0.99);
  EXPECT_GE(r.at10, 0.95);
}

// Isotropic 384-d directions have no low-dimensional structure: HNSW needs a much longer
// candidate list than on embeddings, and does better on several small graphs than on one
// large one (measured, one 48k graph: recall@1 0.980 at ef_search 768 and a 4x longer
// build). See kHardDataEfSearch.
TEST(VectorIndexRecall, IsotropicDataMeetsTargetsWithHardDataParams) {
  IndexParams params;
  params.dimension = kDimension;
  params.hnsw_m = 32;
  params.ef_construction = 128;
  params.ef_search = kHardDataEfSearch;
  params.seal_threshold = 16384;
  params.max_segment_size = params.seal_threshold;
  VectorSet base = testing::IsotropicVectors(kVectors, kDimension, 102);
  VectorSet queries = testing::IsotropicVectors(kQueries, kDimension, 103);
  Recall r = MeasureRecall(params, base, queries);
  EXPECT_GE(r.at1, 0.99);
  EXPECT_GE(r.at10, 0.95);
}

}  // namespace
}  // namespace sealcache::index
