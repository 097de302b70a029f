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
// f32 -> IEEE half bits, round to nearest even (what F16C's vcvtps2ph does).
static inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff, mant = x & 0x7fffff;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 | (mant >> 13) : 0));
  const int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00);
  if (e <= 0) {
    const int shift = 14 - e;
    if (shift > 24) return static_cast<uint16_t>(sign);
    const uint32_t full = mant | 0x800000, rem = full & ((1u << shift) - 1), half = 1u << (shift - 1);
    uint32_t m = full >> shift;
    if (rem > half || (rem == half && (m & 1))) m++;
    return static_cast<uint16_t>(sign | m);
  }
  uint32_t h = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
  return static_cast<uint16_t>(h);
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
static inline void vstore_f16(uint16_t* p, V v) { *p = float_to_half(v); }
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
                                    scalar_isa::exp_sub_sum, scalar_isa::swiglu, scalar_isa::store_f16};

}  // namespace moe
