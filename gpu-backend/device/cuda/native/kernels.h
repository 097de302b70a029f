// Launchers for the CUDA kernels (kernels.cu). Every launcher enqueues on `stream` and returns the
// launch error (cudaSuccess when queued); nothing here synchronizes.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace moecuda {

// Weight dtypes, same codes as the CPU addon: f32, f16, bf16, q8 (GGUF Q8_0), q4 (GGUF Q4_0).
enum DType : int { kF32 = 0, kF16 = 1, kBF16 = 2, kQ8 = 3, kQ4 = 4 };

// Tokens one matvec pass handles at once (register accumulators); larger n loops in passes.
constexpr int kMatvecTokens = 8;

// out[n, rows] = x[n, cols] . W^T with W stored as `dtype` (scales: f16 per 32 elements, q8/q4).
cudaError_t launch_matvec(cudaStream_t s, float* out, const float* x, int n, int dtype, int rows, int cols,
                          const void* w, const uint16_t* scales);
// As launch_matvec for q8/q4 weights, with the activations first quantized to int8 per 32-block
// exactly as the CPU's VNNI kernels do (so both devices compute the same integer block sums);
// `scratch` holds matvec_q8x_scratch_bytes(n, cols). Other dtypes fall back to launch_matvec.
size_t matvec_q8x_scratch_bytes(int n, int cols);
cudaError_t launch_matvec_q8x(cudaStream_t s, float* out, const float* x, int n, int dtype, int rows, int cols,
                              const void* w, const uint16_t* scales, void* scratch);
// out[len] = x rounded to int8 per 32-block as launch_matvec_q8x does, then scaled back to f32
// (len % 32 == 0): the prefill GEMM's activations for q8/q4 weights.
cudaError_t launch_fake_quantize_x(cudaStream_t s, float* out, const float* x, size_t len);
// Dequantize rows [r0, r0 + nr) of W into dst[nr, cols] f32 (for the cuBLAS / tiled GEMM path).
cudaError_t launch_dequant_rows(cudaStream_t s, float* dst, int dtype, int r0, int nr, int cols, const void* w,
                                const uint16_t* scales);
// Plain tiled SGEMM fallback when cuBLAS is absent: out[n, rows] (ldo) = x[n, cols] . Wf[rows, cols]^T.
cudaError_t launch_sgemm_nt(cudaStream_t s, float* out, int ldo, const float* x, const float* wf, int n, int rows,
                            int cols);
cudaError_t launch_rmsnorm(cudaStream_t s, float* out, const float* x, const float* weight, int rows, int dim,
                           float eps);
cudaError_t launch_rope(cudaStream_t s, float* x, int nTok, int nHeads, int headDim, const int32_t* positions,
                        const float* invFreq, int half, bool neox);
// Causal GQA attention. q/out [nTok, nHeads, headDim]; k/v cache [*, nKvHeads, headDim].
cudaError_t launch_attention(cudaStream_t s, const float* q, const float* k, const float* v, float* out, int nTok,
                             int nHeads, int nKvHeads, int headDim, int pos0, float scale, int chunk, int window);
cudaError_t launch_swiglu(cudaStream_t s, float* out, const float* gate, const float* up, size_t len);
cudaError_t launch_add_scaled(cudaStream_t s, float* out, const float* a, size_t len, float scale);
cudaError_t launch_route(cudaStream_t s, const float* logits, int nTok, int nExperts, int k, bool sigmoid,
                         bool renormalize, int32_t* outIds, float* outWeights);
// Deterministic pseudo-random fill (benchmarks): bytes of a weight, or f16 scales in [lo, hi).
cudaError_t launch_fill_bytes(cudaStream_t s, uint8_t* dst, size_t bytes, uint32_t seed);
cudaError_t launch_fill_f16(cudaStream_t s, uint16_t* dst, size_t count, uint32_t seed, float lo, float hi);
cudaError_t launch_fill_f32(cudaStream_t s, float* dst, size_t count, uint32_t seed, float lo, float hi);
// Streaming read of `bytes` (device memory bandwidth probe); result sink in `sink`.
cudaError_t launch_read_probe(cudaStream_t s, const float4* src, size_t count, float* sink);

}  // namespace moecuda
