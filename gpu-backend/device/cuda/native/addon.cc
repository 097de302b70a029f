// Node-API surface of the CUDA device: device buffers named by small integer ids, ops that enqueue
// kernels on a compute stream (asynchronous), synchronous host<->device copies, pinned host memory,
// and asynchronous host->device copies on a second (copy) stream ordered by events, so expert
// paging overlaps compute. The TypeScript side (cuda-device.ts, the GPU benchmark) decides what
// runs; this file only checks arguments and launches.
//
// Nothing touches the GPU at load time: probe() initialises lazily and reports failures (no
// driver, "CUDA driver version is insufficient", no device) as data, never as a crash, so a loader
// can turn them into "no GPU".
#include <cuda_runtime.h>
#include <napi.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cublas_dyn.h"
#include "kernels.h"

namespace {

using namespace moecuda;

struct Buffer {
  char* ptr = nullptr;
  size_t bytes = 0;
};

struct Ctx {
  bool tried = false;
  bool ok = false;
  std::string error;
  int device = 0;
  cudaDeviceProp prop{};
  int runtimeVersion = 0;
  int driverVersion = 0;
  cudaStream_t compute = nullptr;
  cudaStream_t copy = nullptr;
  Cublas cublas;
  std::vector<Buffer> buffers{Buffer{}};  // id 0 = null
  std::vector<uint32_t> freeBuffers;
  std::vector<cudaEvent_t> events{nullptr};  // id 0 = none
  std::vector<uint32_t> freeEvents;
  float* dq = nullptr;  // dequantized weight rows for the GEMM path
  size_t dqBytes = 0;
  void* xq = nullptr;  // int8-quantized activations of the q8/q4 matvec
  size_t xqBytes = 0;
  // q8/q4 matvecs quantize activations to int8 as the CPU device does (MOE_CUDA_F32_MATVEC=1 or
  // setInt8Matvec(false) keeps them in f32: the slower path, kept for comparison).
  bool int8Matvec = true;
  float* sink = nullptr;
};

Ctx g;

// Rows are dequantized to f32 in chunks of at most this many bytes before a GEMM.
constexpr size_t kDequantChunkBytes = 64ull << 20;
// Above this many tokens a matmul goes through dequantize + GEMM instead of the matvec kernel.
constexpr int kGemmMinTokens = 2 * kMatvecTokens;

[[noreturn]] void fail(const Napi::Env& env, const std::string& what) { throw Napi::Error::New(env, what); }

void check(const Napi::Env& env, cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail(env, std::string("cuda ") + what + ": " + cudaGetErrorString(e));
}

bool init() {
  if (g.tried) return g.ok;
  g.tried = true;
  cudaRuntimeGetVersion(&g.runtimeVersion);
  cudaDriverGetVersion(&g.driverVersion);
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    g.error = cudaGetErrorString(e);
    cudaGetLastError();
    return false;
  }
  if (count == 0) {
    g.error = "no CUDA device";
    return false;
  }
  if (const char* d = std::getenv("MOE_CUDA_DEVICE"); d && *d) g.device = std::atoi(d);
  if ((e = cudaSetDevice(g.device)) != cudaSuccess || (e = cudaGetDeviceProperties(&g.prop, g.device)) != cudaSuccess ||
      (e = cudaStreamCreateWithFlags(&g.compute, cudaStreamNonBlocking)) != cudaSuccess ||
      (e = cudaStreamCreateWithFlags(&g.copy, cudaStreamNonBlocking)) != cudaSuccess ||
      (e = cudaMalloc(&g.sink, 256)) != cudaSuccess) {
    g.error = cudaGetErrorString(e);
    cudaGetLastError();
    return false;
  }
  load_cublas(g.cublas, g.compute);
  if (const char* f = std::getenv("MOE_CUDA_F32_MATVEC"); f && *f && *f != '0') g.int8Matvec = false;
  g.ok = true;
  return true;
}

void require(const Napi::Env& env) {
  if (!init()) fail(env, "CUDA unavailable: " + g.error);
}

double num(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsNumber()) fail(info.Env(), "argument " + std::to_string(i) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}
int inum(const Napi::CallbackInfo& info, size_t i) { return static_cast<int>(num(info, i)); }
size_t znum(const Napi::CallbackInfo& info, size_t i) {
  const double v = num(info, i);
  if (v < 0) fail(info.Env(), "argument " + std::to_string(i) + " must be >= 0");
  return static_cast<size_t>(v);
}
bool flag(const Napi::CallbackInfo& info, size_t i) { return i < info.Length() && info[i].ToBoolean().Value(); }

// Device pointer for bytes [off, off + bytes) of buffer `id`; id 0 gives nullptr (optional operands).
char* dptr(const Napi::Env& env, size_t id, size_t off, size_t bytes, bool optional = false) {
  if (id == 0 && optional) return nullptr;
  if (id == 0 || id >= g.buffers.size() || !g.buffers[id].ptr) fail(env, "bad device buffer id " + std::to_string(id));
  const Buffer& b = g.buffers[id];
  if (off > b.bytes || bytes > b.bytes - off)
    fail(env, "range [" + std::to_string(off) + ", +" + std::to_string(bytes) + ") outside buffer " +
                  std::to_string(id) + " of " + std::to_string(b.bytes) + " bytes");
  return b.ptr + off;
}

// (pointer, bytes) of a typed array / DataView / ArrayBuffer argument.
std::pair<char*, size_t> host(const Napi::CallbackInfo& info, size_t i) {
  const Napi::Value v = info[i];
  if (v.IsTypedArray()) {
    auto ta = v.As<Napi::TypedArray>();
    return {static_cast<char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), ta.ByteLength()};
  }
  if (v.IsArrayBuffer()) {
    auto ab = v.As<Napi::ArrayBuffer>();
    return {static_cast<char*>(ab.Data()), ab.ByteLength()};
  }
  fail(info.Env(), "argument " + std::to_string(i) + " must be a typed array or ArrayBuffer");
}

cudaEvent_t event_at(const Napi::Env& env, size_t id) {
  if (id == 0 || id >= g.events.size() || !g.events[id]) fail(env, "bad event id " + std::to_string(id));
  return g.events[id];
}

uint32_t new_event(const Napi::Env& env) {
  uint32_t id;
  if (!g.freeEvents.empty()) {
    id = g.freeEvents.back();
    g.freeEvents.pop_back();
  } else {
    cudaEvent_t e;
    check(env, cudaEventCreate(&e), "event create");
    g.events.push_back(e);
    return static_cast<uint32_t>(g.events.size() - 1);
  }
  return id;
}

cudaStream_t stream_of(const Napi::CallbackInfo& info, size_t i) { return inum(info, i) == 1 ? g.copy : g.compute; }

size_t weight_bytes(int dtype, size_t rows, size_t cols) {
  const size_t n = rows * cols;
  switch (dtype) {
    case kF32:
      return n * 4;
    case kF16:
    case kBF16:
      return n * 2;
    case kQ8:
      return n;
    case kQ4:
      return n / 2;
    default:
      return 0;
  }
}

// ---- probe / memory ----

Napi::Value Probe(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const bool ok = init();
  o.Set("ok", ok);
  o.Set("runtimeVersion", g.runtimeVersion);
  o.Set("driverVersion", g.driverVersion);
  if (!ok) {
    o.Set("error", g.error);
    return o;
  }
  size_t freeB = 0, totalB = 0;
  cudaMemGetInfo(&freeB, &totalB);
  o.Set("name", std::string(g.prop.name));
  o.Set("device", g.device);
  o.Set("computeCapability", std::to_string(g.prop.major) + "." + std::to_string(g.prop.minor));
  o.Set("multiprocessors", g.prop.multiProcessorCount);
  o.Set("totalBytes", static_cast<double>(totalB));
  o.Set("freeBytes", static_cast<double>(freeB));
  o.Set("cublas", g.cublas.ok());
  o.Set("cublasInfo", g.cublas.ok() ? g.cublas.path : g.cublas.error);
  return o;
}

Napi::Value Alloc(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  require(env);
  const size_t bytes = std::max<size_t>(znum(info, 0), 1);
  char* p = nullptr;
  check(env, cudaMalloc(&p, bytes), ("malloc of " + std::to_string(bytes) + " bytes").c_str());
  uint32_t id;
  if (!g.freeBuffers.empty()) {
    id = g.freeBuffers.back();
    g.freeBuffers.pop_back();
    g.buffers[id] = Buffer{p, bytes};
  } else {
    g.buffers.push_back(Buffer{p, bytes});
    id = static_cast<uint32_t>(g.buffers.size() - 1);
  }
  return Napi::Number::New(env, id);
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const size_t id = znum(info, 0);
  if (id == 0 || id >= g.buffers.size() || !g.buffers[id].ptr) fail(env, "free: bad buffer id");
  // Work queued on either stream may still read the buffer: cudaFree waits for the device.
  check(env, cudaFree(g.buffers[id].ptr), "free");
  g.buffers[id] = Buffer{};
  g.freeBuffers.push_back(static_cast<uint32_t>(id));
  return env.Undefined();
}

Napi::Value MemInfo(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  require(env);
  size_t freeB = 0, totalB = 0;
  check(env, cudaMemGetInfo(&freeB, &totalB), "mem info");
  Napi::Object o = Napi::Object::New(env);
  o.Set("freeBytes", static_cast<double>(freeB));
  o.Set("totalBytes", static_cast<double>(totalB));
  return o;
}

// write(id, off, src): synchronous host -> device, ordered after queued compute work.
Napi::Value Write(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  auto [src, bytes] = host(info, 2);
  if (info.Length() > 3) bytes = std::min(bytes, znum(info, 3));
  char* dst = dptr(env, znum(info, 0), znum(info, 1), bytes);
  check(env, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g.compute), "write");
  check(env, cudaStreamSynchronize(g.compute), "write sync");
  return env.Undefined();
}

// read(id, off, dst[, bytes]): synchronous device -> host after all queued compute work.
Napi::Value Read(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  auto [dst, bytes] = host(info, 2);
  if (info.Length() > 3) bytes = std::min(bytes, znum(info, 3));
  const char* src = dptr(env, znum(info, 0), znum(info, 1), bytes);
  check(env, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g.compute), "read");
  check(env, cudaStreamSynchronize(g.compute), "read sync");
  return env.Undefined();
}

// copy(dst, dOff, src, sOff, bytes): device -> device on the compute stream (asynchronous).
Napi::Value Copy(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const size_t bytes = znum(info, 4);
  char* dst = dptr(env, znum(info, 0), znum(info, 1), bytes);
  const char* src = dptr(env, znum(info, 2), znum(info, 3), bytes);
  check(env, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g.compute), "copy");
  return env.Undefined();
}

// allocPinned(bytes): page-locked host memory as an ArrayBuffer (freed when collected).
Napi::Value AllocPinned(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  require(env);
  const size_t bytes = std::max<size_t>(znum(info, 0), 1);
  void* p = nullptr;
  check(env, cudaHostAlloc(&p, bytes, cudaHostAllocPortable), ("host alloc of " + std::to_string(bytes)).c_str());
  return Napi::ArrayBuffer::New(env, p, bytes, [](Napi::Env, void* data) { cudaFreeHost(data); });
}

// h2dAsync(dstId, dstOff, pinnedSrc, bytes, afterEvent): copy on the copy stream after `afterEvent`
// (0 = none; e.g. "the slot's last reader finished"); returns an event recorded after the copy.
Napi::Value H2DAsync(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  auto [src, avail] = host(info, 2);
  const size_t bytes = znum(info, 3);
  if (bytes > avail) fail(env, "h2dAsync: source holds fewer bytes than asked");
  char* dst = dptr(env, znum(info, 0), znum(info, 1), bytes);
  const size_t after = info.Length() > 4 ? znum(info, 4) : 0;
  if (after) check(env, cudaStreamWaitEvent(g.copy, event_at(env, after), 0), "copy wait");
  check(env, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g.copy), "h2dAsync");
  const uint32_t ev = new_event(env);
  check(env, cudaEventRecord(g.events[ev], g.copy), "record");
  return Napi::Number::New(env, ev);
}

// d2hAsync(pinnedDst, srcId, srcOff, bytes): compute-stream copy into pinned memory; returns its event.
Napi::Value D2HAsync(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  auto [dst, avail] = host(info, 0);
  const size_t bytes = znum(info, 3);
  if (bytes > avail) fail(env, "d2hAsync: destination smaller than asked");
  const char* src = dptr(env, znum(info, 1), znum(info, 2), bytes);
  check(env, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g.compute), "d2hAsync");
  const uint32_t ev = new_event(env);
  check(env, cudaEventRecord(g.events[ev], g.compute), "record");
  return Napi::Number::New(env, ev);
}

// recordEvent(stream: 0 compute | 1 copy) -> event id.
Napi::Value RecordEvent(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  require(env);
  const uint32_t ev = new_event(env);
  check(env, cudaEventRecord(g.events[ev], stream_of(info, 0)), "record");
  return Napi::Number::New(env, ev);
}

// streamWait(stream, event): the stream waits (on the device, the host does not block).
Napi::Value StreamWait(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  check(env, cudaStreamWaitEvent(stream_of(info, 0), event_at(env, znum(info, 1)), 0), "stream wait");
  return env.Undefined();
}

Napi::Value EventQuery(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const cudaError_t e = cudaEventQuery(event_at(env, znum(info, 0)));
  if (e == cudaErrorNotReady) {
    cudaGetLastError();
    return Napi::Boolean::New(env, false);
  }
  check(env, e, "event query");
  return Napi::Boolean::New(env, true);
}

Napi::Value EventSync(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  check(env, cudaEventSynchronize(event_at(env, znum(info, 0))), "event sync");
  return env.Undefined();
}

// eventElapsed(a, b): milliseconds between two completed events.
Napi::Value EventElapsed(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  float ms = 0;
  check(env, cudaEventElapsedTime(&ms, event_at(env, znum(info, 0)), event_at(env, znum(info, 1))), "elapsed");
  return Napi::Number::New(env, ms);
}

Napi::Value ReleaseEvent(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const size_t id = znum(info, 0);
  event_at(env, id);
  g.freeEvents.push_back(static_cast<uint32_t>(id));
  return env.Undefined();
}

Napi::Value Sync(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  require(env);
  check(env, cudaStreamSynchronize(g.compute), "sync compute");
  check(env, cudaStreamSynchronize(g.copy), "sync copy");
  return env.Undefined();
}

// ---- ops (enqueued on the compute stream) ----

// The quantized-activation scratch, grown to at least `bytes` (ops on the one compute stream run
// in order, so one buffer serves every matmul; cudaFree waits for the work still using it).
void* activation_scratch(const Napi::Env& env, size_t bytes) {
  if (g.xqBytes < bytes) {
    if (g.xq) check(env, cudaFree(g.xq), "free scratch");
    g.xq = nullptr;
    g.xqBytes = 0;
    check(env, cudaMalloc(&g.xq, bytes), "activation scratch");
    g.xqBytes = bytes;
  }
  return g.xq;
}

// matmul(out, outOff, x, xOff, n, dtype, rows, cols, w, wOff, s, sOff)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int n = inum(info, 4), dtype = inum(info, 5), rows = inum(info, 6), cols = inum(info, 7);
  if (n <= 0 || rows <= 0 || cols <= 0 || dtype < 0 || dtype > kQ4) fail(env, "matmul: bad shape or dtype");
  if (dtype >= kQ8 && cols % 32 != 0) fail(env, "matmul: quantized cols must be a multiple of 32");
  float* out = reinterpret_cast<float*>(dptr(env, znum(info, 0), znum(info, 1), size_t(n) * rows * 4));
  const float* x = reinterpret_cast<const float*>(dptr(env, znum(info, 2), znum(info, 3), size_t(n) * cols * 4));
  const void* w = dptr(env, znum(info, 8), znum(info, 9), weight_bytes(dtype, rows, cols));
  const uint16_t* sc = dtype >= kQ8 ? reinterpret_cast<const uint16_t*>(
                                          dptr(env, znum(info, 10), znum(info, 11), size_t(rows) * cols / 32 * 2))
                                    : nullptr;
  if (n < kGemmMinTokens) {
    if (g.int8Matvec && dtype >= kQ8) {
      // Sized for the largest matvec (kGemmMinTokens - 1 tokens) of this width at once.
      void* xq = activation_scratch(env, matvec_q8x_scratch_bytes(kGemmMinTokens - 1, cols));
      check(env, launch_matvec_q8x(g.compute, out, x, n, dtype, rows, cols, w, sc, xq), "matvec");
    } else {
      check(env, launch_matvec(g.compute, out, x, n, dtype, rows, cols, w, sc), "matvec");
    }
    return env.Undefined();
  }
  // Prefill: dequantize row chunks to f32 and run an FP32 GEMM (cuBLAS when loaded); for q8/q4
  // the activations are rounded as the int8 matvec rounds them, so prefill and decode agree.
  if (g.int8Matvec && dtype >= kQ8) {
    float* xf = static_cast<float*>(activation_scratch(env, size_t(n) * cols * 4));
    check(env, launch_fake_quantize_x(g.compute, xf, x, size_t(n) * cols), "quantize");
    x = xf;
  }
  const size_t rowBytes = size_t(cols) * 4;
  const int chunk = static_cast<int>(std::max<size_t>(1, std::min<size_t>(rows, kDequantChunkBytes / rowBytes)));
  if (dtype != kF32 && g.dqBytes < size_t(chunk) * rowBytes) {
    if (g.dq) check(env, cudaFree(g.dq), "free scratch");
    g.dq = nullptr;
    g.dqBytes = 0;
    check(env, cudaMalloc(&g.dq, size_t(chunk) * rowBytes), "dequant scratch");
    g.dqBytes = size_t(chunk) * rowBytes;
  }
  for (int r0 = 0; r0 < rows; r0 += chunk) {
    const int nr = std::min(chunk, rows - r0);
    const float* wf;
    if (dtype == kF32) {
      wf = static_cast<const float*>(w) + size_t(r0) * cols;
    } else {
      check(env, launch_dequant_rows(g.compute, g.dq, dtype, r0, nr, cols, w, sc), "dequant");
      wf = g.dq;
    }
    if (g.cublas.ok()) {
      const float one = 1.f, zero = 0.f;
      const int st = g.cublas.sgemm(g.cublas.handle, CUBLAS_OP_T, CUBLAS_OP_N, nr, n, cols, &one, wf, cols, x, cols,
                                    &zero, out + r0, rows);
      if (st != 0) fail(env, "cublasSgemm_v2 failed with status " + std::to_string(st));
    } else {
      check(env, launch_sgemm_nt(g.compute, out + r0, rows, x, wf, n, nr, cols), "sgemm");
    }
  }
  return env.Undefined();
}

// rmsnorm(out, outOff, x, xOff, weight|0, wOff, rows, dim, eps)
Napi::Value Rmsnorm(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int rows = inum(info, 6), dim = inum(info, 7);
  const size_t bytes = size_t(rows) * dim * 4;
  float* out = reinterpret_cast<float*>(dptr(env, znum(info, 0), znum(info, 1), bytes));
  const float* x = reinterpret_cast<const float*>(dptr(env, znum(info, 2), znum(info, 3), bytes));
  const float* w = reinterpret_cast<const float*>(dptr(env, znum(info, 4), znum(info, 5), size_t(dim) * 4, true));
  check(env, launch_rmsnorm(g.compute, out, x, w, rows, dim, static_cast<float>(num(info, 8))), "rmsnorm");
  return env.Undefined();
}

// rope(x, xOff, nTok, nHeads, headDim, pos, posOff, freq, freqOff, half, neox)
Napi::Value Rope(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int nTok = inum(info, 2), nHeads = inum(info, 3), headDim = inum(info, 4), half = inum(info, 9);
  if (2 * half > headDim) fail(env, "rope: rotated span exceeds headDim");
  float* x = reinterpret_cast<float*>(dptr(env, znum(info, 0), znum(info, 1), size_t(nTok) * nHeads * headDim * 4));
  const int32_t* pos = reinterpret_cast<const int32_t*>(dptr(env, znum(info, 5), znum(info, 6), size_t(nTok) * 4));
  const float* freq = reinterpret_cast<const float*>(dptr(env, znum(info, 7), znum(info, 8), size_t(half) * 4));
  check(env, launch_rope(g.compute, x, nTok, nHeads, headDim, pos, freq, half, flag(info, 10)), "rope");
  return env.Undefined();
}

// attention(q, qOff, k, kOff, v, vOff, out, outOff, nTok, nHeads, nKvHeads, headDim, pos0, scale, chunk, window)
Napi::Value Attention(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int nTok = inum(info, 8), nHeads = inum(info, 9), nKv = inum(info, 10), hd = inum(info, 11);
  const int pos0 = inum(info, 12);
  if (nKv <= 0 || nHeads % nKv != 0 || hd > 256 || pos0 < 0) fail(env, "attention: bad heads/headDim/pos0");
  const size_t qBytes = size_t(nTok) * nHeads * hd * 4, kvBytes = size_t(pos0 + nTok) * nKv * hd * 4;
  const float* q = reinterpret_cast<const float*>(dptr(env, znum(info, 0), znum(info, 1), qBytes));
  const float* k = reinterpret_cast<const float*>(dptr(env, znum(info, 2), znum(info, 3), kvBytes));
  const float* v = reinterpret_cast<const float*>(dptr(env, znum(info, 4), znum(info, 5), kvBytes));
  float* out = reinterpret_cast<float*>(dptr(env, znum(info, 6), znum(info, 7), qBytes));
  check(env,
        launch_attention(g.compute, q, k, v, out, nTok, nHeads, nKv, hd, pos0, static_cast<float>(num(info, 13)),
                         inum(info, 14), inum(info, 15)),
        "attention");
  return env.Undefined();
}

// swiglu(out, outOff, gate, gOff, up, uOff, len)
Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const size_t len = znum(info, 6), bytes = len * 4;
  float* out = reinterpret_cast<float*>(dptr(env, znum(info, 0), znum(info, 1), bytes));
  const float* gate = reinterpret_cast<const float*>(dptr(env, znum(info, 2), znum(info, 3), bytes));
  const float* up = reinterpret_cast<const float*>(dptr(env, znum(info, 4), znum(info, 5), bytes));
  check(env, launch_swiglu(g.compute, out, gate, up, len), "swiglu");
  return env.Undefined();
}

// addScaled(out, outOff, a, aOff, len, scale)
Napi::Value AddScaled(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const size_t len = znum(info, 4), bytes = len * 4;
  float* out = reinterpret_cast<float*>(dptr(env, znum(info, 0), znum(info, 1), bytes));
  const float* a = reinterpret_cast<const float*>(dptr(env, znum(info, 2), znum(info, 3), bytes));
  check(env, launch_add_scaled(g.compute, out, a, len, static_cast<float>(num(info, 5))), "addScaled");
  return env.Undefined();
}

// route(logits, lOff, nTok, nExperts, k, sigmoid, renormalize, ids, idsOff, weights, wOff)
Napi::Value Route(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const int nTok = inum(info, 2), nExp = inum(info, 3), k = inum(info, 4);
  if (k <= 0 || k > nExp || nExp > 4096) fail(env, "route: bad k / nExperts");
  const float* logits = reinterpret_cast<const float*>(dptr(env, znum(info, 0), znum(info, 1), size_t(nTok) * nExp * 4));
  int32_t* ids = reinterpret_cast<int32_t*>(dptr(env, znum(info, 7), znum(info, 8), size_t(nTok) * k * 4));
  float* w = reinterpret_cast<float*>(dptr(env, znum(info, 9), znum(info, 10), size_t(nTok) * k * 4));
  check(env, launch_route(g.compute, logits, nTok, nExp, k, flag(info, 5), flag(info, 6), ids, w), "route");
  return env.Undefined();
}

// fill(id, off, count, kind: 0 bytes | 1 f16 | 2 f32, seed, lo, hi): deterministic pseudo-random data.
Napi::Value Fill(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const size_t count = znum(info, 2);
  const int kind = inum(info, 3);
  const uint32_t seed = static_cast<uint32_t>(num(info, 4));
  const float lo = static_cast<float>(num(info, 5)), hi = static_cast<float>(num(info, 6));
  const size_t elt = kind == 0 ? 1 : kind == 1 ? 2 : 4;
  char* p = dptr(env, znum(info, 0), znum(info, 1), count * elt);
  cudaError_t e;
  if (kind == 0) {
    if (count % 4 != 0 || (reinterpret_cast<uintptr_t>(p) & 3)) fail(env, "fill bytes: count and offset must be x4");
    e = launch_fill_bytes(g.compute, reinterpret_cast<uint8_t*>(p), count, seed);
  } else if (kind == 1) {
    e = launch_fill_f16(g.compute, reinterpret_cast<uint16_t*>(p), count, seed, lo, hi);
  } else {
    e = launch_fill_f32(g.compute, reinterpret_cast<float*>(p), count, seed, lo, hi);
  }
  check(env, e, "fill");
  return env.Undefined();
}

// setInt8Matvec(on): q8/q4 matvecs on int8 activations (default) or f32 ones; returns the old value.
Napi::Value SetInt8Matvec(const Napi::CallbackInfo& info) {
  const bool old = g.int8Matvec;
  g.int8Matvec = flag(info, 0);
  return Napi::Boolean::New(info.Env(), old);
}

// memReadBandwidth(bytes): best of 5 streaming reads of a device buffer, GB/s (1e9 B/s).
Napi::Value MemReadBandwidth(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  require(env);
  const size_t bytes = znum(info, 0) / 16 * 16;
  char* p = nullptr;
  check(env, cudaMalloc(&p, bytes), "probe alloc");
  cudaMemsetAsync(p, 0, bytes, g.compute);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  float best = 1e30f;
  for (int i = 0; i < 6; i++) {
    cudaEventRecord(a, g.compute);
    launch_read_probe(g.compute, reinterpret_cast<const float4*>(p), bytes / 16, g.sink);
    cudaEventRecord(b, g.compute);
    check(env, cudaEventSynchronize(b), "probe");
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    if (i > 0) best = std::min(best, ms);  // first pass warms up
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaFree(p);
  return Napi::Number::New(env, bytes / (best * 1e-3) / 1e9);
}

// h2dBandwidth(bytes): pinned host -> device copy rate on the copy stream, best of 5, GB/s.
Napi::Value H2DBandwidth(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  require(env);
  const size_t bytes = znum(info, 0);
  char *h = nullptr, *d = nullptr;
  check(env, cudaHostAlloc(reinterpret_cast<void**>(&h), bytes, cudaHostAllocPortable), "probe host alloc");
  if (cudaMalloc(&d, bytes) != cudaSuccess) {
    cudaFreeHost(h);
    fail(env, "probe alloc failed");
  }
  memset(h, 1, bytes);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  float best = 1e30f;
  for (int i = 0; i < 6; i++) {
    cudaEventRecord(a, g.copy);
    cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice, g.copy);
    cudaEventRecord(b, g.copy);
    check(env, cudaEventSynchronize(b), "probe copy");
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    if (i > 0) best = std::min(best, ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaFree(d);
  cudaFreeHost(h);
  return Napi::Number::New(env, bytes / (best * 1e-3) / 1e9);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  const std::pair<const char*, Napi::Value (*)(const Napi::CallbackInfo&)> fns[] = {
      {"probe", Probe},
      {"alloc", Alloc},
      {"free", Free},
      {"memInfo", MemInfo},
      {"write", Write},
      {"read", Read},
      {"copy", Copy},
      {"allocPinned", AllocPinned},
      {"h2dAsync", H2DAsync},
      {"d2hAsync", D2HAsync},
      {"recordEvent", RecordEvent},
      {"streamWait", StreamWait},
      {"eventQuery", EventQuery},
      {"eventSync", EventSync},
      {"eventElapsed", EventElapsed},
      {"releaseEvent", ReleaseEvent},
      {"sync", Sync},
      {"matmul", Matmul},
      {"rmsnorm", Rmsnorm},
      {"rope", Rope},
      {"attention", Attention},
      {"swiglu", Swiglu},
      {"addScaled", AddScaled},
      {"route", Route},
      {"fill", Fill},
      {"memReadBandwidth", MemReadBandwidth},
      {"h2dBandwidth", H2DBandwidth},
      {"setInt8Matvec", SetInt8Matvec},
  };
  for (const auto& [name, fn] : fns) exports.Set(name, Napi::Function::New(env, fn, name));
  exports.Set("gemmMinTokens", Napi::Number::New(env, kGemmMinTokens));
  return exports;
}

}  // namespace

NODE_API_MODULE(moe_cuda, Init)
