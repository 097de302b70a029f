/**
 * Loader and typings for the CUDA addon (build/cuda/moe_cuda.node, built by `npm run build:cuda`,
 * never by `npm install`). MOE_CUDA_PATH overrides the location.
 *
 * loadCuda() never throws: a missing file, a file that fails to load, a machine without a driver
 * ("CUDA driver version is insufficient for CUDA runtime version") or without a device all come
 * back as `{ ok: false, reason }`, which device selection turns into "use the CPU".
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/** What probe() reports about the GPU (all fields but ok/versions only when ok). */
export interface CudaProbe {
  ok: boolean;
  error?: string;
  runtimeVersion: number;
  driverVersion: number;
  name?: string;
  device?: number;
  computeCapability?: string;
  multiprocessors?: number;
  totalBytes?: number;
  freeBytes?: number;
  /** cuBLAS was found (dlopen) and is used for prefill GEMMs; else the own tiled kernel runs. */
  cublas?: boolean;
  /** The library path that loaded, or why none did. */
  cublasInfo?: string;
}

/** 0 = compute stream (all ops), 1 = copy stream (expert paging). */
export type StreamId = 0 | 1;

/**
 * Device buffers are small integer ids; offsets are in bytes. Ops enqueue on the compute stream
 * and return at once; read() / sync() / eventSync() wait.
 */
export interface CudaAddon {
  probe(): CudaProbe;
  alloc(bytes: number): number;
  free(id: number): void;
  memInfo(): { freeBytes: number; totalBytes: number };
  /** Synchronous host -> device (after the work queued on the compute stream). */
  write(id: number, byteOffset: number, src: ArrayBufferView | ArrayBuffer, bytes?: number): void;
  /** Synchronous device -> host (after the work queued on the compute stream). */
  read(id: number, byteOffset: number, dst: ArrayBufferView | ArrayBuffer, bytes?: number): void;
  copy(dst: number, dstOff: number, src: number, srcOff: number, bytes: number): void;
  /** Page-locked host memory (cudaHostAlloc), freed when the ArrayBuffer is collected. */
  allocPinned(bytes: number): ArrayBuffer;
  /** Copy-stream H2D from pinned memory after event `after` (0 = none); returns the copy's event. */
  h2dAsync(dst: number, dstOff: number, src: ArrayBufferView, bytes: number, after?: number): number;
  /** Compute-stream D2H into pinned memory; returns its event. */
  d2hAsync(dst: ArrayBufferView, src: number, srcOff: number, bytes: number): number;
  recordEvent(stream: StreamId): number;
  streamWait(stream: StreamId, event: number): void;
  eventQuery(event: number): boolean;
  eventSync(event: number): void;
  eventElapsed(a: number, b: number): number;
  releaseEvent(event: number): void;
  sync(): void;
  matmul(
    out: number,
    outOff: number,
    x: number,
    xOff: number,
    n: number,
    dtype: number,
    rows: number,
    cols: number,
    w: number,
    wOff: number,
    scales: number,
    scalesOff: number,
  ): void;
  rmsnorm(
    out: number,
    outOff: number,
    x: number,
    xOff: number,
    weight: number,
    weightOff: number,
    rows: number,
    dim: number,
    eps: number,
  ): void;
  rope(
    x: number,
    xOff: number,
    nTok: number,
    nHeads: number,
    headDim: number,
    pos: number,
    posOff: number,
    freq: number,
    freqOff: number,
    half: number,
    neox: boolean,
  ): void;
  attention(
    q: number,
    qOff: number,
    k: number,
    kOff: number,
    v: number,
    vOff: number,
    out: number,
    outOff: number,
    nTok: number,
    nHeads: number,
    nKvHeads: number,
    headDim: number,
    pos0: number,
    scale: number,
    chunk: number,
    window: number,
  ): void;
  swiglu(
    out: number,
    outOff: number,
    gate: number,
    gateOff: number,
    up: number,
    upOff: number,
    len: number,
  ): void;
  addScaled(out: number, outOff: number, a: number, aOff: number, len: number, scale: number): void;
  route(
    logits: number,
    logitsOff: number,
    nTok: number,
    nExperts: number,
    k: number,
    sigmoid: boolean,
    renormalize: boolean,
    ids: number,
    idsOff: number,
    weights: number,
    weightsOff: number,
  ): void;
  /** Deterministic pseudo-random fill: kind 0 = raw bytes, 1 = f16 in [lo, hi), 2 = f32 in [lo, hi). */
  fill(id: number, off: number, count: number, kind: 0 | 1 | 2, seed: number, lo: number, hi: number): void;
  /** Device memory streaming-read bandwidth, GB/s. */
  memReadBandwidth(bytes: number): number;
  /** Pinned host -> device copy bandwidth on the copy stream, GB/s. */
  h2dBandwidth(bytes: number): number;
  /**
   * q8/q4 matvecs quantize activations to int8 per 32-block like the CPU device (true, the
   * default) or keep them in f32 (false; slower, kept for comparison). Returns the old setting.
   */
  setInt8Matvec(on: boolean): boolean;
  /** Above this many tokens matmul dequantizes and runs a GEMM. */
  readonly gemmMinTokens: number;
}

export type CudaLoad = { ok: true; addon: CudaAddon; info: CudaProbe } | { ok: false; reason: string };

export function cudaAddonPath(): string {
  const override = process.env.MOE_CUDA_PATH;
  if (override) return override;
  return fileURLToPath(new URL("../../../build/cuda/moe_cuda.node", import.meta.url));
}

let cached: CudaLoad | null = null;

/** Load the addon and probe the GPU once; never throws. */
export function loadCuda(): CudaLoad {
  if (cached) return cached;
  cached = tryLoad();
  return cached;
}

function tryLoad(): CudaLoad {
  const path = cudaAddonPath();
  if (!existsSync(path))
    return { ok: false, reason: `CUDA addon not built (${path}): run \`npm run build:cuda\`` };
  let addon: CudaAddon;
  try {
    const require = createRequire(import.meta.url);
    addon = require(path) as CudaAddon;
  } catch (err) {
    return { ok: false, reason: `CUDA addon failed to load: ${(err as Error).message}` };
  }
  let info: CudaProbe;
  try {
    info = addon.probe();
  } catch (err) {
    return { ok: false, reason: `CUDA probe failed: ${(err as Error).message}` };
  }
  if (!info.ok) return { ok: false, reason: `no usable GPU: ${info.error ?? "unknown error"}` };
  return { ok: true, addon, info };
}
