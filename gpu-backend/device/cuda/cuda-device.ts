/**
 * The CUDA device: the Device interface over the CUDA addon (native.ts).
 *
 * The Device interface hands every op host Float32Arrays, so this class keeps device mirrors
 * keyed by the host arrays it is given and moves only what must move:
 *  - weights given to upload(): copied once into device memory; the returned Weight's `data` is a
 *    fresh view of the caller's bytes that serves as the mirror's key (freed when collected);
 *  - routed experts (weights that were never uploaded, e.g. the expert store's slots): a device
 *    expert cache with a byte budget, LRU, keyed by the weight's data view (the store makes a new
 *    view for every load, so a reused host slot never hits a stale mirror);
 *  - constant vectors (norm weights, RoPE frequencies): mirrored once by identity;
 *  - KV caches: mirrored per host array; each attention call uploads only the rows it was told
 *    are new (pos0 .. pos0+nTok; all rows the first time an array is seen). MOE_CUDA_KV_STRICT=1
 *    re-uploads every visible row (for callers that rewrite older rows in place).
 * Activations go host -> device -> host around each op (the interface's contract). That is correct
 * and fine for parity, not fast: the device-resident path (the addon's buffer API, used by the GPU
 * benchmark, and the engine change proposed in gpu-backend/device/cuda/ENGINE-NOTES.md) is what keeps activations on
 * the GPU.
 */
import type {
  AttentionArgs,
  Device,
  KvArray,
  MatmulJob,
  RopeStyle,
  RowsOp,
  Weight,
  WeightDType,
} from "../device.js";
import { weightDataBytes } from "../f16.js";
import { appendKvRows, gatherRowsHost, kvAsF32, scatterAddRowsVia } from "../host-rows.js";
import type { CudaAddon, CudaProbe } from "./native.js";

const DTYPE_CODE: Record<WeightDType, number> = { f32: 0, f16: 1, bf16: 2, q8: 3, q4: 4 };
/** Sub-allocation alignment inside one device buffer (cudaMalloc itself gives 256). */
const ALIGN = 256;
const alignUp = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

interface DevWeight {
  buf: number;
  bytes: number;
  /** Byte offset of the f16 scales inside `buf` (q8 / q4), else -1. */
  scalesOff: number;
}

interface KvMirror {
  buf: number;
}

export interface CudaDeviceOptions {
  /** Reported thread count (ops run on the GPU; default 1). */
  threads?: number;
  /**
   * Device bytes for routed experts that were not uploaded (the device expert cache). Default:
   * MOE_CUDA_EXPERT_CACHE_BYTES, else half of the free device memory at construction.
   */
  expertCacheBytes?: number;
}

export class CudaDevice implements Device {
  readonly name: string;
  readonly threads: number;
  readonly info: CudaProbe;
  readonly expertCacheBytes: number;
  private readonly addon: CudaAddon;
  private readonly uploaded = new WeakMap<Uint8Array, DevWeight>();
  private readonly experts = new Map<Uint8Array, DevWeight>();
  private expertHeld = 0;
  private readonly vectors = new WeakMap<Float32Array, number>();
  private readonly kv = new WeakMap<KvArray, KvMirror>();
  private readonly scratch: { id: number; bytes: number }[] = [];
  private readonly strictKv = process.env.MOE_CUDA_KV_STRICT === "1";
  // Device memory behind collected host arrays goes back when the key is garbage-collected.
  private readonly registry = new FinalizationRegistry<number>((buf) => {
    try {
      this.addon.free(buf);
    } catch {
      // the context may be gone at exit
    }
  });
  /** Counters: expert-cache hits/misses and bytes moved host -> device (for reports and tests). */
  readonly counters = { expertHits: 0, expertMisses: 0, expertBytes: 0, uploadBytes: 0, kvBytes: 0 };

  constructor(addon: CudaAddon, info: CudaProbe, opts: CudaDeviceOptions = {}) {
    this.addon = addon;
    this.info = info;
    this.name = `cuda:${info.name ?? "gpu"}`;
    this.threads = Math.max(1, Math.floor(opts.threads ?? 1));
    const env = Number(process.env.MOE_CUDA_EXPERT_CACHE_BYTES ?? "");
    this.expertCacheBytes =
      opts.expertCacheBytes ??
      (Number.isFinite(env) && env > 0 ? env : Math.floor(addon.memInfo().freeBytes / 2));
  }

  // ---- memory ----

  private allocWeight(w: Weight): DevWeight {
    if (w.packed) throw new Error("cuda device: this weight was packed for another device");
    const bytes = weightDataBytes(w.dtype, w.rows, w.cols);
    if (w.data.byteLength < bytes) {
      throw new Error(
        `upload: ${w.dtype} [${w.rows}x${w.cols}] needs ${bytes} bytes, got ${w.data.byteLength}`,
      );
    }
    const quant = w.dtype === "q8" || w.dtype === "q4";
    if (quant && !w.scales) throw new Error(`upload: ${w.dtype} weight without scales`);
    const scalesOff = quant ? alignUp(bytes) : -1;
    const total = quant ? scalesOff + (w.rows * w.cols) / 16 : bytes;
    const buf = this.addon.alloc(total);
    this.fillWeight(buf, w, bytes, scalesOff);
    return { buf, bytes: total, scalesOff };
  }

  private fillWeight(buf: number, w: Weight, bytes: number, scalesOff: number): void {
    this.addon.write(buf, 0, w.data, bytes);
    if (scalesOff >= 0 && w.scales) this.addon.write(buf, scalesOff, w.scales, (w.rows * w.cols) / 16);
    this.counters.uploadBytes += bytes + (scalesOff >= 0 ? (w.rows * w.cols) / 16 : 0);
  }

  upload(src: Weight): Weight {
    const dw = this.allocWeight(src);
    const key = src.data.subarray(0, weightDataBytes(src.dtype, src.rows, src.cols));
    this.uploaded.set(key, dw);
    this.registry.register(key, dw.buf);
    const w: Weight = { dtype: src.dtype, rows: src.rows, cols: src.cols, data: key };
    if (src.scales) w.scales = src.scales;
    return w;
  }

  /** The device copy of a weight: uploaded, cached expert, or paged into the expert cache now. */
  private weightOnDevice(w: Weight): DevWeight {
    const up = this.uploaded.get(w.data);
    if (up) return up;
    const hit = this.experts.get(w.data);
    if (hit) {
      this.counters.expertHits++;
      this.experts.delete(w.data); // re-insert: Map order is the LRU order
      this.experts.set(w.data, hit);
      return hit;
    }
    this.counters.expertMisses++;
    const bytes = weightDataBytes(w.dtype, w.rows, w.cols);
    const quant = w.dtype === "q8" || w.dtype === "q4";
    const scalesOff = quant ? alignUp(bytes) : -1;
    const total = quant ? scalesOff + (w.rows * w.cols) / 16 : bytes;
    const buf = this.expertSlot(total);
    this.fillWeight(buf, w, bytes, scalesOff);
    this.counters.expertBytes += total;
    const dw = { buf, bytes: total, scalesOff };
    this.experts.set(w.data, dw);
    return dw;
  }

  /** A buffer of `bytes` within the expert budget: evict LRU, reusing a same-size slot. */
  private expertSlot(bytes: number): number {
    while (this.expertHeld + bytes > this.expertCacheBytes && this.experts.size > 0) {
      const [key, victim] = this.experts.entries().next().value as [Uint8Array, DevWeight];
      this.experts.delete(key);
      if (victim.bytes === bytes) return victim.buf;
      this.addon.free(victim.buf);
      this.expertHeld -= victim.bytes;
    }
    this.expertHeld += bytes;
    return this.addon.alloc(bytes);
  }

  private vector(v: Float32Array): number {
    let buf = this.vectors.get(v);
    if (buf === undefined) {
      buf = this.addon.alloc(v.byteLength);
      this.addon.write(buf, 0, v);
      this.vectors.set(v, buf);
      this.registry.register(v, buf);
    }
    return buf;
  }

  /** Scratch buffer `i` with at least `bytes` (grown by 1.5x, never shrunk). */
  private tmp(i: number, bytes: number): number {
    const s = this.scratch[i];
    if (s && s.bytes >= bytes) return s.id;
    const size = Math.max(1 << 20, Math.ceil(bytes * 1.5));
    if (s) this.addon.free(s.id);
    const id = this.addon.alloc(size);
    this.scratch[i] = { id, bytes: size };
    return id;
  }

  private put(i: number, a: Float32Array | Int32Array, len = a.length): number {
    const id = this.tmp(i, len * 4);
    this.addon.write(id, 0, a, len * 4);
    return id;
  }

  // ---- ops ----

  matmulMany(jobs: readonly MatmulJob[]): void {
    for (const j of jobs) this.matmul(j.out, j.x, j.n, j.w);
  }

  matmul(out: Float32Array, x: Float32Array, n: number, w: Weight): void {
    const dw = this.weightOnDevice(w);
    const xs = this.put(0, x, n * w.cols);
    const os = this.tmp(1, n * w.rows * 4);
    const quant = dw.scalesOff >= 0;
    this.addon.matmul(
      os,
      0,
      xs,
      0,
      n,
      DTYPE_CODE[w.dtype],
      w.rows,
      w.cols,
      dw.buf,
      0,
      quant ? dw.buf : 0,
      quant ? dw.scalesOff : 0,
    );
    this.addon.read(os, 0, out, n * w.rows * 4);
  }

  rmsnorm(
    out: Float32Array,
    x: Float32Array,
    weight: Float32Array | null,
    rows: number,
    dim: number,
    eps: number,
  ): void {
    const xs = this.put(0, x, rows * dim);
    const wb = weight ? this.vector(weight) : 0;
    this.addon.rmsnorm(xs, 0, xs, 0, wb, 0, rows, dim, eps);
    this.addon.read(xs, 0, out, rows * dim * 4);
  }

  rope(
    x: Float32Array,
    nTok: number,
    nHeads: number,
    headDim: number,
    positions: Int32Array,
    invFreq: Float32Array,
    style: RopeStyle,
  ): void {
    const len = nTok * nHeads * headDim;
    const xs = this.put(0, x, len);
    const ps = this.put(1, positions, nTok);
    this.addon.rope(
      xs,
      0,
      nTok,
      nHeads,
      headDim,
      ps,
      0,
      this.vector(invFreq),
      0,
      invFreq.length,
      style === "neox",
    );
    this.addon.read(xs, 0, x, len * 4);
  }

  private kvOnDevice(host: KvArray, rowFloats: number, pos0: number, end: number): number {
    let m = this.kv.get(host);
    let from = this.strictKv ? 0 : pos0;
    if (!m) {
      // The mirror is f32 whatever the host cache holds (an f16 cache's rows are widened exactly).
      m = { buf: this.addon.alloc(host.length * 4) };
      this.kv.set(host, m);
      this.registry.register(host, m.buf);
      from = 0;
    }
    const bytes = (end - from) * rowFloats * 4;
    if (bytes > 0) {
      const rows = host.subarray(from * rowFloats, end * rowFloats);
      this.addon.write(m.buf, from * rowFloats * 4, kvAsF32(rows, rows.length), bytes);
      this.counters.kvBytes += bytes;
    }
    return m.buf;
  }

  attentionMany(seqs: readonly AttentionArgs[]): void {
    for (const a of seqs) this.attention(a);
  }

  attention(a: AttentionArgs): void {
    appendKvRows(a);
    const rowFloats = a.nKvHeads * a.headDim;
    const end = a.pos0 + a.nTok;
    const k = this.kvOnDevice(a.kCache, rowFloats, a.pos0, end);
    const v = this.kvOnDevice(a.vCache, rowFloats, a.pos0, end);
    const qLen = a.nTok * a.nHeads * a.headDim;
    const qs = this.put(0, a.q, qLen);
    const os = this.tmp(1, qLen * 4);
    this.addon.attention(
      qs,
      0,
      k,
      0,
      v,
      0,
      os,
      0,
      a.nTok,
      a.nHeads,
      a.nKvHeads,
      a.headDim,
      a.pos0,
      a.scale,
      a.chunkSize,
      a.window,
    );
    this.addon.read(os, 0, a.out, qLen * 4);
  }

  swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, len: number): void {
    const gs = this.put(0, gate, len);
    const us = this.put(1, up, len);
    this.addon.swiglu(gs, 0, gs, 0, us, 0, len);
    this.addon.read(gs, 0, out, len * 4);
  }

  addScaled(out: Float32Array, a: Float32Array, len: number, scale = 1): void {
    const os = this.put(0, out, len);
    const as = this.put(1, a, len);
    this.addon.addScaled(os, 0, as, 0, len, scale);
    this.addon.read(os, 0, out, len * 4);
  }

  readonly gatherRows: RowsOp = gatherRowsHost;

  readonly scatterAddRows: RowsOp = (...args) => scatterAddRowsVia(this, ...args);

  route(
    logits: Float32Array,
    nTok: number,
    nExperts: number,
    k: number,
    mode: "softmax" | "sigmoid",
    renormalize: boolean,
    outIds: Int32Array,
    outWeights: Float32Array,
  ): void {
    const ls = this.put(0, logits, nTok * nExperts);
    const is = this.tmp(1, nTok * k * 4);
    const ws = this.tmp(2, nTok * k * 4);
    this.addon.route(ls, 0, nTok, nExperts, k, mode === "sigmoid", renormalize, is, 0, ws, 0);
    this.addon.read(is, 0, outIds, nTok * k * 4);
    this.addon.read(ws, 0, outWeights, nTok * k * 4);
  }
}
