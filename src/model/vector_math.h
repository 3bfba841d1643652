// Branch-free float helpers for the CPU kernels' element-wise loops
// (causal_attention.cc, decode_attention.cc, fused_ops.cc). Files that use
// them are compiled with -fopenmp-simd and -fno-trapping-math
// (src/CMakeLists.txt), without which GCC keeps the clamps as branches and
// the loops stay scalar.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

// The loops are compiled for AVX2 too and picked at load time (an ifunc),
// since the build itself targets plain x86-64. (A clone for "arch=haswell"
// would be picked on Haswell chips alone, not on later ones.)
#if defined(__x86_64__) && defined(__linux__)
#define STEPER_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define STEPER_VECTOR_CLONES
#endif

namespace steper::model {

// e^x for x in [-87, 0]: x = n ln2 + r, e^r by Cephes' degree-6 polynomial
// (relative error about 1e-7), 2^n built in the exponent bits. Inlined into
// each clone of the loop around it, so that it vectorises there.
__attribute__((always_inline)) inline float exp_nonpositive(float x) {
  x = std::max(x, -87.0f);
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const std::uint32_t bits = static_cast<std::uint32_t>(static_cast<std::int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// 1 / (1 + e^-x) for any x, from e^-|x| so that nothing overflows.
__attribute__((always_inline)) inline float sigmoid(float x) {
  const float e = exp_nonpositive(x > 0 ? -x : x);
  return (x > 0 ? 1.0f : e) / (1.0f + e);
}

}  // namespace steper::model
