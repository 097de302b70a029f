// Shared declarations of the CPU device's native kernels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace moe {

enum DType : int { DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2, DT_Q8 = 3, DT_Q4 = 4, DT_Q8P = 5, DT_Q4P = 6 };

// DT_Q8P: q8 repacked for vpdpbusd (pack_quantized; only the avx512vnni kernels read it). Rows in
// groups of 16: the 16*cols bytes of group g keep their place, but block b (32 columns) of it is
// 512 bytes at g*16*cols + b*512 whose byte k*64 + r*4 + e is w[16g + r][32b + 4k + e] ^ 0x80
// (offset to unsigned), and its 16 scales sit at (g*nb + b)*16 + r. One 64-byte load then holds 4
// columns of 16 rows, so a vpdpbusd advances 16 dot products and a block ends in one vector FMA
// with no horizontal sums. Rows past the last full group (rows % 16) stay as plain q8.
// DT_Q4P: q4 the same way (pack_quantized): block b of group g is 256 bytes at g*16*cols/2 + b*256,
// whose byte k*64 + r*4 + e is byte 4k + e of row 16g + r's block (low nibble: element 4k + e,
// high nibble: element 16 + 4k + e; no offset needed, nibbles are q + 8).

struct MatmulArgs {
  int dtype;
  const uint8_t* w;        // row-major [rows, cols] in the dtype's layout
  const uint16_t* scales;  // f16, rows*cols/32 (q8/q4 only)
  int rows;
  int cols;
  const float* x;  // [n, cols]
  int n;
  float* out;  // [n, rows]
  // Set by KernelTable::prepare (once per call, before the threads start), read by matmul_rows.
  const void* prepared = nullptr;
};

// One sequence's attention: queries [nTok, nHeads, headDim] at positions pos0.., keys/values in its
// KV cache [pos, nKvHeads, headDim].
struct AttentionArgs {
  const float* q;
  // K/V cache elements: f32, or IEEE half bits when kvF16 (half the memory and the bytes a step
  // reads; converted exactly to f32 as they are loaded, so the arithmetic is the f32 path's).
  const void* k;
  const void* v;
  bool kvF16 = false;
  float* out;
  int nTok, nHeads, nKvHeads, headDim, pos0;
  float scale;
  int chunk, window;
  // Where k and v rows sit: elements from one position to the next (0: nKvHeads * headDim, the cache
  // layout), and the KV head k and v start at (a copy of one head's rows starts at that head).
  size_t kvRow = 0;
  int kvHead0 = 0;
};

// The vectorised kernels one instruction set provides. Each runs single-threaded on a slice;
// threading is done by the caller (ops.cc) so that no ISA-specific code sits in parallel regions.
struct KernelTable {
  const char* name;
  // out rows [r0, r1) for all n tokens.
  void (*matmul_rows)(const MatmulArgs& a, int r0, int r1);
  // Optional per-call setup shared by all threads (e.g. quantizing the activations); may be null.
  // Jobs prepared together (matmul_many) use distinct slots 0, 1, ...
  void (*prepare)(MatmulArgs& a, int slot);
  // Attention of query token t for KV heads [h0, h1) and the query heads sharing them (each K/V
  // row slice is loaded once for them all). `scores` holds (h1 - h0) * group * (pos0 + nTok) floats.
  void (*attend)(const AttentionArgs& a, int t, int h0, int h1, float* scores);
  // Sum of n floats, streaming (memory bandwidth probe).
  float (*read_sum)(const float* p, size_t n);
  // x[i] = exp(x[i] - m), returns the sum.
  float (*exp_sub_sum)(float* x, int n, float m);
  // out = silu(gate) * up.
  void (*swiglu)(float* out, const float* gate, const float* up, size_t n);
  // dst = src as IEEE half bits, rounded to nearest even (rows stored into an f16 KV cache).
  void (*store_f16)(uint16_t* dst, const float* src, size_t n);
};

extern const KernelTable kScalarKernels;
extern const KernelTable kAvx2Kernels;
extern const KernelTable kAvx512Kernels;
extern const KernelTable kAvx512VnniKernels;

// Picks the best table this CPU supports (MOE_ISA=scalar|avx2|avx512 forces one, if supported).
const KernelTable* best_kernels();
// nullptr when the CPU lacks the instruction set.
const KernelTable* kernels_by_name(const char* name);

// Rewrites q8 (dtype DT_Q8) or q4 (DT_Q4) data/scales of a [rows, cols] matrix in place into the
// DT_Q8P / DT_Q4P layout (any alignment; needs avx512vnni: only those kernels read the result).
void pack_quantized(int dtype, uint8_t* data, uint8_t* scales, int rows, int cols);
// The same over the 16-row groups in parallel (ops.cc).
void pack_quantized_parallel(int threads, int dtype, uint8_t* data, uint8_t* scales, int rows, int cols);

// Ops (ops.cc). `threads` is the device's thread count for this call.
void matmul(const KernelTable* k, int threads, const MatmulArgs& a);
// Independent matmuls (prepared here) in one parallel dispatch; each row's result is exactly
// matmul()'s.
void matmul_many(const KernelTable* k, int threads, std::vector<MatmulArgs>& jobs);
void rmsnorm(int threads, float* out, const float* x, const float* weight, int rows, int dim, float eps);
void rope(float* x, int nTok, int nHeads, int headDim, const int32_t* positions, const float* invFreq, int half,
          bool neox);
// Several sequences at once: work items are (sequence, token, range of KV heads), spread over the threads.
void attention_many(const KernelTable* k, int threads, const std::vector<AttentionArgs>& seqs);
void swiglu(const KernelTable* k, int threads, float* out, const float* gate, const float* up, size_t len);
void add_scaled(float* out, const float* a, size_t len, float scale);
// dst row r = src row rows[r] * scales[r] (scales null: a copy).
void gather_rows(float* dst, const float* src, const int32_t* rows, int count, int dim, const float* scales);
// dst row rows[r] += src row r * scales[r] (null: 1), in order of r; each row as add_scaled does it.
void scatter_add_rows(float* dst, const float* src, const int32_t* rows, int count, int dim, const float* scales);
void route(const float* logits, int nTok, int nExperts, int k, bool sigmoid, bool renormalize, int32_t* outIds,
           float* outWeights);
double mem_read_bandwidth(const KernelTable* k, size_t bytes, int threads, int passes);

}  // namespace moe
