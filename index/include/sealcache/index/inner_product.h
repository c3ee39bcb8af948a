// Inner products of float vectors with runtime CPU dispatch: AVX2+FMA where the CPU has it,
// a portable scalar loop otherwise. Debian's FAISS is built without SIMD, so every distance
// the index computes (flat scans and HNSW graph walks) goes through these functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sealcache/half.h"

namespace sealcache::index {

using InnerProductFn = float (*)(const float* a, const float* b, size_t d);

// The implementation picked for this CPU (chosen once, on first use).
InnerProductFn InnerProductFunction();

// Name of the implementation InnerProductFunction() returns: "avx2-fma" or "scalar".
std::string_view InnerProductImplementationName();

inline float InnerProduct(const float* a, const float* b, size_t d) {
  return InnerProductFunction()(a, b, d);
}

// The portable reference: a plain loop, one float accumulator.
float InnerProductScalar(const float* a, const float* b, size_t d);

// True when the CPU supports AVX2 and FMA, so InnerProductAvx2Fma may be called.
bool CpuHasAvx2Fma();

// REQUIRES: CpuHasAvx2Fma()
float InnerProductAvx2Fma(const float* a, const float* b, size_t d);

// ---- int8 codes for graph walks ----
//
// A graph walk reads one far-away vector per distance, so it is bound by memory as much as by
// arithmetic: a 384-d float vector is 24 cache lines. Walks read 8-bit codes instead (6
// lines): code[i] = round(v[i] / scale) with scale = max|v[i]| / 127, one scale per vector.
// The query is quantized the same way, so a walk's distance is one integer product of two
// codes; the nodes a walk keeps are then re-scored with the half-precision vectors.

// Writes the d codes of `v` to `code` and returns its scale (0 for the zero vector).
float QuantizeInt8(const float* v, size_t d, int8_t* code);

// sum(a[i] * b[i]) of two codes (QuantizeInt8's, so in [-127, 127]; the SIMD version needs
// that), exact in int32 (d <= 2^17): multiply by both scales for the approximate inner
// product of the two vectors. For building graphs, which compare stored vectors with each
// other, and for walks, which compare the query's code with them.
using Int8CodeProductFn = int32_t (*)(const int8_t* a, const int8_t* b, size_t d);
Int8CodeProductFn Int8CodeProductFunction();
int32_t Int8CodeProductScalar(const int8_t* a, const int8_t* b, size_t d);
// REQUIRES: CpuHasAvx2Fma()
int32_t Int8CodeProductAvx2(const int8_t* a, const int8_t* b, size_t d);
// True when the CPU supports AVX-512 (F, BW) with VNNI, so Int8CodeProductAvx512Vnni may be
// called.
bool CpuHasAvx512Vnni();
// REQUIRES: CpuHasAvx512Vnni()
int32_t Int8CodeProductAvx512Vnni(const int8_t* a, const int8_t* b, size_t d);

// ---- half precision (sealcache/half.h) for sealed vectors ----
//
// Sealed HNSW segments keep their vectors in half precision: half the memory and snapshot
// bytes of float32, and re-scoring reads 12 cache lines instead of 24 for d = 384; scores
// move by at most 2^-11 for unit vectors.

// sum(q[i] * half[i]) with the halves widened to float.
using HalfInnerProductFn = float (*)(const float* q, const uint16_t* half, size_t d);
HalfInnerProductFn HalfInnerProductFunction();
float HalfInnerProductScalar(const float* q, const uint16_t* half, size_t d);

// True when the CPU supports AVX2, FMA and F16C, so HalfInnerProductAvx2Fma may be called.
bool CpuHasAvx2FmaF16c();
// REQUIRES: CpuHasAvx2FmaF16c()
float HalfInnerProductAvx2Fma(const float* q, const uint16_t* half, size_t d);

}  // namespace sealcache::index
