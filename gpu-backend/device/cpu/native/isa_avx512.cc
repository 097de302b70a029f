// AVX-512F kernels (plus FMA/F16C). Only called when the CPU reports avx512f at run time.
#include <immintrin.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include "kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,f16c")

namespace moe {
namespace avx512_isa {

using V = __m512;
constexpr int W = 16;
// 32 zmm registers: 16 accumulators + 4 weights + 1 activation.
constexpr int RT = 4, TT = 4, RM = 4;
constexpr int PFD = 1024;

static inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }
static inline V vzero() { return _mm512_setzero_ps(); }
static inline V vloadu(const float* p) { return _mm512_loadu_ps(p); }
static inline void vstoreu(float* p, V v) { _mm512_storeu_ps(p, v); }
static inline V vadd(V a, V b) { return _mm512_add_ps(a, b); }
static inline V vfma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
static inline V vmul(V a, V b) { return _mm512_mul_ps(a, b); }
static inline V vset1(float f) { return _mm512_set1_ps(f); }
// (Not _mm512_reduce_add_ps: GCC 12's version trips -Wuninitialized in its own header.)
static inline float vhsum(V v) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                                 _mm512_castps512_ps256(_mm512_shuffle_f32x4(v, v, 0xee)));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
static inline V cvt_f16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
static inline V cvt_bf16(const uint16_t* p) {
  const __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
}
static inline V cvt_i8(const int8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
// 16 bytes -> 32 values: widen bytes to 32-bit lanes once; vpermps looks up (nibble - 8) as a float
// from a 16-entry table using only the low 4 bits of each lane, so no masking or conversion needed.
static inline void q4_block(const uint8_t* p, V* out) {
  const __m512i lanes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m512 table = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
  out[0] = _mm512_permutexvar_ps(lanes, table);
  out[1] = _mm512_permutexvar_ps(_mm512_srli_epi32(lanes, 4), table);
}
static inline void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }

#include "isa_body.inc"

}  // namespace avx512_isa

const KernelTable kAvx512Kernels = {"avx512", avx512_isa::matmul_rows, avx512_isa::dot, avx512_isa::axpy,
                                    avx512_isa::read_sum};

}  // namespace moe

#pragma GCC pop_options
