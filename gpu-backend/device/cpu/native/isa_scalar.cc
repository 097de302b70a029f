// Portable fallback: the generic bodies with one float per "vector" (the compiler may still
// auto-vectorise at the baseline ISA).
#include <cstddef>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"

namespace moe {
namespace scalar_isa {

using V = float;
constexpr int W = 1;
constexpr int RT = 4, TT = 4, RM = 4;
constexpr int PFD = 0;

static inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
  if (e == 0) {
    if (m == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      e = 113;
      while (!(m & 0x400)) {
        m <<= 1;
        e--;
      }
      bits = sign | (e << 23) | ((m & 0x3ff) << 13);
    }
  } else if (e == 31) {
    bits = sign | 0x7f800000 | (m << 13);
  } else {
    bits = sign | ((e + 112) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
static inline V vzero() { return 0.f; }
static inline V vloadu(const float* p) { return *p; }
static inline void vstoreu(float* p, V v) { *p = v; }
static inline V vadd(V a, V b) { return a + b; }
static inline V vfma(V a, V b, V c) { return a * b + c; }
static inline V vmul(V a, V b) { return a * b; }
static inline V vsub(V a, V b) { return a - b; }
static inline V vdiv(V a, V b) { return a / b; }
static inline V vexp(V x) { return std::exp(x); }
static inline V vset1(float f) { return f; }
static inline float vhsum(V v) { return v; }
static inline V cvt_f16(const uint16_t* p) { return half_to_float(*p); }
static inline V cvt_bf16(const uint16_t* p) {
  uint32_t bits = static_cast<uint32_t>(*p) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
static inline V cvt_i8(const int8_t* p) { return static_cast<float>(*p); }
static inline void q4_block(const uint8_t* p, V* out) {
  for (int j = 0; j < 16; j++) {
    out[j] = static_cast<float>((p[j] & 0x0f) - 8);
    out[j + 16] = static_cast<float>((p[j] >> 4) - 8);
  }
}
static inline void prefetch(const void*) {}

#include "isa_body.inc"

}  // namespace scalar_isa

const KernelTable kScalarKernels = {"scalar", scalar_isa::matmul_rows, nullptr, scalar_isa::attend,
                                    scalar_isa::read_sum,
                                    scalar_isa::exp_sub_sum, scalar_isa::swiglu};

}  // namespace moe
