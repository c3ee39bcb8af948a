// IEEE 754 binary16 ("half") conversions. The vector index scores sealed entries from
// half-precision vectors and the store keeps vectors in half precision, so both convert the
// same way: round to nearest, ties to even (as F16C's vcvtps2ph does with that mode).
//
// A half keeps 11 significant bits: a component of a unit vector (far above the subnormal
// range) is off by at most 2^-11 of itself, so an inner product of unit vectors moves by at
// most 2^-11 (~1e-5 typically: the errors have random signs).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sealcache {

// Round to nearest, ties to even; overflow gives infinity, NaN stays NaN.
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);

// True when the CPU has F16C (vcvtps2ph / vcvtph2ps).
bool CpuHasF16c();

// Converts d values, with F16C where the CPU has it; the same results either way.
void EncodeHalf(const float* v, size_t d, uint16_t* out);
void DecodeHalf(const uint16_t* h, size_t d, float* out);

}  // namespace sealcache
