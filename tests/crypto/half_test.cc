#include "sealcache/half.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace sealcache {
namespace {

TEST(Half, ConvertsKnownValuesWithIeeeRounding) {
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(0.1f), 0x2e66);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);                      // the largest half
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7bff);                      // rounds down to it
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);                      // the tie rounds to infinity
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -14)), 0x0400);         // the smallest normal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);         // the smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);         // tie: to even (zero)
  EXPECT_EQ(FloatToHalf(std::ldexp(3.0f, -25)), 0x0002);         // tie: to even (two)
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie: to even
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // tie: to even
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(HalfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0xfbff), -65504.0f);
  EXPECT_EQ(HalfToFloat(0xfc00), -std::numeric_limits<float>::infinity());
}

TEST(Half, EveryHalfSurvivesTheRoundTripThroughFloat) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToHalf(f), h) << std::hex << h;
  }
}

TEST(Half, ArrayConversionsGiveTheScalarResults) {
  // EncodeHalf and DecodeHalf use F16C for each 8 values where the CPU has it: it must round
  // exactly as FloatToHalf does, over every exponent and the ties.
  std::mt19937 rng(17);
  std::vector<float> floats;
  for (int i = 0; i < 200000; ++i)
    floats.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  for (int e = -30; e <= 17; ++e) {
    for (float m : {1.0f, 1.5f, 1.0f + std::ldexp(1.0f, -11), 1.0f + std::ldexp(3.0f, -11)}) {
      floats.push_back(std::ldexp(m, e));
      floats.push_back(-std::ldexp(m, e));
    }
  }
  while (floats.size() % 8 != 3) floats.push_back(0.25f);  // and a scalar tail
  std::vector<uint16_t> halves(floats.size());
  EncodeHalf(floats.data(), floats.size(), halves.data());
  std::vector<float> widened(floats.size());
  DecodeHalf(halves.data(), halves.size(), widened.data());
  for (size_t i = 0; i < floats.size(); ++i) {
    if (std::isnan(floats[i])) {
      ASSERT_TRUE(std::isnan(widened[i])) << i;
      continue;
    }
    ASSERT_EQ(halves[i], FloatToHalf(floats[i])) << floats[i];
    ASSERT_EQ(std::bit_cast<uint32_t>(widened[i]), std::bit_cast<uint32_t>(HalfToFloat(halves[i])));
  }
}

}  // namespace
}  // namespace sealcache
