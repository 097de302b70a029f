// AVX-512 VNNI kernels: as the avx512 table, except q8 and q4 matmuls, which follow llama.cpp:
// each activation row is quantized to int8 per 32-block (Q8_0 style, d = amax/127, round to
// nearest even, scale kept in f32), and weight blocks are multiplied with vpdpbusd (64 int8
// products per instruction) before one float scale per block. That is what lets the matvecs keep
// up with memory and batched steps run ~2x faster; the price is the activation rounding
// (|error| <= amax/254 per element), the same trade llama.cpp makes. Used for every n, so prefill
// and decode give identical numbers. q8 comes packed (DT_Q8P, uploaded weights) or plain (DT_Q8,
// e.g. weights left in JS memory), with bit-identical results. Selected only when the CPU reports
// avx512f, avx512bw, avx512vl and avx512vnni.
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <deque>
#include <vector>

#include "kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")

namespace moe {
namespace avx512vnni_isa {

#include "avx512_vec.inc"
#include "isa_body.inc"

// One token's activations, quantized. Blocks are processed in groups of G (q8: 2, q4: 4) so that a
// group's weights are exactly one 64-byte load; per group there are 16 int32 lanes (4 products each).
struct QuantX {
  std::vector<int8_t> q;     // q8: natural order; q4: per group, 64 "low-nibble" then 64 "high-nibble" values
  std::vector<int32_t> corr;  // per group 16 lanes: initial accumulator undoing the weight offset (128 or 8)
  std::vector<float> dx;      // per group 16 lanes: the block scale of each lane's block
};

template <int DT>
static void quantize_x(const float* x, int cols, QuantX& out) {
  constexpr int G = DT == DT_Q8 ? 2 : 4;
  const int nb = cols / 32, ng = (nb + G - 1) / G;
  out.q.assign(static_cast<size_t>(ng) * G * 32, 0);
  out.corr.assign(static_cast<size_t>(ng) * 16, 0);
  out.dx.assign(static_cast<size_t>(ng) * 16, 0.f);
  alignas(64) int8_t qb[32];
  for (int b = 0; b < nb; b++) {
    const __m512 x0 = _mm512_loadu_ps(x + b * 32), x1 = _mm512_loadu_ps(x + b * 32 + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
    const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
    const __m512 idv = _mm512_set1_ps(id);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qb), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(x0, idv))));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qb + 16),
                     _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(x1, idv))));
    const int g = b / G, bi = b % G;
    int8_t* qg = out.q.data() + static_cast<size_t>(g) * G * 32;
    int32_t* cg = out.corr.data() + static_cast<size_t>(g) * 16;
    float* dg = out.dx.data() + static_cast<size_t>(g) * 16;
    if constexpr (DT == DT_Q8) {
      // Lanes 8*bi .. 8*bi+7 hold this block; weights are offset by +128 (xor 0x80) in the kernel.
      std::memcpy(qg + bi * 32, qb, 32);
      for (int l = 0; l < 8; l++) {
        cg[bi * 8 + l] = -128 * (qb[4 * l] + qb[4 * l + 1] + qb[4 * l + 2] + qb[4 * l + 3]);
        dg[bi * 8 + l] = d;
      }
    } else {
      // Byte m of a 64-byte q4 load is block m/16, element m%16 (low nibble) and 16 + m%16 (high).
      std::memcpy(qg + bi * 16, qb, 16);
      std::memcpy(qg + 64 + bi * 16, qb + 16, 16);
      for (int l = 0; l < 4; l++) {
        int s = 0;
        for (int e = 0; e < 4; e++) s += qb[4 * l + e] + qb[16 + 4 * l + e];
        cg[bi * 4 + l] = -8 * s;  // nibbles are stored as q + 8
        dg[bi * 4 + l] = d;
      }
    }
  }
}

// Prefetch distance for the int8 kernels (1024 measured slightly better than 2048 here).
constexpr size_t kVnniPfd = 1024;

// out[i] = dot(row i, x) for R rows and one token.
template <int DT, int R>
static inline void vnni_tile(const uint8_t* const* rp, const uint16_t* const* sp, int nb, const QuantX& qx,
                             float* out, int os) {
  constexpr int G = DT == DT_Q8 ? 2 : 4;
  constexpr int BPB = DT == DT_Q8 ? 32 : 16;  // weight bytes per block
  const int ng = (nb + G - 1) / G;
  const __m512i lane_block = DT == DT_Q8 ? _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)
                                         : _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const __m512i m4 = _mm512_set1_epi8(0x0f), flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[R];
  for (int i = 0; i < R; i++) acc[i] = _mm512_setzero_ps();
  // One group for all R rows; `full` groups use plain loads, the last (partial) one masked loads.
  auto group = [&](int g, bool full, int nblk) __attribute__((always_inline)) {
    const __mmask64 wm = full ? ~0ULL : ((1ULL << (nblk * BPB)) - 1);
    const __mmask8 sm = static_cast<__mmask8>((1u << nblk) - 1);
    const __m512i corr = _mm512_loadu_si512(qx.corr.data() + g * 16);
    const __m512 dxv = _mm512_loadu_ps(qx.dx.data() + g * 16);
    const int8_t* xg = qx.q.data() + static_cast<size_t>(g) * G * 32;
    const __m512i xa = _mm512_loadu_si512(xg);
    const __m512i xb = DT == DT_Q4 ? _mm512_loadu_si512(xg + 64) : xa;
    for (int i = 0; i < R; i++) {
      const uint8_t* wp = rp[i] + static_cast<size_t>(g) * 64;
      prefetch(wp + kVnniPfd);
      const __m512i w = full ? _mm512_loadu_si512(wp) : _mm512_maskz_loadu_epi8(wm, wp);
      __m512i s;
      if constexpr (DT == DT_Q8) {
        s = _mm512_dpbusd_epi32(corr, _mm512_xor_si512(w, flip), xa);
      } else {
        s = _mm512_dpbusd_epi32(corr, _mm512_and_si512(w, m4), xa);
        s = _mm512_dpbusd_epi32(s, _mm512_and_si512(_mm512_srli_epi16(w, 4), m4), xb);
      }
      const uint16_t* sc = sp[i] + g * G;
      __m128i h;
      if (!full) {
        h = _mm_maskz_loadu_epi16(sm, sc);
      } else if constexpr (DT == DT_Q4) {
        h = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc));
      } else {
        int32_t two;
        std::memcpy(&two, sc, 4);
        h = _mm_cvtsi32_si128(two);
      }
      const __m512 dw = _mm512_permutexvar_ps(lane_block, _mm512_castps128_ps512(_mm_cvtph_ps(h)));
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, dxv), acc[i]);
    }
  };
  const int nfull = nb / G;
  for (int g = 0; g < nfull; g++) group(g, true, G);
  if (nfull < ng) group(nfull, false, nb - nfull * G);
  for (int i = 0; i < R; i++) out[static_cast<size_t>(i) * os] = vhsum(acc[i]);
}

// ---- Packed q8 (DT_Q8P, layout in kernels.h) ----
// Activations as llama.cpp quantizes them for Q8_0 (per 32-block int8, d = amax/127, RNE). Per
// (token, block): corr = -128 * sum(q) undoes the weights' +128 offset, so each lane's int32 sum
// is exactly sum(w * q); the block then adds float(sum) * (dw * dx) to that row's f32 sum. The
// same arithmetic for every n, tile size and row position: results never depend on batching.
struct PackedX {
  std::vector<int8_t> q;      // [n, cols]
  std::vector<int32_t> corr;  // [n, nb]
  std::vector<float> d;       // [n, nb]
  int cols = 0, nb = 0;
};

static void quantize_packed_x(const float* x, int n, int cols, PackedX& px) {
  const int nb = cols / 32;
  px.cols = cols;
  px.nb = nb;
  px.q.resize(static_cast<size_t>(n) * cols);
  px.corr.resize(static_cast<size_t>(n) * nb);
  px.d.resize(static_cast<size_t>(n) * nb);
  for (size_t tb = 0; tb < static_cast<size_t>(n) * nb; tb++) {
    const float* xb = x + tb * 32;
    const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
    const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
    const __m512 idv = _mm512_set1_ps(id);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, idv)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, idv));
    const __m128i b0 = _mm512_cvtsepi32_epi8(q0), b1 = _mm512_cvtsepi32_epi8(q1);
    int8_t* qb = px.q.data() + tb * 32;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qb), b0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qb + 16), b1);
    const __m512i sum = _mm512_add_epi32(_mm512_cvtepi8_epi32(b0), _mm512_cvtepi8_epi32(b1));
    px.corr[tb] = -128 * _mm512_reduce_add_epi32(sum);
    px.d[tb] = d;
  }
}

// Prefetch distance in the packed weight stream (one stream per thread).
constexpr size_t kQ8pPfd = 2048;

static inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// 16 rows (one packed group) x T tokens starting at token t0; out row-major [token][row] with
// token stride ldo.
template <int T>
static inline void q8p_tile(const uint8_t* wg, const uint16_t* sg, const PackedX& px, int t0, float* out, int ldo) {
  __m512 acc[T];
  for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
  const int nb = px.nb;
  for (int b = 0; b < nb; b++) {
    const uint8_t* wb = wg + static_cast<size_t>(b) * 512;
    for (int o = 0; o < 512; o += 64) prefetch(wb + kQ8pPfd + o);
    __m512i w[8];
    for (int k = 0; k < 8; k++) w[k] = _mm512_loadu_si512(wb + k * 64);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sg + b * 16)));
    for (int t = 0; t < T; t++) {
      const size_t tb = static_cast<size_t>(t0 + t) * nb + b;
      const int8_t* xq = px.q.data() + tb * 32;
      // Two independent chains (int adds are exact, so the split never changes the result).
      __m512i s0 = _mm512_set1_epi32(px.corr[tb]), s1 = _mm512_setzero_si512();
      for (int k = 0; k < 4; k++) s0 = _mm512_dpbusd_epi32(s0, w[k], bcast4(xq + 4 * k));
      for (int k = 4; k < 8; k++) s1 = _mm512_dpbusd_epi32(s1, w[k], bcast4(xq + 4 * k));
      const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(px.d[tb]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), scale, acc[t]);
    }
  }
  for (int t = 0; t < T; t++) _mm512_storeu_ps(out + static_cast<size_t>(t) * ldo, acc[t]);
}

// A row past the last full group (plain q8): the same arithmetic, one lane at a time.
static void q8p_tail_row(const MatmulArgs& a, const PackedX& px, int r) {
  const int nb = px.nb;
  const int8_t* w = reinterpret_cast<const int8_t*>(a.w) + static_cast<size_t>(r) * a.cols;
  const uint16_t* sc = a.scales + static_cast<size_t>(r) * nb;
  for (int t = 0; t < a.n; t++) {
    float acc = 0.f;
    for (int b = 0; b < nb; b++) {
      const size_t tb = static_cast<size_t>(t) * nb + b;
      const int8_t* xq = px.q.data() + tb * 32;
      int32_t s = 0;
      for (int j = 0; j < 32; j++) s += static_cast<int32_t>(w[b * 32 + j]) * xq[j];
      acc = std::fma(static_cast<float>(s), half_to_float(sc[b]) * px.d[tb], acc);
    }
    a.out[static_cast<size_t>(t) * a.rows + r] = acc;
  }
}

// Rows [r0, r1): r0 is a multiple of 16, r1 too unless it is a.rows (the chunking keeps groups whole).
static void q8p_rows(const MatmulArgs& a, int r0, int r1) {
  const PackedX& px = *static_cast<const PackedX*>(a.prepared);
  const int full = a.rows / 16 * 16;
  const int gend = r1 < full ? r1 : full;
  for (int r = r0; r < gend; r += 16) {
    const uint8_t* wg = a.w + static_cast<size_t>(r) * a.cols;
    const uint16_t* sg = a.scales + static_cast<size_t>(r) * px.nb;
    float* o = a.out + r;
    int t = 0;
    for (; t + 8 <= a.n; t += 8) q8p_tile<8>(wg, sg, px, t, o + static_cast<size_t>(t) * a.rows, a.rows);
    switch (a.n - t) {
      case 1: q8p_tile<1>(wg, sg, px, t, o + static_cast<size_t>(t) * a.rows, a.rows); break;
      case 2: q8p_tile<2>(wg, sg, px, t, o + static_cast<size_t>(t) * a.rows, a.rows); break;
      case 3: q8p_tile<3>(wg, sg, px, t, o + static_cast<size_t>(t) * a.rows, a.rows); break;
      case 4: q8p_tile<4>(wg, sg, px, t, o + static_cast<size_t>(t) * a.rows, a.rows); break;
      case 5: q8p_tile<5>(wg, sg, px, t, o + static_cast<size_t>(t) * a.rows, a.rows); break;
      case 6: q8p_tile<6>(wg, sg, px, t, o + static_cast<size_t>(t) * a.rows, a.rows); break;
      case 7: q8p_tile<7>(wg, sg, px, t, o + static_cast<size_t>(t) * a.rows, a.rows); break;
      default: break;
    }
  }
  for (int r = r0 > full ? r0 : full; r < r1; r++) q8p_tail_row(a, px, r);
}

// Quantizes every activation row once per call (on the calling thread, before the workers start).
// `slot` keeps the jobs of one matmul_many dispatch apart.
static void prepare_vnni(MatmulArgs& a, int slot) {
  if (a.dtype == DT_Q8P || a.dtype == DT_Q8) {
    thread_local std::deque<PackedX> packed;  // grows without moving earlier slots
    if (packed.size() <= static_cast<size_t>(slot)) packed.resize(slot + 1);
    quantize_packed_x(a.x, a.n, a.cols, packed[slot]);
    a.prepared = &packed[slot];
    return;
  }
  if (a.dtype != DT_Q4) return;
  thread_local std::vector<std::vector<QuantX>> slots;
  if (slots.size() <= static_cast<size_t>(slot)) slots.resize(slot + 1);
  std::vector<QuantX>& qxs = slots[slot];
  if (qxs.size() < static_cast<size_t>(a.n)) qxs.resize(a.n);
  for (int t = 0; t < a.n; t++) quantize_x<DT_Q4>(a.x + static_cast<size_t>(t) * a.cols, a.cols, qxs[t]);
  a.prepared = qxs.data();
}

template <int DT>
static void vnni_rows(const MatmulArgs& a, int r0, int r1) {
  const QuantX* qxs = static_cast<const QuantX*>(a.prepared);
  const size_t rb = DT == DT_Q8 ? static_cast<size_t>(a.cols) : static_cast<size_t>(a.cols) / 2;
  const int nb = a.cols / 32;
  constexpr int R = 4;
  // The R rows of a tile come from R contiguous sub-ranges so that each memory stream reads
  // consecutive rows (see rows_impl in isa_body.inc); tokens innermost, so a tile's weights stay
  // in L1/L2 while every token uses them.
  const int m = r1 - r0;
  const int S = m >= 2 * R ? m / R : 0;
  for (int j = 0; j < S; j++) {
    const uint8_t* rp[R];
    const uint16_t* sp[R];
    for (int i = 0; i < R; i++) {
      const int r = r0 + i * S + j;
      rp[i] = a.w + static_cast<size_t>(r) * rb;
      sp[i] = a.scales + static_cast<size_t>(r) * nb;
    }
    for (int t = 0; t < a.n; t++)
      vnni_tile<DT, R>(rp, sp, nb, qxs[t], a.out + static_cast<size_t>(t) * a.rows + r0 + j, S);
  }
  for (int r = r0 + R * S; r < r1; r++) {
    const uint8_t* rp = a.w + static_cast<size_t>(r) * rb;
    const uint16_t* sp = a.scales + static_cast<size_t>(r) * nb;
    for (int t = 0; t < a.n; t++)
      vnni_tile<DT, 1>(&rp, &sp, nb, qxs[t], a.out + static_cast<size_t>(t) * a.rows + r, 1);
  }
}

// ---- Plain (row-major) q8 with the packed kernel's exact arithmetic ----
// Weights nobody packed (an expert store's slots: packing every paged-in expert would cost a
// read-and-write pass per load). Each 64-byte segment of a row is two blocks; vpdpbusd leaves 8
// partial sums per block in the lanes, and a transpose-and-add over 16 rows turns them into one
// int32 per (row, block): exactly the packed kernel's sums, so the float steps that follow (same
// order) give bit-identical results.
// s[i]: 16 lanes of row i's partial sums (lanes 0-7 block b, 8-15 block b+1) -> lo/hi: the 16
// rows' sums of block b / b+1.
static inline void reduce16(const __m512i s[16], __m512i& lo, __m512i& hi) {
  __m512i t[8], u[4];
  for (int j = 0; j < 8; j++)
    t[j] = _mm512_add_epi32(_mm512_unpacklo_epi32(s[2 * j], s[2 * j + 1]), _mm512_unpackhi_epi32(s[2 * j], s[2 * j + 1]));
  // t[j], 128-bit lane L: rows 2j, 2j+1 (pairs of dwords of lane L added).
  for (int k = 0; k < 4; k++)
    u[k] = _mm512_add_epi32(_mm512_unpacklo_epi64(t[2 * k], t[2 * k + 1]), _mm512_unpackhi_epi64(t[2 * k], t[2 * k + 1]));
  // u[k], lane L: rows 4k..4k+3, each summed over the 4 dwords of lane L. Lanes 0+1 are block b,
  // 2+3 block b+1.
  for (int k = 0; k < 4; k++) u[k] = _mm512_add_epi32(u[k], _mm512_shuffle_i32x4(u[k], u[k], 0xB1));
  const __m512i w01 = _mm512_shuffle_i32x4(u[0], u[1], 0x88), w23 = _mm512_shuffle_i32x4(u[2], u[3], 0x88);
  lo = _mm512_shuffle_i32x4(w01, w23, 0x88);
  hi = _mm512_shuffle_i32x4(w01, w23, 0xDD);
}

// 16 rows starting at r, tokens [t0, t0 + T), T <= 4.
template <int T>
static inline void q8rm_tile(const MatmulArgs& a, const PackedX& px, int r, int t0, const uint16_t* sc) {
  const int nb = px.nb;
  const uint8_t* w0 = a.w + static_cast<size_t>(r) * a.cols;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[T];
  for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
  alignas(64) uint8_t wt[16 * 64];  // the segment's 16 rows, offset to unsigned, reused per token
  for (int b = 0; b < nb; b += 2) {
    const bool pair = b + 1 < nb;
    const __mmask64 m = pair ? ~0ULL : 0xFFFFFFFFULL;
    for (int i = 0; i < 16; i++) {
      const uint8_t* p = w0 + static_cast<size_t>(i) * a.cols + b * 32;
      prefetch(p + kQ8pPfd / 8);
      _mm512_store_si512(wt + i * 64, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, p), flip));
    }
    const __m512 dw0 = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc + b * 16)));
    const __m512 dw1 = pair ? _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc + (b + 1) * 16)))
                            : _mm512_setzero_ps();
    for (int t = 0; t < T; t++) {
      const size_t tb = static_cast<size_t>(t0 + t) * nb + b;
      const __m512i x = _mm512_maskz_loadu_epi8(m, px.q.data() + tb * 32);
      __m512i sums[16];
      for (int i = 0; i < 16; i++) sums[i] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_load_si512(wt + i * 64), x);
      __m512i lo, hi;
      reduce16(sums, lo, hi);
      lo = _mm512_add_epi32(lo, _mm512_set1_epi32(px.corr[tb]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo), _mm512_mul_ps(dw0, _mm512_set1_ps(px.d[tb])), acc[t]);
      if (pair) {
        hi = _mm512_add_epi32(hi, _mm512_set1_epi32(px.corr[tb + 1]));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi), _mm512_mul_ps(dw1, _mm512_set1_ps(px.d[tb + 1])), acc[t]);
      }
    }
  }
  for (int t = 0; t < T; t++) _mm512_storeu_ps(a.out + static_cast<size_t>(t0 + t) * a.rows + r, acc[t]);
}

static void q8rm_rows(const MatmulArgs& a, int r0, int r1) {
  const PackedX& px = *static_cast<const PackedX*>(a.prepared);
  const int nb = px.nb;
  std::vector<uint16_t> sc(static_cast<size_t>(16) * nb);  // the tile's scales, [block][row]
  int r = r0;
  for (; r + 16 <= r1; r += 16) {
    for (int i = 0; i < 16; i++)
      for (int b = 0; b < nb; b++) sc[b * 16 + i] = a.scales[static_cast<size_t>(r + i) * nb + b];
    int t = 0;
    for (; t + 4 <= a.n; t += 4) q8rm_tile<4>(a, px, r, t, sc.data());
    switch (a.n - t) {
      case 1: q8rm_tile<1>(a, px, r, t, sc.data()); break;
      case 2: q8rm_tile<2>(a, px, r, t, sc.data()); break;
      case 3: q8rm_tile<3>(a, px, r, t, sc.data()); break;
      default: break;
    }
  }
  for (; r < r1; r++) q8p_tail_row(a, px, r);
}

// q4: row-major int8 kernel; q8: packed (uploaded weights) or plain (expert slots), same numbers.
static void matmul_rows_vnni(const MatmulArgs& a, int r0, int r1) {
  if (a.dtype == DT_Q4) return vnni_rows<DT_Q4>(a, r0, r1);
  if (a.dtype == DT_Q8P) return q8p_rows(a, r0, r1);
  if (a.dtype == DT_Q8) return q8rm_rows(a, r0, r1);
  matmul_rows(a, r0, r1);
}


// ---- Packing q8 into DT_Q8P (once per weight: at upload, and for every expert paged in) ----
// A group's 16 rows, 64 bytes each (two blocks), are a 16x16 matrix of dwords; its transpose is
// the packed order (dword j of the segment = columns 4j..4j+3 = block j/8, k = j%8). Four stages
// of in-register shuffles, ~1 KiB per 64 instructions: an expert pages in at memory speed.
static inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    u[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  // u[4i + m], 128-bit lane L: dword 4L + m of rows 4i..4i+3. Gather lane L of the four u's.
  for (int m = 0; m < 4; m++) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x44), v1 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xEE);
    const __m512i v2 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x44),
                  v3 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xEE);
    r[0 + m] = _mm512_shuffle_i32x4(v0, v2, 0x88);
    r[4 + m] = _mm512_shuffle_i32x4(v0, v2, 0xDD);
    r[8 + m] = _mm512_shuffle_i32x4(v1, v3, 0x88);
    r[12 + m] = _mm512_shuffle_i32x4(v1, v3, 0xDD);
  }
}

static void pack_q8_impl(uint8_t* data, uint8_t* scales, int rows, int cols) {
  const int nb = cols / 32;
  const size_t gbytes = static_cast<size_t>(16) * cols;
  thread_local std::vector<uint8_t> w;
  thread_local std::vector<uint16_t> s;
  w.resize(gbytes);
  s.resize(static_cast<size_t>(16) * nb);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int g = 0; g < rows / 16; g++) {
    uint8_t* dg = data + g * gbytes;
    uint8_t* sg = scales + static_cast<size_t>(g) * 32 * nb;
    std::memcpy(w.data(), dg, gbytes);
    std::memcpy(s.data(), sg, s.size() * 2);
    for (int b = 0; b < nb; b += 2) {
      // Two blocks per 64-byte row segment; an odd last block is half a segment (8 dwords).
      const __mmask16 m = b + 1 < nb ? 0xFFFF : 0x00FF;
      __m512i r[16];
      for (int i = 0; i < 16; i++) r[i] = _mm512_maskz_loadu_epi32(m, w.data() + static_cast<size_t>(i) * cols + b * 32);
      transpose16(r);
      for (int j = 0; j < (b + 1 < nb ? 16 : 8); j++)
        _mm512_storeu_si512(dg + static_cast<size_t>(b) * 512 + j * 64, _mm512_xor_si512(r[j], flip));
    }
    for (int b = 0; b < nb; b++)
      for (int i = 0; i < 16; i++) std::memcpy(sg + (b * 16 + i) * 2, &s[static_cast<size_t>(i) * nb + b], 2);
  }
}

}  // namespace avx512vnni_isa

void pack_q8(uint8_t* data, uint8_t* scales, int rows, int cols) { avx512vnni_isa::pack_q8_impl(data, scales, rows, cols); }

const KernelTable kAvx512VnniKernels = {"avx512vnni", avx512vnni_isa::matmul_rows_vnni, avx512vnni_isa::prepare_vnni, avx512vnni_isa::attend, avx512vnni_isa::read_sum,
                                    avx512vnni_isa::exp_sub_sum, avx512vnni_isa::swiglu};

}  // namespace moe

#pragma GCC pop_options
