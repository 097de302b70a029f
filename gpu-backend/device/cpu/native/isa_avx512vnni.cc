// AVX-512 VNNI kernels: as the avx512 table, except q8 and q4 matmuls, which follow llama.cpp:
// each activation row is quantized to int8 per 32-block (Q8_0 style, d = amax/127, round to
// nearest even, scale kept in f32), and weight blocks are multiplied with vpdpbusd (64 int8
// products per instruction) before one float scale per block. That is what lets the matvecs keep
// up with memory and batched steps run ~2x faster; the price is the activation rounding
// (|error| <= amax/254 per element), the same trade llama.cpp makes. Used for every n, so prefill
// and decode give identical numbers.
//
// Weights come packed (DT_Q8P / DT_Q4P, layout in kernels.h: what upload() and the expert store
// hand over) or plain (the GGUF row-major blocks, e.g. weights left in JS memory); both give the
// same numbers bit for bit: every (row, block) gets the exact int32 sum of its products, then
// acc = fma(float(sum), d_w * d_x, acc) over the blocks in order. Selected only when the CPU
// reports avx512f, avx512bw, avx512vl and avx512vnni.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <deque>
#include <vector>

#include "kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")

namespace moe {
namespace avx512vnni_isa {

#include "avx512_vec.inc"
#include "isa_body.inc"

// The activations of one matmul call, quantized per (token, block).
struct QuantX {
  std::vector<int8_t> q;     // [n, cols]
  std::vector<int32_t> sum;  // [n, nb]: sum of the block's q (undoes the weights' unsigned offset)
  std::vector<float> d;      // [n, nb]
  int cols = 0, nb = 0;
};

static void quantize_x(const float* x, int n, int cols, QuantX& qx) {
  const int nb = cols / 32;
  qx.cols = cols;
  qx.nb = nb;
  qx.q.resize(static_cast<size_t>(n) * cols);
  qx.sum.resize(static_cast<size_t>(n) * nb);
  qx.d.resize(static_cast<size_t>(n) * nb);
  for (size_t tb = 0; tb < static_cast<size_t>(n) * nb; tb++) {
    const float* xb = x + tb * 32;
    const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
    const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
    const __m512 idv = _mm512_set1_ps(id);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, idv)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, idv));
    const __m128i b0 = _mm512_cvtsepi32_epi8(q0), b1 = _mm512_cvtsepi32_epi8(q1);
    int8_t* qb = qx.q.data() + tb * 32;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qb), b0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qb + 16), b1);
    qx.sum[tb] = _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_cvtepi8_epi32(b0), _mm512_cvtepi8_epi32(b1)));
    qx.d[tb] = d;
  }
}

// Per dtype: weight bytes per block, and the unsigned offset the kernels see the weights with
// (q8 is stored +128 when packed and offset on the fly when plain; q4 nibbles are q + 8 anyway).
template <int DT>
constexpr int kBlockBytes = DT == DT_Q8 ? 32 : 16;
template <int DT>
constexpr int kOffset = DT == DT_Q8 ? 128 : 8;

// Prefetch distance in the packed weight stream (one stream per thread).
constexpr size_t kPfd = 2048;
// A tile of several tokens spends ~8x longer per byte, so the same distance in bytes is too short
// a time to cover DRAM latency: 8 KiB ahead made 1024x1024 n=16 matmuls from memory ~1.2-1.3x
// faster (52 -> 46 us; 4096x1024 205 -> 150 us).
constexpr size_t kPfdBatched = 8192;
template <int T>
constexpr size_t kPfdFor = T >= 4 ? kPfdBatched : kPfd;
// A matvec-like tile (a few tokens) reads each weight byte once: fetch it non-temporally (less
// pollution of the caches the rest of the step lives in). Decode steps measured 3-5% faster here
// (one stream: 7.62 -> 7.34 and 6.38 -> 6.06 ms; eight: 24.6 -> 21.6 ms; alternating runs).
// Batched tiles re-read a group for each further 8 tokens, so they keep the line in every level.
template <int T>
static inline void prefetch_weights(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p), T >= 4 ? _MM_HINT_T0 : _MM_HINT_NTA);
}

// Mask of the first n bytes of a 64-byte load (n may be <= 0 or >= 64).
static inline __mmask64 first_bytes(int n) { return n >= 64 ? ~0ULL : n <= 0 ? 0ULL : (1ULL << n) - 1; }

static inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// ---- Packed: 16 rows (one group) x T tokens starting at t0; out[token][row], token stride ldo ----
// q8: a block is 8 vectors (4 columns of 16 rows each). q4: 4 vectors, each byte holding elements
// j (low nibble) and j + 16 (high nibble): 8 vectors once split. Either way 8 vpdpbusd per block.
template <int DT, int T>
static inline void packed_tile(const uint8_t* wg, const uint16_t* sg, const QuantX& qx, int t0, float* out, int ldo) {
  constexpr int BB = kBlockBytes<DT> * 16;
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  __m512 acc[T];
  for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
  const int nb = qx.nb;
  for (int b = 0; b < nb; b++) {
    const uint8_t* wb = wg + static_cast<size_t>(b) * BB;
    // Only the first pass over a group reads it from memory; later token tiles find it in cache.
    if (t0 == 0)
      for (int o = 0; o < BB; o += 64) prefetch_weights<T>(wb + kPfdFor<T> + o);
    __m512i w[8];
    int xo[8];  // activation offset within the block for each weight vector
    if constexpr (DT == DT_Q8) {
      for (int k = 0; k < 8; k++) {
        w[k] = _mm512_loadu_si512(wb + k * 64);
        xo[k] = 4 * k;
      }
    } else {
      for (int k = 0; k < 4; k++) {
        const __m512i v = _mm512_loadu_si512(wb + k * 64);
        w[k] = _mm512_and_si512(v, m4);
        w[4 + k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        xo[k] = 4 * k;
        xo[4 + k] = 16 + 4 * k;
      }
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sg + b * 16)));
    for (int t = 0; t < T; t++) {
      const size_t tb = static_cast<size_t>(t0 + t) * nb + b;
      const int8_t* xq = qx.q.data() + tb * 32;
      // Two independent chains (int adds are exact, so the split never changes the result).
      __m512i s0 = _mm512_set1_epi32(-kOffset<DT> * qx.sum[tb]), s1 = _mm512_setzero_si512();
      for (int k = 0; k < 4; k++) s0 = _mm512_dpbusd_epi32(s0, w[k], bcast4(xq + xo[k]));
      for (int k = 4; k < 8; k++) s1 = _mm512_dpbusd_epi32(s1, w[k], bcast4(xq + xo[k]));
      const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(qx.d[tb]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), scale, acc[t]);
    }
  }
  for (int t = 0; t < T; t++) _mm512_storeu_ps(out + static_cast<size_t>(t) * ldo, acc[t]);
}

// One plain row (rows % 16 of a packed weight stay plain): the same arithmetic, one lane at a time.
template <int DT>
static void plain_row(const MatmulArgs& a, const QuantX& qx, int r) {
  const int nb = qx.nb;
  const uint8_t* w = a.w + static_cast<size_t>(r) * nb * kBlockBytes<DT>;
  const uint16_t* sc = a.scales + static_cast<size_t>(r) * nb;
  for (int t = 0; t < a.n; t++) {
    float acc = 0.f;
    for (int b = 0; b < nb; b++) {
      const size_t tb = static_cast<size_t>(t) * nb + b;
      const int8_t* xq = qx.q.data() + tb * 32;
      const uint8_t* wb = w + b * kBlockBytes<DT>;
      // Unsigned weights times signed activations, less the offset: the packed kernel's sum. (The
      // signed-times-signed form of this loop gave wrong sums with GCC 12.2 at -O3, apparently
      // vectorized with vpdpbusd, which multiplies unsigned by signed.)
      int32_t s = -kOffset<DT> * qx.sum[tb];
      if constexpr (DT == DT_Q8) {
        for (int j = 0; j < 32; j++) s += static_cast<uint8_t>(wb[j] ^ 0x80) * xq[j];
      } else {
        for (int j = 0; j < 16; j++) s += (wb[j] & 15) * xq[j] + (wb[j] >> 4) * xq[16 + j];
      }
      acc = std::fma(static_cast<float>(s), half_to_float(sc[b]) * qx.d[tb], acc);
    }
    a.out[static_cast<size_t>(t) * a.rows + r] = acc;
  }
}

// Rows [r0, r1) of a packed weight: r0 is a multiple of 16, r1 too unless it is a.rows (the
// chunking keeps groups whole).
template <int DT>
static void packed_rows(const MatmulArgs& a, int r0, int r1) {
  const QuantX& qx = *static_cast<const QuantX*>(a.prepared);
  const size_t rowBytes = static_cast<size_t>(qx.nb) * kBlockBytes<DT>;
  const int full = a.rows / 16 * 16;
  const int gend = r1 < full ? r1 : full;
  // A chunk starts a new stream: fetch what the tiles' prefetches will not have asked for.
  if (a.n >= 4 && r0 < gend) {
    const uint8_t* w0 = a.w + r0 * rowBytes;
    const size_t ahead = std::min(kPfdBatched, static_cast<size_t>(gend - r0) * rowBytes);
    for (size_t o = 0; o < ahead; o += 64) prefetch(w0 + o);
  }
  for (int r = r0; r < gend; r += 16) {
    const uint8_t* wg = a.w + r * rowBytes;
    const uint16_t* sg = a.scales + static_cast<size_t>(r) * qx.nb;
    float* o = a.out + r;
    int t = 0;
    for (; t + 8 <= a.n; t += 8) packed_tile<DT, 8>(wg, sg, qx, t, o + static_cast<size_t>(t) * a.rows, a.rows);
    float* ot = o + static_cast<size_t>(t) * a.rows;
    switch (a.n - t) {
      case 1: packed_tile<DT, 1>(wg, sg, qx, t, ot, a.rows); break;
      case 2: packed_tile<DT, 2>(wg, sg, qx, t, ot, a.rows); break;
      case 3: packed_tile<DT, 3>(wg, sg, qx, t, ot, a.rows); break;
      case 4: packed_tile<DT, 4>(wg, sg, qx, t, ot, a.rows); break;
      case 5: packed_tile<DT, 5>(wg, sg, qx, t, ot, a.rows); break;
      case 6: packed_tile<DT, 6>(wg, sg, qx, t, ot, a.rows); break;
      case 7: packed_tile<DT, 7>(wg, sg, qx, t, ot, a.rows); break;
      default: break;
    }
  }
  for (int r = r0 > full ? r0 : full; r < r1; r++) plain_row<DT>(a, qx, r);
}

// ---- Plain (row-major GGUF blocks), 16 rows at a time ----
// vpdpbusd over a 64-byte segment of each row (q8: 2 blocks, q4: 4) leaves several partial sums
// per block in the lanes; a transpose-and-add over the 16 rows turns them into one int32 per
// (row, block): the packed kernel's exact sums, then the same float steps in the same order.
//
// reduce16: s[i] = row i's 16 lanes -> u[k], 128-bit lane L: rows 4k..4k+3 summed over lane L.
static inline void reduce16(const __m512i s[16], __m512i u[4]) {
  __m512i t[8];
  for (int j = 0; j < 8; j++)
    t[j] = _mm512_add_epi32(_mm512_unpacklo_epi32(s[2 * j], s[2 * j + 1]), _mm512_unpackhi_epi32(s[2 * j], s[2 * j + 1]));
  for (int k = 0; k < 4; k++)
    u[k] = _mm512_add_epi32(_mm512_unpacklo_epi64(t[2 * k], t[2 * k + 1]), _mm512_unpackhi_epi64(t[2 * k], t[2 * k + 1]));
}

// Lane L of u[0..3] (rows 0-3, 4-7, 8-11, 12-15) -> one vector of 16 rows, for each L.
static inline void gather_lanes(const __m512i u[4], __m512i out[4]) {
  const __m512i v0 = _mm512_shuffle_i32x4(u[0], u[1], 0x44), v1 = _mm512_shuffle_i32x4(u[0], u[1], 0xEE);
  const __m512i v2 = _mm512_shuffle_i32x4(u[2], u[3], 0x44), v3 = _mm512_shuffle_i32x4(u[2], u[3], 0xEE);
  out[0] = _mm512_shuffle_i32x4(v0, v2, 0x88);
  out[1] = _mm512_shuffle_i32x4(v0, v2, 0xDD);
  out[2] = _mm512_shuffle_i32x4(v1, v3, 0x88);
  out[3] = _mm512_shuffle_i32x4(v1, v3, 0xDD);
}

// 16 rows from r, tokens [t0, t0 + T); sc: the rows' scales as [block][row].
template <int DT, int T>
static inline void plain_tile(const MatmulArgs& a, const QuantX& qx, int r, int t0, const uint16_t* sc) {
  constexpr int BPS = 64 / kBlockBytes<DT>;  // blocks per 64-byte segment
  const int nb = qx.nb;
  const size_t rowBytes = static_cast<size_t>(nb) * kBlockBytes<DT>;
  const uint8_t* w0 = a.w + static_cast<size_t>(r) * rowBytes;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80)), m4 = _mm512_set1_epi8(0x0f);
  // q4: gather each block's low-nibble (elements 0-15) and high-nibble (16-31) activations.
  const __m512i loIdx = _mm512_setr_epi64(0, 1, 4, 5, 8, 9, 12, 13), hiIdx = _mm512_setr_epi64(2, 3, 6, 7, 10, 11, 14, 15);
  __m512 acc[T];
  for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
  alignas(64) uint8_t wt[2][16 * 64];  // the segment's rows, unsigned (q4: low, high nibbles)
  for (int b = 0; b < nb; b += BPS) {
    const int nblk = nb - b < BPS ? nb - b : BPS;
    const __mmask64 m = first_bytes(nblk * kBlockBytes<DT>);
    for (int i = 0; i < 16; i++) {
      const uint8_t* p = w0 + static_cast<size_t>(i) * rowBytes + b * kBlockBytes<DT>;
      prefetch(p + kPfd / 8);
      const __m512i v = _mm512_maskz_loadu_epi8(m, p);
      if constexpr (DT == DT_Q8) {
        _mm512_store_si512(wt[0] + i * 64, _mm512_xor_si512(v, flip));
      } else {
        _mm512_store_si512(wt[0] + i * 64, _mm512_and_si512(v, m4));
        _mm512_store_si512(wt[1] + i * 64, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
      }
    }
    for (int t = 0; t < T; t++) {
      const size_t tb = static_cast<size_t>(t0 + t) * nb + b;
      const int8_t* xq = qx.q.data() + tb * 32;
      __m512i sums[16];
      if constexpr (DT == DT_Q8) {
        const __m512i x = _mm512_maskz_loadu_epi8(first_bytes(nblk * 32), xq);
        for (int i = 0; i < 16; i++) sums[i] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_load_si512(wt[0] + i * 64), x);
      } else {
        // 4 blocks of activations = 128 bytes (two loads), split into low / high halves per block.
        const __m512i xa = _mm512_maskz_loadu_epi8(first_bytes(nblk * 32), xq);
        const __m512i xb = _mm512_maskz_loadu_epi8(first_bytes(nblk * 32 - 64), xq + 64);
        const __m512i xl = _mm512_permutex2var_epi64(xa, loIdx, xb), xh = _mm512_permutex2var_epi64(xa, hiIdx, xb);
        for (int i = 0; i < 16; i++)
          sums[i] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_load_si512(wt[0] + i * 64), xl),
                                        _mm512_load_si512(wt[1] + i * 64), xh);
      }
      __m512i u[4], blk[4];
      reduce16(sums, u);
      if constexpr (DT == DT_Q8) {
        // Lanes 0-1 are block b, 2-3 block b + 1.
        for (int k = 0; k < 4; k++) u[k] = _mm512_add_epi32(u[k], _mm512_shuffle_i32x4(u[k], u[k], 0xB1));
        const __m512i w01 = _mm512_shuffle_i32x4(u[0], u[1], 0x88), w23 = _mm512_shuffle_i32x4(u[2], u[3], 0x88);
        blk[0] = _mm512_shuffle_i32x4(w01, w23, 0x88);
        blk[1] = _mm512_shuffle_i32x4(w01, w23, 0xDD);
      } else {
        gather_lanes(u, blk);  // lane L is block b + L
      }
      for (int j = 0; j < nblk; j++) {
        const __m512i s = _mm512_add_epi32(blk[j], _mm512_set1_epi32(-kOffset<DT> * qx.sum[tb + j]));
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc + (b + j) * 16)));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(qx.d[tb + j])), acc[t]);
      }
    }
  }
  for (int t = 0; t < T; t++) _mm512_storeu_ps(a.out + static_cast<size_t>(t0 + t) * a.rows + r, acc[t]);
}

template <int DT>
static void plain_rows(const MatmulArgs& a, int r0, int r1) {
  const QuantX& qx = *static_cast<const QuantX*>(a.prepared);
  const int nb = qx.nb;
  thread_local std::vector<uint16_t> sc;
  sc.resize(static_cast<size_t>(16) * nb);
  int r = r0;
  for (; r + 16 <= r1; r += 16) {
    for (int i = 0; i < 16; i++)
      for (int b = 0; b < nb; b++) sc[b * 16 + i] = a.scales[static_cast<size_t>(r + i) * nb + b];
    int t = 0;
    for (; t + 4 <= a.n; t += 4) plain_tile<DT, 4>(a, qx, r, t, sc.data());
    switch (a.n - t) {
      case 1: plain_tile<DT, 1>(a, qx, r, t, sc.data()); break;
      case 2: plain_tile<DT, 2>(a, qx, r, t, sc.data()); break;
      case 3: plain_tile<DT, 3>(a, qx, r, t, sc.data()); break;
      default: break;
    }
  }
  for (; r < r1; r++) plain_row<DT>(a, qx, r);
}

// Quantizes every activation row once per call (on the calling thread, before the workers start).
// `slot` keeps the jobs of one matmul_many dispatch apart.
static void prepare_vnni(MatmulArgs& a, int slot) {
  if (a.dtype != DT_Q8 && a.dtype != DT_Q8P && a.dtype != DT_Q4 && a.dtype != DT_Q4P) return;
  thread_local std::deque<QuantX> slots;  // grows without moving earlier slots
  if (slots.size() <= static_cast<size_t>(slot)) slots.resize(slot + 1);
  quantize_x(a.x, a.n, a.cols, slots[slot]);
  a.prepared = &slots[slot];
}

static void matmul_rows_vnni(const MatmulArgs& a, int r0, int r1) {
  switch (a.dtype) {
    case DT_Q8P: return packed_rows<DT_Q8>(a, r0, r1);
    case DT_Q4P: return packed_rows<DT_Q4>(a, r0, r1);
    case DT_Q8: return plain_rows<DT_Q8>(a, r0, r1);
    case DT_Q4: return plain_rows<DT_Q4>(a, r0, r1);
    default: return matmul_rows(a, r0, r1);
  }
}

// ---- Packing (once per weight: at upload, and for every expert paged in) ----
// A group's 16 rows, 64 bytes each, are a 16x16 matrix of dwords; its transpose is the packed
// order (q8: dword j of a segment = block j/8, k = j%8; q4: block j/4, k = j%4), and the 16
// transposed vectors land contiguously. Four stages of in-register shuffles, ~64 instructions per
// KiB: a paged-in expert is packed at memory speed.
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
    const __m512i uu[4] = {u[m], u[4 + m], u[8 + m], u[12 + m]};
    __m512i o[4];
    gather_lanes(uu, o);
    for (int L = 0; L < 4; L++) r[4 * L + m] = o[L];
  }
}

template <int DT>
static void pack_impl(uint8_t* data, uint8_t* scales, int rows, int cols) {
  const int nb = cols / 32;
  const size_t rowBytes = static_cast<size_t>(nb) * kBlockBytes<DT>, gbytes = 16 * rowBytes;
  thread_local std::vector<uint8_t> w;
  thread_local std::vector<uint16_t> s;
  w.resize(gbytes);
  s.resize(static_cast<size_t>(16) * nb);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(DT == DT_Q8 ? 0x80 : 0));
  for (int g = 0; g < rows / 16; g++) {
    uint8_t* dg = data + g * gbytes;
    uint8_t* sg = scales + static_cast<size_t>(g) * 32 * nb;
    std::memcpy(w.data(), dg, gbytes);
    std::memcpy(s.data(), sg, s.size() * 2);
    for (size_t off = 0; off < rowBytes; off += 64) {
      // The last segment of a row may be partial (fewer blocks): fewer dwords, fewer vectors.
      const int dwords = rowBytes - off >= 64 ? 16 : static_cast<int>(rowBytes - off) / 4;
      const __mmask16 m = static_cast<__mmask16>((1u << dwords) - 1);
      __m512i r[16];
      for (int i = 0; i < 16; i++) r[i] = _mm512_maskz_loadu_epi32(m, w.data() + i * rowBytes + off);
      transpose16(r);
      for (int j = 0; j < dwords; j++) _mm512_storeu_si512(dg + off * 16 + j * 64, _mm512_xor_si512(r[j], flip));
    }
    for (int b = 0; b < nb; b++)
      for (int i = 0; i < 16; i++) std::memcpy(sg + (b * 16 + i) * 2, &s[static_cast<size_t>(i) * nb + b], 2);
  }
}

}  // namespace avx512vnni_isa

void pack_quantized(int dtype, uint8_t* data, uint8_t* scales, int rows, int cols) {
  if (dtype == DT_Q8) avx512vnni_isa::pack_impl<DT_Q8>(data, scales, rows, cols);
  else avx512vnni_isa::pack_impl<DT_Q4>(data, scales, rows, cols);
}

const KernelTable kAvx512VnniKernels = {"avx512vnni",
                                        avx512vnni_isa::matmul_rows_vnni,
                                        avx512vnni_isa::prepare_vnni,
                                        avx512vnni_isa::attend,
                                        avx512vnni_isa::read_sum,
                                        avx512vnni_isa::exp_sub_sum,
                                        avx512vnni_isa::swiglu,
                                        avx512vnni_isa::store_f16};

}  // namespace moe

#pragma GCC pop_options
