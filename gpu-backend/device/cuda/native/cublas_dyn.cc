#include "cublas_dyn.h"

#include <dlfcn.h>

#include <cstdlib>
#include <vector>

namespace moecuda {

template <class F>
static bool sym(void* lib, const char* name, F& out) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  return out != nullptr;
}

void load_cublas(Cublas& cb, cudaStream_t stream) {
  std::vector<std::string> candidates;
  if (const char* p = std::getenv("MOE_CUBLAS_PATH"); p && *p) candidates.emplace_back(p);
  if (const char* off = std::getenv("MOE_CUBLAS"); off && std::string(off) == "0") {
    cb.error = "disabled by MOE_CUBLAS=0";
    return;
  }
  for (const char* n : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) candidates.emplace_back(n);
  void* lib = nullptr;
  std::string tried;
  for (const auto& c : candidates) {
    lib = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib) {
      cb.path = c;
      break;
    }
    const char* e = dlerror();
    tried += (tried.empty() ? "" : "; ") + std::string(e ? e : c);
  }
  if (!lib) {
    cb.error = "cuBLAS not found (" + tried + ")";
    return;
  }
  if (!sym(lib, "cublasCreate_v2", cb.create) || !sym(lib, "cublasDestroy_v2", cb.destroy) ||
      !sym(lib, "cublasSetStream_v2", cb.setStream) || !sym(lib, "cublasSgemm_v2", cb.sgemm)) {
    cb.error = "cuBLAS at " + cb.path + " lacks a v2 entry point";
    return;
  }
  cublasHandle_t h = nullptr;
  if (const int st = cb.create(&h); st != 0 || !h) {
    cb.error = "cublasCreate_v2 failed with status " + std::to_string(st);
    return;
  }
  if (const int st = cb.setStream(h, stream); st != 0) {
    cb.destroy(h);
    cb.error = "cublasSetStream_v2 failed with status " + std::to_string(st);
    return;
  }
  cb.handle = h;
  // The library stays loaded for the life of the process (cuBLAS keeps global state).
}

void unload_cublas(Cublas& cb) {
  if (cb.handle && cb.destroy) cb.destroy(cb.handle);
  cb.handle = nullptr;
}

}  // namespace moecuda
