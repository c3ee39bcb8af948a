#include "sealcache/index/inner_product.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

namespace sealcache::index {

float InnerProductScalar(const float* a, const float* b, size_t d) {
  float sum = 0.0f;
  for (size_t i = 0; i < d; ++i) sum += a[i] * b[i];
  return sum;
}

bool CpuHasAvx2Fma() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
}

// The sum of the 8 lanes.
static inline __attribute__((target("avx2"))) float HorizontalSum(__m256 v) {
  __m128 sum4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 sum2 = _mm_add_ps(sum4, _mm_movehl_ps(sum4, sum4));
  __m128 sum1 = _mm_add_ss(sum2, _mm_shuffle_ps(sum2, sum2, 0x1));
  return _mm_cvtss_f32(sum1);
}

// Four independent 8-lane accumulators hide the FMA latency (4 cycles, 2 ports); the tail
// shorter than 8 floats is summed in scalar.
__attribute__((target("avx2,fma"))) float InnerProductAvx2Fma(const float* a, const float* b,
                                                              size_t d) {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps();
  __m256 acc3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
  }
  for (; i + 8 <= d; i += 8) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  }
  __m256 acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
  float sum = HorizontalSum(acc);
  for (; i < d; ++i) sum += a[i] * b[i];
  return sum;
}

InnerProductFn InnerProductFunction() {
  static const InnerProductFn fn = CpuHasAvx2Fma() ? &InnerProductAvx2Fma : &InnerProductScalar;
  return fn;
}

std::string_view InnerProductImplementationName() {
  return InnerProductFunction() == &InnerProductAvx2Fma ? "avx2-fma" : "scalar";
}

float QuantizeInt8(const float* v, size_t d, int8_t* code) {
  float max_abs = 0.0f;
  for (size_t i = 0; i < d; ++i) max_abs = std::max(max_abs, std::fabs(v[i]));
  if (max_abs == 0.0f) {
    std::fill_n(code, d, int8_t{0});
    return 0.0f;
  }
  const float scale = max_abs / 127.0f;
  const float inv = 127.0f / max_abs;
  // Rounded half away from zero, as std::lround rounds (snapshots hold codes made so), without
  // its call per element: truncated toward zero, then stepped out if the dropped fraction is
  // at least one half. The fraction is exact: |x| < 2^24 and x and its truncation are within
  // a factor of two of each other (or the truncation is 0). A conversion instruction and two
  // compares an element (lroundf was a call: 4% of a lookup).
  for (size_t i = 0; i < d; ++i) {
    const float x = v[i] * inv;
    int q = static_cast<int>(x);
    const float fraction = x - static_cast<float>(q);
    q += static_cast<int>(fraction >= 0.5f) - static_cast<int>(fraction <= -0.5f);
    code[i] = static_cast<int8_t>(std::clamp(q, -127, 127));
  }
  return scale;
}

int32_t Int8CodeProductScalar(const int8_t* a, const int8_t* b, size_t d) {
  int32_t sum = 0;
  for (size_t i = 0; i < d; ++i) sum += int32_t{a[i]} * int32_t{b[i]};
  return sum;
}

// The sum of the 8 int32 lanes.
static inline __attribute__((target("avx2"))) int32_t HorizontalSum(__m256i v) {
  __m128i sum4 = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  __m128i sum2 = _mm_add_epi32(sum4, _mm_shuffle_epi32(sum4, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(sum2, _mm_shuffle_epi32(sum2, 0xB1)));
}

// 32 codes a step with vpmaddubsw, which multiplies unsigned bytes by signed ones: |a| times
// b with a's sign moved onto it (vpsignb, which also zeroes b where a is 0), adjacent
// products summed into int16 (at most 2 * 127 * 127 < 2^15 in magnitude for codes in
// [-127, 127], so never saturated), widened to int32 by vpmaddwd against ones. Half the
// shuffle-port work of sign-extending both sides to int16 first; graph construction spends
// most of its time here.
static inline __attribute__((target("avx2"))) __m256i CodeProduct32(const int8_t* a,
                                                                    const int8_t* b) {
  __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
  __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
  __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(y, x));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

__attribute__((target("avx2"))) int32_t Int8CodeProductAvx2(const int8_t* a, const int8_t* b,
                                                            size_t d) {
  __m256i acc0 = _mm256_setzero_si256();
  __m256i acc1 = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    acc0 = _mm256_add_epi32(acc0, CodeProduct32(a + i, b + i));
    acc1 = _mm256_add_epi32(acc1, CodeProduct32(a + i + 32, b + i + 32));
  }
  if (i + 32 <= d) {
    acc0 = _mm256_add_epi32(acc0, CodeProduct32(a + i, b + i));
    i += 32;
  }
  int32_t sum = HorizontalSum(_mm256_add_epi32(acc0, acc1));
  for (; i < d; ++i) sum += int32_t{a[i]} * int32_t{b[i]};
  return sum;
}

bool CpuHasAvx512Vnni() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
  }();
  return has;
}

// 64 codes a step with vpdpbusd, which multiplies unsigned bytes by signed ones and adds
// each group of four products into an int32 lane: |a| times b with a's sign moved onto it
// (b negated where a is negative; where a is 0 so is |a|). One instruction where the AVX2
// version takes three (vpmaddubsw, vpmaddwd, vpaddd), on twice the width; the tail is read
// with a masked load (zeros past d add nothing).
static inline __attribute__((target("avx512f,avx512bw,avx512vnni"))) __m512i CodeProduct64(
    __m512i acc, __m512i x, __m512i y) {
  const __mmask64 negative = _mm512_movepi8_mask(x);
  const __m512i signed_y = _mm512_mask_sub_epi8(y, negative, _mm512_setzero_si512(), y);
  return _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(x), signed_y);
}

__attribute__((target("avx2,avx512f,avx512bw,avx512vnni"))) int32_t Int8CodeProductAvx512Vnni(
    const int8_t* a, const int8_t* b, size_t d) {
  __m512i acc0 = _mm512_setzero_si512();
  __m512i acc1 = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 128 <= d; i += 128) {
    acc0 = CodeProduct64(acc0, _mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
    acc1 = CodeProduct64(acc1, _mm512_loadu_si512(a + i + 64), _mm512_loadu_si512(b + i + 64));
  }
  for (; i < d; i += 64) {
    const size_t left = std::min<size_t>(d - i, 64);
    const __mmask64 in = left == 64 ? ~__mmask64{0} : (__mmask64{1} << left) - 1;
    acc0 =
        CodeProduct64(acc0, _mm512_maskz_loadu_epi8(in, a + i), _mm512_maskz_loadu_epi8(in, b + i));
  }
  const __m512i acc = _mm512_add_epi32(acc0, acc1);
  // (_mm512_reduce_add_epi32 and _mm512_castsi512_si256 read an undefined register that
  // g++ 12 warns about.)
  return HorizontalSum(_mm256_add_epi32(_mm512_maskz_extracti64x4_epi64(0xFF, acc, 0),
                                        _mm512_maskz_extracti64x4_epi64(0xFF, acc, 1)));
}

Int8CodeProductFn Int8CodeProductFunction() {
  static const Int8CodeProductFn fn = CpuHasAvx512Vnni() ? &Int8CodeProductAvx512Vnni
                                      : CpuHasAvx2Fma()  ? &Int8CodeProductAvx2
                                                         : &Int8CodeProductScalar;
  return fn;
}

bool CpuHasAvx2FmaF16c() {
  static const bool has = CpuHasAvx2Fma() && CpuHasF16c();
  return has;
}

float HalfInnerProductScalar(const float* q, const uint16_t* half, size_t d) {
  float sum = 0.0f;
  for (size_t i = 0; i < d; ++i) sum += q[i] * HalfToFloat(half[i]);
  return sum;
}

static inline __attribute__((target("avx2,f16c"))) __m256 LoadHalf8(const uint16_t* h) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
}

// As InnerProductAvx2Fma, with each 8 halves widened by one vcvtph2ps.
__attribute__((target("avx2,fma,f16c"))) float HalfInnerProductAvx2Fma(const float* q,
                                                                       const uint16_t* half,
                                                                       size_t d) {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps();
  __m256 acc3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LoadHalf8(half + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), LoadHalf8(half + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 16), LoadHalf8(half + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 24), LoadHalf8(half + i + 24), acc3);
  }
  for (; i + 8 <= d; i += 8)
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LoadHalf8(half + i), acc0);
  __m256 acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
  float sum = HorizontalSum(acc);
  for (; i < d; ++i) sum += q[i] * HalfToFloat(half[i]);
  return sum;
}

HalfInnerProductFn HalfInnerProductFunction() {
  static const HalfInnerProductFn fn =
      CpuHasAvx2FmaF16c() ? &HalfInnerProductAvx2Fma : &HalfInnerProductScalar;
  return fn;
}

}  // namespace sealcache::index
