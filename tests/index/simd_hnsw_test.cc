#include "simd_hnsw.h"

#include <faiss/impl/DistanceComputer.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <memory>

#include "hnsw_segment.h"
#include "sealcache/index/inner_product.h"
#include "test_util.h"

namespace sealcache::index {
namespace {

using testing::IsotropicVectors;
using testing::VectorSet;

// One OpenMP thread, as in the index's background thread: deterministic graphs, and no
// uninstrumented libgomp threads to confuse TSan.
std::unique_ptr<faiss::IndexHNSWFlat> Build(const VectorSet& set, bool simd) {
  omp_set_num_threads(1);
  HnswBuildOptions options{.m = 16, .ef_construction = 64, .simd = simd};
  auto built = BuildHnsw(set.data.data(), set.size(), set.d, options, nullptr);
  EXPECT_TRUE(built.ok()) << built.status().ToString();
  return std::move(built).value();
}

TEST(SimdHnsw, GraphDistancesComeFromOurInnerProduct) {
  VectorSet set = IsotropicVectors(300, 48, 1);
  auto index = Build(set, /*simd=*/true);
  ASSERT_NE(dynamic_cast<SimdFlatStorage*>(index->storage), nullptr);
  std::unique_ptr<faiss::DistanceComputer> dc(index->storage->get_distance_computer());
  dc->set_query(set.row(5).data());
  for (size_t i = 0; i < set.size(); ++i) {
    float expected = InnerProduct(set.row(5).data(), set.row(i).data(), set.d);
    ASSERT_EQ((*dc)(static_cast<faiss::Index::idx_t>(i)), expected);
    ASSERT_NEAR(dc->symmetric_dis(3, static_cast<faiss::Index::idx_t>(i)),
                InnerProductScalar(set.row(3).data(), set.row(i).data(), set.d), 1e-5);
  }
}

TEST(SimdHnsw, SimdDistancesMatchFaissScalarDistancesWithin1e5) {
  VectorSet set = IsotropicVectors(500, 384, 2);
  auto simd = Build(set, /*simd=*/true);
  auto scalar = Build(set, /*simd=*/false);
  ASSERT_EQ(dynamic_cast<SimdFlatStorage*>(scalar->storage), nullptr);
  std::unique_ptr<faiss::DistanceComputer> a(simd->storage->get_distance_computer());
  std::unique_ptr<faiss::DistanceComputer> b(scalar->storage->get_distance_computer());
  VectorSet queries = IsotropicVectors(20, 384, 3);
  for (size_t q = 0; q < queries.size(); ++q) {
    a->set_query(queries.row(q).data());
    b->set_query(queries.row(q).data());
    for (faiss::Index::idx_t i = 0; i < 500; ++i) ASSERT_NEAR((*a)(i), (*b)(i), 1e-5);
  }
}

TEST(SimdHnsw, SearchFindsEachStoredVectorAsItsOwnNearestNeighbour) {
  VectorSet set = IsotropicVectors(2000, 32, 4);
  auto index = Build(set, /*simd=*/true);
  index->hnsw.efSearch = 64;
  size_t found = 0;
  for (size_t i = 0; i < set.size(); ++i) {
    float score;
    int64_t label;
    ASSERT_TRUE(SearchHnsw(*index, set.row(i).data(), 1, nullptr, &score, &label).ok());
    if (label == static_cast<int64_t>(i)) {
      ++found;
      EXPECT_NEAR(score, 1.0f, 1e-5);
    }
  }
  EXPECT_GE(found, set.size() * 99 / 100);
}

TEST(SimdHnsw, SelectorExcludesIdsInsideTheGraphWalk) {
  VectorSet set = IsotropicVectors(2000, 32, 5);
  auto index = Build(set, /*simd=*/true);
  index->hnsw.efSearch = 64;
  struct EvenOnly : faiss::IDSelector {
    bool is_member(idx_t id) const override { return id % 2 == 0; }
  } even;
  std::vector<float> scores(10);
  std::vector<int64_t> labels(10);
  for (size_t q = 1; q < 200; q += 2) {
    ASSERT_TRUE(
        SearchHnsw(*index, set.row(q).data(), 10, &even, scores.data(), labels.data()).ok());
    for (int64_t label : labels) {
      ASSERT_GE(label, 0);
      EXPECT_EQ(label % 2, 0);
    }
  }
}

TEST(SimdHnsw, BuildStopsWhenCancelled) {
  VectorSet set = IsotropicVectors(5000, 16, 6);
  std::atomic<bool> cancel{true};
  auto built = BuildHnsw(set.data.data(), set.size(), set.d, {}, &cancel);
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.status().code(), Status::Code::kFailedPrecondition);
}

TEST(SimdHnsw, ValidationRejectsGraphsASearchCouldFollowOutOfBounds) {
  VectorSet set = IsotropicVectors(400, 16, 7);
  auto index = Build(set, /*simd=*/true);
  ASSERT_TRUE(ValidateHnsw(*index, 400, 16).ok());
  EXPECT_TRUE(ValidateHnsw(*index, 401, 16).IsCorruption());
  EXPECT_TRUE(ValidateHnsw(*index, 400, 17).IsCorruption());

  int saved = index->hnsw.neighbors[3];
  index->hnsw.neighbors[3] = 400;
  EXPECT_TRUE(ValidateHnsw(*index, 400, 16).IsCorruption());
  index->hnsw.neighbors[3] = saved;

  auto saved_entry = index->hnsw.entry_point;
  index->hnsw.entry_point = 1000;
  EXPECT_TRUE(ValidateHnsw(*index, 400, 16).IsCorruption());
  index->hnsw.entry_point = saved_entry;

  index->hnsw.levels[10] += 5;
  EXPECT_TRUE(ValidateHnsw(*index, 400, 16).IsCorruption());
}

// The int8 walk re-scores with the float vectors: the same nearest neighbours, exact scores.
TEST(SimdHnsw, Int8WalkFindsTheSameNeighboursWithExactScores) {
  VectorSet set = IsotropicVectors(3000, 64, 21);
  auto index = Build(set, /*simd=*/true);
  index->hnsw.efSearch = 64;
  WalkCodes codes = WalkCodes::Of(static_cast<const faiss::IndexFlat*>(index->storage)->get_xb(),
                                  set.size(), set.d);
  size_t same = 0;
  for (size_t i = 0; i < 300; ++i) {
    float f_score, c_score;
    int64_t f_label, c_label;
    ASSERT_TRUE(SearchHnsw(*index, set.row(i).data(), 1, nullptr, &f_score, &f_label).ok());
    ASSERT_TRUE(SearchHnsw(*index, set.row(i).data(), 1, nullptr, &c_score, &c_label, &codes).ok());
    same += f_label == c_label;
    if (c_label == static_cast<int64_t>(i)) {
      EXPECT_NEAR(c_score, 1.0f, 1e-5);  // the float score, not the code's
    }
  }
  EXPECT_GE(same, 297u);
}

}  // namespace
}  // namespace sealcache::index
