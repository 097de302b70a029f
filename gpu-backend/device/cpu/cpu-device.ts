/**
 * The CPU device: the Device interface over the native addon (C++, OpenMP, AVX-512 / AVX2 / scalar
 * kernels chosen at run time). Every op is one synchronous call into native code.
 */
import type { AttentionArgs, Device, MatmulJob, RopeStyle, RowsOp, Weight, WeightDType } from "../device.js";
import { weightDataBytes } from "../f16.js";
import { type AttentionArg, ISA_INDEX, type Isa, loadNative, type NativeAddon } from "./native.js";

export interface CpuDeviceOptions {
  /** Threads per op; default MOE_THREADS, else the number of hardware threads. */
  threads?: number;
  /** Force an instruction set (must be supported); default the best available. */
  isa?: Isa;
}

const DTYPE_CODE: Record<WeightDType, number> = { f32: 0, f16: 1, bf16: 2, q8: 3, q4: 4 };
/** q8 / q4 in the packed layouts of the avx512vnni kernels (DT_Q8P / DT_Q4P in native/kernels.h). */
const PACKED_CODE: Partial<Record<WeightDType, number>> = { q8: 5, q4: 6 };

function dtypeCode(w: Weight): number {
  return w.packed ? PACKED_CODE[w.dtype]! : DTYPE_CODE[w.dtype];
}

/**
 * Every weight this device hands out has one object shape (the same properties, in one order):
 * the per-job reads of a matmul dispatch (hundreds per decode step) then stay monomorphic.
 */
function deviceWeight(w: Weight, data: Uint8Array, scales: Uint8Array | undefined, packed: boolean): Weight {
  return { dtype: w.dtype, rows: w.rows, cols: w.cols, data, scales, packed: packed || undefined };
}

/** Weight memory alignment: a cache line (also the widest vector load). */
const WEIGHT_ALIGN = 64;
/** Uploads smaller than a huge page share slabs of this size (see CpuDevice.alloc). */
const SLAB_BYTES = 16 << 20;
const HUGE_PAGE = 2 << 20;

/** The kernels read scales as u16: an odd byte offset (a view into a file buffer) needs a copy. */
function kernelScales(w: Weight): Uint8Array | null {
  const scales = w.scales ?? null;
  return scales && scales.byteOffset % 2 !== 0 ? scales.slice() : scales;
}

/** Appends the native attention's 14 arguments for one sequence to `out`. */
function pushAttentionArgs(out: AttentionArg[], a: AttentionArgs): void {
  out.push(
    a.q,
    a.kCache,
    a.vCache,
    a.out,
    a.nTok,
    a.nHeads,
    a.nKvHeads,
    a.headDim,
    a.pos0,
    a.scale,
    a.chunkSize,
    a.window,
    a.kNew ?? null,
    a.vNew ?? null,
  );
}

function defaultThreads(native: NativeAddon): number {
  const env = Number.parseInt(process.env.MOE_THREADS ?? "", 10);
  if (Number.isFinite(env) && env > 0) return env;
  return Math.max(1, native.hardwareThreads);
}

export class CpuDevice implements Device {
  readonly name: string;
  readonly threads: number;
  readonly isa: Isa;
  private readonly native: NativeAddon;
  private readonly isaIndex: number;
  /**
   * q8 / q4 weights are packed for vpdpbusd (see DT_Q8P in native/kernels.h): ~1.5x faster than
   * plain blocks for one token, ~2x for 8-16. Plain blocks give the same numbers (int8 activations
   * either way).
   */
  private readonly packsQuantized: boolean;

  constructor(opts: CpuDeviceOptions = {}) {
    this.native = loadNative();
    this.threads = Math.max(1, Math.floor(opts.threads ?? defaultThreads(this.native)));
    this.isa = opts.isa ?? this.native.bestIsa;
    if (!this.native.availableIsas.includes(this.isa)) {
      throw new Error(
        `CpuDevice: this CPU does not support ${this.isa} (has ${this.native.availableIsas.join(", ")})`,
      );
    }
    this.isaIndex = ISA_INDEX[this.isa];
    this.name = `cpu-${this.isa}`;
    this.packsQuantized = this.isa === "avx512vnni";
  }

  upload(src: Weight): Weight {
    const bytes = weightDataBytes(src.dtype, src.rows, src.cols);
    if (src.data.byteLength < bytes) {
      throw new Error(
        `upload: ${src.dtype} [${src.rows}x${src.cols}] needs ${bytes} bytes, got ${src.data.byteLength}`,
      );
    }
    const data = this.alloc(bytes);
    data.set(src.data.subarray(0, bytes));
    let scales: Uint8Array | undefined;
    if (src.scales) {
      scales = this.alloc(src.scales.byteLength);
      scales.set(src.scales);
    }
    return this.adopt(deviceWeight(src, data, scales, false));
  }

  private slab: Uint8Array = new Uint8Array(0);
  private slabUsed = 0;

  /**
   * Device memory for an upload. A block of its own smaller than a huge page sits on 4 KiB pages,
   * and a decode step's many small matvecs (a Maverick-like model's q/k/v/o, routers, eager
   * experts) then take a TLB miss every 4 KiB of weights: small blocks are carved from shared
   * huge-page slabs instead (512x512 q8 matvec from memory 9.3 -> 7.9 us, 256x512 5.2 -> 4.4 us;
   * eager Maverick-like experts' gate/up 0.85 -> 0.68 ms per token). Loading is no slower in
   * itself (Maverick-like eager 0.86 s with slabs, 1.5 s without), but on this VM a process that
   * faults in huge pages right after another one released many of them waits for the kernel to
   * compact memory (Scout-like load 0.75 or 3.0 s, alternating, whatever the layout).
   */
  private alloc(bytes: number): Uint8Array {
    if (bytes >= HUGE_PAGE) return this.native.allocAligned(bytes, WEIGHT_ALIGN);
    const size = Math.ceil(bytes / WEIGHT_ALIGN) * WEIGHT_ALIGN;
    if (this.slabUsed + size > this.slab.byteLength) {
      this.slab = this.native.allocAligned(SLAB_BYTES, WEIGHT_ALIGN);
      this.slabUsed = 0;
    }
    const block = this.slab.subarray(this.slabUsed, this.slabUsed + bytes);
    this.slabUsed += size;
    return block;
  }

  adopt(w: Weight): Weight {
    if (w.packed) return w; // adopted before
    if (!this.packs(w)) return deviceWeight(w, w.data, w.scales, false);
    this.native.packQuantized(w.data, w.scales!, DTYPE_CODE[w.dtype], w.rows, w.cols, this.threads);
    return deviceWeight(w, w.data, w.scales, true);
  }

  private packs(w: Weight): boolean {
    if (!this.packsQuantized || (w.dtype !== "q8" && w.dtype !== "q4") || w.packed) return false;
    if (!w.scales) throw new Error(`${w.dtype} weight [${w.rows}x${w.cols}] without scales`);
    return true;
  }

  matmul(out: Float32Array, x: Float32Array, n: number, w: Weight): void {
    this.native.matmul(
      this.isaIndex,
      this.threads,
      out,
      x,
      n,
      dtypeCode(w),
      w.rows,
      w.cols,
      w.data,
      kernelScales(w),
    );
  }

  matmulMany(jobs: readonly MatmulJob[]): void {
    // One flat argument list, built in place: a step makes dozens of these calls with up to a few
    // hundred arguments, and per-job arrays flattened afterwards cost more than the native parse.
    const args: (Float32Array | Uint8Array | number | null)[] = [this.isaIndex, this.threads, jobs.length];
    for (const { out, x, n, w } of jobs) {
      args.push(out, x, n, dtypeCode(w), w.rows, w.cols, w.data, kernelScales(w));
    }
    Reflect.apply(this.native.matmulMany, this.native, args);
  }

  rmsnorm(
    out: Float32Array,
    x: Float32Array,
    weight: Float32Array | null,
    rows: number,
    dim: number,
    eps: number,
  ): void {
    this.native.rmsnorm(out, x, weight, rows, dim, eps, this.threads);
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
    this.native.rope(x, nTok, nHeads, headDim, positions, invFreq, style === "neox");
  }

  attention(a: AttentionArgs): void {
    const args: AttentionArg[] = [this.isaIndex, this.threads];
    pushAttentionArgs(args, a);
    Reflect.apply(this.native.attention, this.native, args);
  }

  attentionMany(seqs: readonly AttentionArgs[]): void {
    const args: AttentionArg[] = [this.isaIndex, this.threads, seqs.length];
    for (const a of seqs) pushAttentionArgs(args, a);
    Reflect.apply(this.native.attentionMany, this.native, args);
  }

  swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, len: number): void {
    this.native.swiglu(out, gate, up, len, this.isaIndex, this.threads);
  }

  addScaled(out: Float32Array, a: Float32Array, len: number, scale = 1): void {
    this.native.addScaled(out, a, len, scale);
  }

  readonly gatherRows: RowsOp = (...args) => this.native.gatherRows(...args);

  readonly scatterAddRows: RowsOp = (...args) => this.native.scatterAddRows(...args);

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
    this.native.route(logits, nTok, nExperts, k, mode === "sigmoid", renormalize, outIds, outWeights);
  }

  prefetchWhenIdle(ws: readonly Weight[]): void {
    if (this.threads <= 1) return; // no pool workers to do it
    const arrays: Uint8Array[] = [];
    for (const w of ws) {
      arrays.push(w.data);
      if (w.scales) arrays.push(w.scales);
    }
    this.native.prefetchWhenIdle(arrays);
  }
}
