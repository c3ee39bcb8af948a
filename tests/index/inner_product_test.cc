#include "sealcache/index/inner_product.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "test_util.h"

namespace sealcache::index {
namespace {

TEST(InnerProduct, DispatchesToAvx2FmaWhenTheCpuHasIt) {
  if (CpuHasAvx2Fma()) {
    EXPECT_EQ(InnerProductImplementationName(), "avx2-fma");
    EXPECT_EQ(InnerProductFunction(), &InnerProductAvx2Fma);
  } else {
    EXPECT_EQ(InnerProductImplementationName(), "scalar");
    EXPECT_EQ(InnerProductFunction(), &InnerProductScalar);
  }
}

TEST(InnerProduct, ScalarMatchesADoubleSum) {
  std::vector<float> a = {1.5f, -2.0f, 0.25f}, b = {2.0f, 0.5f, 4.0f};
  EXPECT_FLOAT_EQ(InnerProductScalar(a.data(), b.data(), 3), 3.0f - 1.0f + 1.0f);
  EXPECT_EQ(InnerProductScalar(a.data(), b.data(), 0), 0.0f);
}

// Every dimension from 1 to 1030 covers the 32-wide main loop, the 8-wide loop and every
// scalar tail length, with unaligned starts.
TEST(InnerProduct, SimdEqualsScalarWithin1e5ForUnitVectorsOfEveryDimension) {
  if (!CpuHasAvx2Fma()) GTEST_SKIP() << "CPU without AVX2/FMA: only the scalar path exists";
  std::mt19937 rng(7);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  for (size_t d = 1; d <= 1030; ++d) {
    std::vector<float> buf(2 * d + 2);
    for (float& x : buf) x = gauss(rng);
    float* a = buf.data() + 1;  // deliberately not 32-byte aligned
    float* b = buf.data() + d + 2;
    testing::NormalizeRow(a, d);
    testing::NormalizeRow(b, d);
    ASSERT_NEAR(InnerProductAvx2Fma(a, b, d), InnerProductScalar(a, b, d), 1e-5) << "d=" << d;
    ASSERT_NEAR(InnerProductAvx2Fma(a, a, d), 1.0f, 1e-5) << "d=" << d;
  }
}

TEST(InnerProduct, SimdEqualsScalarOnTheIndexDimensionForManyPairs) {
  if (!CpuHasAvx2Fma()) GTEST_SKIP() << "CPU without AVX2/FMA: only the scalar path exists";
  testing::VectorSet set = testing::IsotropicVectors(2000, 384, 11);
  for (size_t i = 0; i + 1 < set.size(); ++i) {
    const float* a = set.row(i).data();
    const float* b = set.row(i + 1).data();
    ASSERT_NEAR(InnerProductAvx2Fma(a, b, 384), InnerProductScalar(a, b, 384), 1e-5);
  }
}

}  // namespace
}  // namespace sealcache::index
