// cuBLAS loaded at run time with dlopen: no cuBLAS headers are needed to build, and the addon loads
// on machines without cuBLAS (the device then uses its own GEMM kernel). Only the prototypes used
// are declared, with cuBLAS's documented ABI (cublas_api.h, v2 entry points).
#pragma once
#include <cuda_runtime.h>

#include <string>

namespace moecuda {

struct CublasContext;
using cublasHandle_t = CublasContext*;
using cublasStatus_t = int;  // CUBLAS_STATUS_SUCCESS = 0
enum cublasOperation_t : int { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };

struct Cublas {
  cublasStatus_t (*create)(cublasHandle_t*) = nullptr;
  cublasStatus_t (*destroy)(cublasHandle_t) = nullptr;
  cublasStatus_t (*setStream)(cublasHandle_t, cudaStream_t) = nullptr;
  cublasStatus_t (*sgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const float*,
                          const float*, int, const float*, int, const float*, float*, int) = nullptr;
  cublasHandle_t handle = nullptr;
  std::string path;   // the library that loaded
  std::string error;  // why not, when it did not
  bool ok() const { return handle != nullptr; }
};

// Tries MOE_CUBLAS_PATH, then libcublas.so.13 / .12 / libcublas.so on the loader's search path.
// On success the handle is bound to `stream`.
void load_cublas(Cublas& cb, cudaStream_t stream);
void unload_cublas(Cublas& cb);

}  // namespace moecuda
