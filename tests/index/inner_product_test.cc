#include "sealcache/index/inner_product.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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

// Int8 codes (graph walks and construction): code * scale reproduces each element within
// half a step.
TEST(Int8Codes, ReproduceTheVectorWithinHalfAStep) {
  std::mt19937 rng(11);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  for (size_t d : {1u, 7u, 16u, 17u, 384u, 1030u}) {
    std::vector<float> v(d);
    for (float& x : v) x = gauss(rng);
    std::vector<int8_t> code(d);
    float scale = QuantizeInt8(v.data(), d, code.data());
    ASSERT_GT(scale, 0.0f);
    for (size_t i = 0; i < d; ++i) EXPECT_NEAR(code[i] * scale, v[i], scale / 2 + 1e-6f);
  }
  std::vector<float> zero(8, 0.0f);
  std::vector<int8_t> code(8, 5);
  EXPECT_EQ(QuantizeInt8(zero.data(), 8, code.data()), 0.0f);
  EXPECT_EQ(code, std::vector<int8_t>(8, 0));
}

// Codes are rounded half away from zero, as std::lround rounds: the codes in snapshots and
// graphs written before stay the codes of the same vectors. Exact halves, their neighbours
// and the extremes included.
TEST(Int8Codes, RoundHalfAwayFromZeroAsLroundDoes) {
  std::vector<float> v;
  v.push_back(127.0f);  // max_abs 127: each element is its own code's value, before rounding
  v.push_back(-127.0f);
  for (float x = -126.75f; x <= 126.75f; x += 0.25f) {
    v.push_back(x);
    v.push_back(std::nextafter(x, 200.0f));
    v.push_back(std::nextafter(x, -200.0f));
  }
  for (float x : {0.49999997f, -0.49999997f, 0.5f, -0.5f, 1.5f, -2.5f, 126.5f, -126.5f}) {
    v.push_back(x);
  }
  std::vector<int8_t> code(v.size());
  ASSERT_EQ(QuantizeInt8(v.data(), v.size(), code.data()), 1.0f);
  for (size_t i = 0; i < v.size(); ++i) {
    ASSERT_EQ(code[i], std::clamp(std::lround(v[i]), -127L, 127L)) << "element " << v[i];
  }
  std::mt19937 rng(12);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  for (int round = 0; round < 200; ++round) {
    std::vector<float> r(384);
    for (float& x : r) x = gauss(rng);
    std::vector<int8_t> got(r.size());
    QuantizeInt8(r.data(), r.size(), got.data());
    float max_abs = 0;
    for (float x : r) max_abs = std::max(max_abs, std::fabs(x));
    for (size_t i = 0; i < r.size(); ++i) {
      ASSERT_EQ(got[i], std::clamp(std::lround(r[i] * (127.0f / max_abs)), -127L, 127L));
    }
  }
}

// Graph construction compares two stored codes: the SIMD product equals the scalar one
// exactly (integer arithmetic, extreme codes included), and with both scales it approximates
// the float product of the unit vectors.
TEST(Int8CodeProduct, SimdEqualsScalarExactlyAndApproximatesTheFloatProduct) {
  std::mt19937 rng(13);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  for (size_t d = 1; d <= 530; ++d) {
    std::vector<float> a(d), b(d);
    for (float& x : a) x = gauss(rng);
    for (float& x : b) x = gauss(rng);
    testing::NormalizeRow(a.data(), d);
    testing::NormalizeRow(b.data(), d);
    std::vector<int8_t> ca(d + 1), cb(d + 1);  // +1: unaligned codes
    const float sa = QuantizeInt8(a.data(), d, ca.data() + 1);
    const float sb = QuantizeInt8(b.data(), d, cb.data() + 1);
    const int32_t scalar = Int8CodeProductScalar(ca.data() + 1, cb.data() + 1, d);
    if (CpuHasAvx2Fma()) {
      ASSERT_EQ(Int8CodeProductAvx2(ca.data() + 1, cb.data() + 1, d), scalar) << "d=" << d;
    }
    if (CpuHasAvx512Vnni()) {
      ASSERT_EQ(Int8CodeProductAvx512Vnni(ca.data() + 1, cb.data() + 1, d), scalar) << "d=" << d;
    }
    ASSERT_NEAR(sa * sb * static_cast<float>(scalar), InnerProductScalar(a.data(), b.data(), d),
                2e-2f)
        << "d=" << d;
  }
  std::vector<int8_t> extreme(1030, -127);
  const int32_t expected = 1030 * 127 * 127;
  EXPECT_EQ(Int8CodeProductScalar(extreme.data(), extreme.data(), extreme.size()), expected);
  if (CpuHasAvx2Fma()) {
    EXPECT_EQ(Int8CodeProductAvx2(extreme.data(), extreme.data(), extreme.size()), expected);
  }
  if (CpuHasAvx512Vnni()) {
    EXPECT_EQ(Int8CodeProductAvx512Vnni(extreme.data(), extreme.data(), extreme.size()), expected);
  }
  // Opposite extremes, and pairs that would saturate int16 if the sign were lost.
  std::vector<int8_t> plus(1030, 127), alternating(1030);
  for (size_t i = 0; i < alternating.size(); ++i) alternating[i] = i % 2 == 0 ? -127 : 127;
  for (const auto& other : {extreme, alternating}) {
    const int32_t want = Int8CodeProductScalar(plus.data(), other.data(), plus.size());
    EXPECT_EQ(want, other == extreme ? -expected : 0);
    if (CpuHasAvx2Fma()) {
      EXPECT_EQ(Int8CodeProductAvx2(plus.data(), other.data(), plus.size()), want);
      EXPECT_EQ(Int8CodeProductAvx2(other.data(), plus.data(), plus.size()), want);
    }
    if (CpuHasAvx512Vnni()) {
      EXPECT_EQ(Int8CodeProductAvx512Vnni(plus.data(), other.data(), plus.size()), want);
      EXPECT_EQ(Int8CodeProductAvx512Vnni(other.data(), plus.data(), plus.size()), want);
    }
  }
}

TEST(HalfInnerProduct, SimdMatchesScalarAndStaysWithinTheHalfBound) {
  std::mt19937 rng(19);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  for (size_t d = 1; d <= 530; ++d) {
    std::vector<float> q(d), v(d);
    for (float& x : q) x = gauss(rng);
    for (float& x : v) x = gauss(rng);
    testing::NormalizeRow(q.data(), d);
    testing::NormalizeRow(v.data(), d);
    std::vector<uint16_t> half(d + 1);  // +1: unaligned halves
    EncodeHalf(v.data(), d, half.data() + 1);
    const float scalar = HalfInnerProductScalar(q.data(), half.data() + 1, d);
    if (CpuHasAvx2FmaF16c()) {
      ASSERT_NEAR(HalfInnerProductAvx2Fma(q.data(), half.data() + 1, d), scalar, 1e-5) << d;
    }
    ASSERT_NEAR(scalar, InnerProductScalar(q.data(), v.data(), d), 1.0f / 2048) << d;
  }
}

}  // namespace
}  // namespace sealcache::index
