// Node-API surface of the CPU device. Every op validates array types and lengths (a wrong size from
// JS must be a thrown error, never an out-of-bounds read or write) and then runs synchronously.
#include <napi.h>

#include <climits>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "kernels.h"
#include "memory.h"
#include "pool.h"
#include "read_direct.h"

namespace {
using namespace moe;

const KernelTable* const kIsas[] = {&kScalarKernels, &kAvx2Kernels, &kAvx512Kernels, &kAvx512VnniKernels};

[[noreturn]] void fail(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

template <class T>
constexpr napi_typedarray_type kind();
template <>
constexpr napi_typedarray_type kind<float>() {
  return napi_float32_array;
}
template <>
constexpr napi_typedarray_type kind<int32_t>() {
  return napi_int32_array;
}
template <>
constexpr napi_typedarray_type kind<uint16_t>() {
  return napi_uint16_array;
}
template <>
constexpr napi_typedarray_type kind<uint8_t>() {
  return napi_uint8_array;
}

// Typed-array data pointer, checked to hold at least `need` elements (its length in *len when
// asked). One napi_get_typedarray_info (not the wrapper's several calls): a decode step passes a
// few thousand arrays.
template <class T>
T* arr(const Napi::CallbackInfo& info, size_t i, size_t need, const char* what, size_t* len = nullptr) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(info.Env(), info[i], &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != kind<T>())
    fail(info.Env(), std::string(what) + ": wrong array type");
  if (length < need)
    fail(info.Env(), std::string(what) + ": has " + std::to_string(length) + " elements, needs " + std::to_string(need));
  if (len) *len = length;
  return static_cast<T*>(data);
}

// An optional array argument left out (null or undefined).
bool absent(const Napi::CallbackInfo& info, size_t i) { return info[i].IsNull() || info[i].IsUndefined(); }

int64_t num(const Napi::CallbackInfo& info, size_t i) {
  int64_t v = 0;
  if (napi_get_value_int64(info.Env(), info[i], &v) != napi_ok)
    fail(info.Env(), "argument " + std::to_string(i) + " must be a number");
  return v;
}
double fnum(const Napi::CallbackInfo& info, size_t i) {
  double v = 0;
  if (napi_get_value_double(info.Env(), info[i], &v) != napi_ok)
    fail(info.Env(), "argument " + std::to_string(i) + " must be a number");
  return v;
}

const KernelTable* isa_arg(const Napi::CallbackInfo& info, size_t i) {
  const int64_t k = num(info, i);
  if (k < 0 || k > 3) fail(info.Env(), "bad isa index");
  return kIsas[k];
}

int threads_arg(const Napi::CallbackInfo& info, size_t i) {
  const int64_t t = num(info, i);
  return t < 1 ? 1 : t > 256 ? 256 : static_cast<int>(t);
}

// The 8 arguments of one matmul from `base`: out, x, n, dtype, rows, cols, data, scales|null.
MatmulArgs matmul_args(const Napi::CallbackInfo& info, size_t base) {
  MatmulArgs a{};
  const int64_t n = num(info, base + 2), dtype = num(info, base + 3), rows = num(info, base + 4),
                cols = num(info, base + 5);
  if (n < 0 || rows < 0 || cols < 0 || dtype < 0 || dtype > 6) fail(info.Env(), "matmul: bad shape or dtype");
  const bool quant = dtype == DT_Q8 || dtype == DT_Q4 || dtype == DT_Q8P || dtype == DT_Q4P;
  if (quant && cols % 32 != 0) fail(info.Env(), "matmul: quantized cols must be a multiple of 32");
  const size_t elems = static_cast<size_t>(rows) * cols;
  const size_t bytes = dtype == DT_F32 ? elems * 4 : dtype == DT_Q8 || dtype == DT_Q8P ? elems
                                                                           : dtype == DT_Q4 || dtype == DT_Q4P ? elems / 2
                                                                                                               : elems * 2;
  a.out = arr<float>(info, base, static_cast<size_t>(n) * rows, "matmul out");
  a.x = arr<float>(info, base + 1, static_cast<size_t>(n) * cols, "matmul x");
  a.w = arr<uint8_t>(info, base + 6, bytes, "matmul weight data");
  a.scales =
      quant ? reinterpret_cast<const uint16_t*>(arr<uint8_t>(info, base + 7, elems / 32 * 2, "matmul scales")) : nullptr;
  if (quant && reinterpret_cast<uintptr_t>(a.scales) % 2 != 0) fail(info.Env(), "matmul: scales must be 2-byte aligned");
  a.dtype = static_cast<int>(dtype);
  a.rows = static_cast<int>(rows);
  a.cols = static_cast<int>(cols);
  a.n = static_cast<int>(n);
  return a;
}

// Packed weights are read only by the kernels that packed them.
void check_layout(const Napi::CallbackInfo& info, const KernelTable* k, const MatmulArgs& a) {
  if ((a.dtype == DT_Q8P || a.dtype == DT_Q4P) && k != &kAvx512VnniKernels)
    fail(info.Env(), std::string("matmul: packed weights need the avx512vnni kernels, not ") + k->name);
}

// matmul(isa, threads, out, x, n, dtype, rows, cols, data, scales|null)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  const KernelTable* k = isa_arg(info, 0);
  const int threads = threads_arg(info, 1);
  const MatmulArgs a = matmul_args(info, 2);
  check_layout(info, k, a);
  if (a.n > 0 && a.rows > 0) moe::matmul(k, threads, a);
  return info.Env().Undefined();
}

// matmulMany(isa, threads, count, ...count x the 8 matmul arguments): independent matmuls in one
// parallel dispatch. An output must not alias another job's input or output (not checked).
Napi::Value MatmulMany(const Napi::CallbackInfo& info) {
  const KernelTable* k = isa_arg(info, 0);
  const int threads = threads_arg(info, 1);
  const int64_t count = num(info, 2);
  if (count < 0 || info.Length() < 3 + 8 * static_cast<size_t>(count))
    fail(info.Env(), "matmulMany: expected 8 arguments per job");
  std::vector<MatmulArgs> jobs;
  jobs.reserve(count);
  for (int64_t j = 0; j < count; j++) {
    const MatmulArgs a = matmul_args(info, 3 + 8 * j);
    check_layout(info, k, a);
    if (a.n > 0 && a.rows > 0) jobs.push_back(a);
  }
  moe::matmul_many(k, threads, jobs);
  return info.Env().Undefined();
}

// packQuantized(data, scales, dtype, rows, cols, threads = 1): q8 (3) or q4 (4) -> the packed
// layout, in place (see DT_Q8P / DT_Q4P in kernels.h).
Napi::Value PackQuantized(const Napi::CallbackInfo& info) {
  const int64_t dtype = num(info, 2), rows = num(info, 3), cols = num(info, 4);
  if (dtype != DT_Q8 && dtype != DT_Q4) fail(info.Env(), "packQuantized: dtype must be q8 (3) or q4 (4)");
  if (rows < 0 || cols < 0 || cols % 32 != 0)
    fail(info.Env(), "packQuantized: bad shape (cols must be a multiple of 32)");
  const size_t elems = static_cast<size_t>(rows) * cols;
  uint8_t* data = arr<uint8_t>(info, 0, dtype == DT_Q8 ? elems : elems / 2, "packQuantized data");
  uint8_t* scales = arr<uint8_t>(info, 1, elems / 32 * 2, "packQuantized scales");
  if (!kernels_by_name("avx512vnni")) fail(info.Env(), "packQuantized: this CPU lacks avx512vnni");
  const int threads = info.Length() > 5 && info[5].IsNumber() ? threads_arg(info, 5) : 1;
  moe::pack_quantized_parallel(threads, static_cast<int>(dtype), data, scales, static_cast<int>(rows),
                               static_cast<int>(cols));
  return info.Env().Undefined();
}

// rmsnorm(out, x, weight|null, rows, dim, eps, threads = 1)
Napi::Value Rmsnorm(const Napi::CallbackInfo& info) {
  const int64_t rows = num(info, 3), dim = num(info, 4);
  if (rows < 0 || dim <= 0) fail(info.Env(), "rmsnorm: bad shape");
  float* out = arr<float>(info, 0, rows * dim, "rmsnorm out");
  const float* x = arr<float>(info, 1, rows * dim, "rmsnorm x");
  const float* w = absent(info, 2) ? nullptr : arr<float>(info, 2, dim, "rmsnorm weight");
  const int threads = info.Length() > 6 && info[6].IsNumber() ? threads_arg(info, 6) : 1;
  moe::rmsnorm(threads, out, x, w, static_cast<int>(rows), static_cast<int>(dim), static_cast<float>(fnum(info, 5)));
  return info.Env().Undefined();
}

// rope(x, nTok, nHeads, headDim, positions, invFreq, neox)
Napi::Value Rope(const Napi::CallbackInfo& info) {
  const int64_t nTok = num(info, 1), nHeads = num(info, 2), headDim = num(info, 3);
  if (nTok < 0 || nHeads < 0 || headDim <= 0) fail(info.Env(), "rope: bad shape");
  float* x = arr<float>(info, 0, nTok * nHeads * headDim, "rope x");
  const int32_t* pos = arr<int32_t>(info, 4, nTok, "rope positions");
  const float* inv = arr<float>(info, 5, 0, "rope invFreq");
  const size_t half = info[5].As<Napi::Float32Array>().ElementLength();
  if (2 * static_cast<int64_t>(half) > headDim) fail(info.Env(), "rope: 2*invFreq.length > headDim");
  moe::rope(x, static_cast<int>(nTok), static_cast<int>(nHeads), static_cast<int>(headDim), pos, inv,
            static_cast<int>(half), info[6].ToBoolean().Value());
  return info.Env().Undefined();
}

// The 14 arguments of one sequence's attention from `base`: q, k, v, out, nTok, nHeads, nKvHeads,
// headDim, pos0, scale, chunk, window, kNew|null, vNew|null. The caches are both Float32Array or
// both Uint16Array (f16 bits). kNew / vNew (f32, this call's nTok rows) are stored at rows pos0..
// here, on the calling thread, before any thread reads them (rounded to f16 for an f16 cache).
constexpr size_t kAttentionArgs = 14;

// One napi call, as in arr() (the wrappers' IsTypedArray + TypedArrayType took several per cache).
bool is_u16(const Napi::CallbackInfo& info, size_t i) {
  napi_typedarray_type type;
  return napi_get_typedarray_info(info.Env(), info[i], &type, nullptr, nullptr, nullptr, nullptr) == napi_ok &&
         type == napi_uint16_array;
}

AttentionArgs attention_args(const Napi::CallbackInfo& info, size_t base, const KernelTable* kt) {
  AttentionArgs a{};
  const int64_t nTok = num(info, base + 4), nHeads = num(info, base + 5), nKv = num(info, base + 6),
                hd = num(info, base + 7), pos0 = num(info, base + 8);
  if (nTok < 0 || nHeads <= 0 || nKv <= 0 || hd <= 0 || pos0 < 0 || nHeads % nKv != 0)
    fail(info.Env(), "attention: bad shape (nHeads must be a multiple of nKvHeads)");
  const size_t qn = static_cast<size_t>(nTok) * nHeads * hd, kvn = static_cast<size_t>(pos0 + nTok) * nKv * hd;
  a.q = arr<float>(info, base, qn, "attention q");
  a.kvF16 = is_u16(info, base + 1);
  if (is_u16(info, base + 2) != a.kvF16) fail(info.Env(), "attention: kCache and vCache must have one element type");
  void *k, *v;
  if (a.kvF16) {
    k = arr<uint16_t>(info, base + 1, kvn, "attention kCache");
    v = arr<uint16_t>(info, base + 2, kvn, "attention vCache");
  } else {
    k = arr<float>(info, base + 1, kvn, "attention kCache");
    v = arr<float>(info, base + 2, kvn, "attention vCache");
  }
  a.k = k;
  a.v = v;
  a.out = arr<float>(info, base + 3, qn, "attention out");
  a.nTok = static_cast<int>(nTok);
  a.nHeads = static_cast<int>(nHeads);
  a.nKvHeads = static_cast<int>(nKv);
  a.headDim = static_cast<int>(hd);
  a.pos0 = static_cast<int>(pos0);
  a.scale = static_cast<float>(fnum(info, base + 9));
  a.chunk = static_cast<int>(num(info, base + 10));
  a.window = static_cast<int>(num(info, base + 11));
  const bool knew = !absent(info, base + 12), vnew = !absent(info, base + 13);
  if (knew != vnew) fail(info.Env(), "attention: kNew and vNew come together");
  if (knew) {
    const size_t rows = static_cast<size_t>(nTok) * nKv * hd, at = static_cast<size_t>(pos0) * nKv * hd;
    const float* kn = arr<float>(info, base + 12, rows, "attention kNew");
    const float* vn = arr<float>(info, base + 13, rows, "attention vNew");
    if (a.kvF16) {
      kt->store_f16(static_cast<uint16_t*>(k) + at, kn, rows);
      kt->store_f16(static_cast<uint16_t*>(v) + at, vn, rows);
    } else {
      std::memmove(static_cast<float*>(k) + at, kn, rows * sizeof(float));
      std::memmove(static_cast<float*>(v) + at, vn, rows * sizeof(float));
    }
  }
  return a;
}

// attention(isa, threads, ...the 14 attention arguments)
Napi::Value Attention(const Napi::CallbackInfo& info) {
  const KernelTable* k = isa_arg(info, 0);
  const int threads = threads_arg(info, 1);
  if (info.Length() < 2 + kAttentionArgs) fail(info.Env(), "attention: expected 14 arguments after isa, threads");
  std::vector<AttentionArgs> seqs{attention_args(info, 2, k)};
  moe::attention_many(k, threads, seqs);
  return info.Env().Undefined();
}

// attentionMany(isa, threads, count, ...count x the 14 attention arguments): several sequences'
// attention in one parallel dispatch.
Napi::Value AttentionMany(const Napi::CallbackInfo& info) {
  const KernelTable* k = isa_arg(info, 0);
  const int threads = threads_arg(info, 1);
  const int64_t count = num(info, 2);
  if (count < 0 || info.Length() < 3 + kAttentionArgs * static_cast<size_t>(count))
    fail(info.Env(), "attentionMany: expected 14 arguments per sequence");
  std::vector<AttentionArgs> seqs;
  seqs.reserve(count);
  for (int64_t j = 0; j < count; j++) seqs.push_back(attention_args(info, 3 + kAttentionArgs * j, k));
  moe::attention_many(k, threads, seqs);
  return info.Env().Undefined();
}

// swiglu(out, gate, up, len, isa?, threads?)
Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  const int64_t len = num(info, 3);
  if (len < 0 || len > INT32_MAX) fail(info.Env(), "swiglu: bad length");
  const KernelTable* k = info.Length() > 4 && info[4].IsNumber() ? isa_arg(info, 4) : best_kernels();
  const int threads = info.Length() > 5 && info[5].IsNumber() ? threads_arg(info, 5) : 1;
  moe::swiglu(k, threads, arr<float>(info, 0, len, "swiglu out"), arr<float>(info, 1, len, "swiglu gate"),
              arr<float>(info, 2, len, "swiglu up"), static_cast<size_t>(len));
  return info.Env().Undefined();
}

// addScaled(out, a, len, scale)
Napi::Value AddScaled(const Napi::CallbackInfo& info) {
  const int64_t len = num(info, 2);
  if (len < 0) fail(info.Env(), "addScaled: bad length");
  moe::add_scaled(arr<float>(info, 0, len, "addScaled out"), arr<float>(info, 1, len, "addScaled a"),
                  static_cast<size_t>(len), static_cast<float>(fnum(info, 3)));
  return info.Env().Undefined();
}

// The row list of gatherRows / scatterAddRows: rows[0..count) index rows of `table` (tableLen
// floats, rows of dim), checked; scales (null: 1) has count entries.
const int32_t* row_list(const Napi::CallbackInfo& info, size_t i, int64_t count, int64_t dim, size_t tableLen,
                        const char* what) {
  const int32_t* rows = arr<int32_t>(info, i, count, what);
  const int64_t tableRows = static_cast<int64_t>(tableLen / dim);
  for (int64_t r = 0; r < count; r++)
    if (rows[r] < 0 || rows[r] >= tableRows)
      fail(info.Env(), std::string(what) + ": row " + std::to_string(rows[r]) + " out of range");
  return rows;
}

// gatherRows(dst, src, rows, count, dim, scales|null): dst row r = src row rows[r] (* scales[r]).
Napi::Value GatherRows(const Napi::CallbackInfo& info) {
  const int64_t count = num(info, 3), dim = num(info, 4);
  if (count < 0 || dim <= 0) fail(info.Env(), "gatherRows: bad shape");
  float* dst = arr<float>(info, 0, count * dim, "gatherRows dst");
  size_t srcLen = 0;
  const float* src = arr<float>(info, 1, 0, "gatherRows src", &srcLen);
  const int32_t* rows = row_list(info, 2, count, dim, srcLen, "gatherRows rows");
  const float* scales = absent(info, 5) ? nullptr : arr<float>(info, 5, count, "gatherRows scales");
  moe::gather_rows(dst, src, rows, static_cast<int>(count), static_cast<int>(dim), scales);
  return info.Env().Undefined();
}

// scatterAddRows(dst, src, rows, count, dim, scales|null): dst row rows[r] += src row r (* scales[r]),
// r in order (a row listed twice gets both additions, first one first).
Napi::Value ScatterAddRows(const Napi::CallbackInfo& info) {
  const int64_t count = num(info, 3), dim = num(info, 4);
  if (count < 0 || dim <= 0) fail(info.Env(), "scatterAddRows: bad shape");
  size_t dstLen = 0;
  float* dst = arr<float>(info, 0, 0, "scatterAddRows dst", &dstLen);
  const float* src = arr<float>(info, 1, count * dim, "scatterAddRows src");
  const int32_t* rows = row_list(info, 2, count, dim, dstLen, "scatterAddRows rows");
  const float* scales = absent(info, 5) ? nullptr : arr<float>(info, 5, count, "scatterAddRows scales");
  moe::scatter_add_rows(dst, src, rows, static_cast<int>(count), static_cast<int>(dim), scales);
  return info.Env().Undefined();
}

// route(logits, nTok, nExperts, k, sigmoid, renormalize, outIds, outWeights)
Napi::Value Route(const Napi::CallbackInfo& info) {
  const int64_t nTok = num(info, 1), nE = num(info, 2), k = num(info, 3);
  if (nTok < 0 || nE <= 0 || k <= 0 || k > nE) fail(info.Env(), "route: bad shape (need 0 < k <= nExperts)");
  moe::route(arr<float>(info, 0, nTok * nE, "route logits"), static_cast<int>(nTok), static_cast<int>(nE),
             static_cast<int>(k), info[4].ToBoolean().Value(), info[5].ToBoolean().Value(),
             arr<int32_t>(info, 6, nTok * k, "route outIds"), arr<float>(info, 7, nTok * k, "route outWeights"));
  return info.Env().Undefined();
}

// allocAligned(bytes, align = 4096) -> Uint8Array
Napi::Value AllocAligned(const Napi::CallbackInfo& info) {
  const int64_t bytes = num(info, 0);
  const int64_t align = info.Length() > 1 && info[1].IsNumber() ? num(info, 1) : 4096;
  if (bytes < 0) fail(info.Env(), "allocAligned: negative size");
  return moe::alloc_aligned(info.Env(), static_cast<size_t>(bytes), static_cast<size_t>(align));
}

// memReadBandwidth(bytes, threads, isa?, passes = 5) -> GB/s (best pass)
Napi::Value MemReadBandwidth(const Napi::CallbackInfo& info) {
  const int64_t bytes = num(info, 0);
  const int threads = threads_arg(info, 1);
  const KernelTable* k = info.Length() > 2 && info[2].IsNumber() ? isa_arg(info, 2) : best_kernels();
  if (bytes < 4096) fail(info.Env(), "memReadBandwidth: need at least 4096 bytes");
  const int64_t passes = info.Length() > 3 && info[3].IsNumber() ? num(info, 3) : 5;
  if (passes < 1 || passes > 1000) fail(info.Env(), "memReadBandwidth: passes must be 1..1000");
  return Napi::Number::New(info.Env(),
                           moe::mem_read_bandwidth(k, static_cast<size_t>(bytes), threads, static_cast<int>(passes)));
}

// prefetchWhenIdle(arrays: Uint8Array[]): at most kPrefetchRanges arrays (more are left out: a hint only)
Napi::Value PrefetchWhenIdle(const Napi::CallbackInfo& info) {
  if (!info[0].IsArray()) fail(info.Env(), "prefetchWhenIdle: expected an array of Uint8Arrays");
  Napi::Array a = info[0].As<Napi::Array>();
  const uint32_t n = std::min<uint32_t>(a.Length(), kPrefetchRanges);
  const void* ptrs[kPrefetchRanges];
  size_t lens[kPrefetchRanges];
  for (uint32_t i = 0; i < n; i++) {
    napi_typedarray_type type;
    void* data = nullptr;
    const Napi::Value v = a[i];
    if (napi_get_typedarray_info(info.Env(), v, &type, &lens[i], &data, nullptr, nullptr) != napi_ok ||
        type != napi_uint8_array)
      fail(info.Env(), "prefetchWhenIdle: expected an array of Uint8Arrays");
    ptrs[i] = data;
  }
  moe::prefetch_when_idle(ptrs, lens, static_cast<int>(n));
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Which instruction sets this CPU can run (index = isa argument of the ops), and the best one.
  Napi::Array avail = Napi::Array::New(env);
  const char* names[] = {"scalar", "avx2", "avx512", "avx512vnni"};
  uint32_t n = 0;
  for (const char* name : names)
    if (kernels_by_name(name)) avail.Set(n++, name);
  exports.Set("availableIsas", avail);
  exports.Set("bestIsa", best_kernels()->name);
  exports.Set("hardwareThreads", Napi::Number::New(env, std::thread::hardware_concurrency()));
  exports.Set("matmul", Napi::Function::New(env, Matmul));
  exports.Set("matmulMany", Napi::Function::New(env, MatmulMany));
  exports.Set("packQuantized", Napi::Function::New(env, PackQuantized));
  exports.Set("rmsnorm", Napi::Function::New(env, Rmsnorm));
  exports.Set("rope", Napi::Function::New(env, Rope));
  exports.Set("attention", Napi::Function::New(env, Attention));
  exports.Set("attentionMany", Napi::Function::New(env, AttentionMany));
  exports.Set("swiglu", Napi::Function::New(env, Swiglu));
  exports.Set("addScaled", Napi::Function::New(env, AddScaled));
  exports.Set("route", Napi::Function::New(env, Route));
  exports.Set("gatherRows", Napi::Function::New(env, GatherRows));
  exports.Set("scatterAddRows", Napi::Function::New(env, ScatterAddRows));
  exports.Set("allocAligned", Napi::Function::New(env, AllocAligned));
  exports.Set("readDirect", Napi::Function::New(env, moe::read_direct));
  exports.Set("memReadBandwidth", Napi::Function::New(env, MemReadBandwidth));
  exports.Set("prefetchWhenIdle", Napi::Function::New(env, PrefetchWhenIdle));
  return exports;
}

}  // namespace

NODE_API_MODULE(moe_native, Init)
