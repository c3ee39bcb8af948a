#include "sealcache/half.h"

#include <cpuid.h>
#include <immintrin.h>

#include <bit>
#include <cmath>

namespace sealcache {

uint16_t FloatToHalf(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t magnitude = x & 0x7fffffffu;
  constexpr uint32_t kInfinity = 0x7f800000u;
  constexpr uint32_t kFirstOverflow = 0x477ff000u;   // 65520: rounds to infinity
  constexpr uint32_t kSmallestNormal = 0x38800000u;  // 2^-14
  if (magnitude > kInfinity) return sign | 0x7e00u;  // NaN (quiet)
  if (magnitude >= kFirstOverflow) return sign | 0x7c00u;
  if (magnitude < kSmallestNormal) {
    // A subnormal half counts units of 2^-24; the product is exact and nearbyint rounds it
    // to nearest even in the default rounding mode. 1024 units is the smallest normal.
    const float units = std::bit_cast<float>(magnitude) * 16777216.0f;
    return sign | static_cast<uint16_t>(std::nearbyint(units));
  }
  // Rebias the exponent (127 -> 15) and round the mantissa from 23 to 10 bits, ties to
  // even; a carry out of the mantissa correctly bumps the exponent.
  uint32_t rebiased = magnitude - 0x38000000u;
  rebiased += 0x0fffu + ((rebiased >> 13) & 1u);
  return sign | static_cast<uint16_t>(rebiased >> 13);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa units of 2^-24
    const float magnitude = static_cast<float>(mantissa) * (1.0f / 16777216.0f);
    return sign != 0 ? -magnitude : magnitude;
  }
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

bool CpuHasF16c() {
  static const bool has = [] {
    __builtin_cpu_init();
    // __builtin_cpu_supports knows "avx" (which includes the OS's support for the ymm
    // registers) in GCC and Clang, but "f16c" only in GCC: CPUID leaf 1 says that.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __builtin_cpu_supports("avx") && __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 &&
           (ecx & bit_F16C) != 0;
  }();
  return has;
}

namespace {

__attribute__((target("avx,f16c"))) void EncodeHalfF16c(const float* v, size_t d, uint16_t* out) {
  size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(v + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
  for (; i < d; ++i) out[i] = FloatToHalf(v[i]);
}

__attribute__((target("avx,f16c"))) void DecodeHalfF16c(const uint16_t* h, size_t d, float* out) {
  size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(x));
  }
  for (; i < d; ++i) out[i] = HalfToFloat(h[i]);
}

}  // namespace

void EncodeHalf(const float* v, size_t d, uint16_t* out) {
  if (CpuHasF16c()) return EncodeHalfF16c(v, d, out);
  for (size_t i = 0; i < d; ++i) out[i] = FloatToHalf(v[i]);
}

void DecodeHalf(const uint16_t* h, size_t d, float* out) {
  if (CpuHasF16c()) return DecodeHalfF16c(h, d, out);
  for (size_t i = 0; i < d; ++i) out[i] = HalfToFloat(h[i]);
}

}  // namespace sealcache
