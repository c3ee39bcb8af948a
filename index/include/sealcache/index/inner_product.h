// Inner products of float vectors with runtime CPU dispatch: AVX2+FMA where the CPU has it,
// a portable scalar loop otherwise. Debian's FAISS is built without SIMD, so every distance
// the index computes (flat scans and HNSW graph walks) goes through these functions.
#pragma once

#include <cstddef>
#include <string_view>

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

}  // namespace sealcache::index
