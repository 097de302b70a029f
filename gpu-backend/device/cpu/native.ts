/**
 * Loader and typings for the native addon (build/Release/moe_native.node, built by node-gyp from
 * binding.gyp on `npm install` / `npm run build:native`). MOE_NATIVE_PATH overrides the location.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { RowsOp } from "../device.js";

/**
 * Kernel sets. "avx512vnni" differs from "avx512" only for q8 and q4 matmuls, which quantize the
 * activations to int8 per 32-block (as llama.cpp does) to use vpdpbusd; everything else computes
 * with f32 activations and exactly dequantized weights.
 */
export type Isa = "scalar" | "avx2" | "avx512" | "avx512vnni";
export const ISA_INDEX: Record<Isa, number> = { scalar: 0, avx2: 1, avx512: 2, avx512vnni: 3 };

export type AttentionArg = Float32Array | Uint16Array | number | null;

export interface NativeAddon {
  /** Instruction sets this CPU supports (each usable as the `isa` argument). */
  readonly availableIsas: Isa[];
  /** The best of them (MOE_ISA=scalar|avx2|avx512|avx512vnni at load time forces one). */
  readonly bestIsa: Isa;
  readonly hardwareThreads: number;
  matmul(
    isa: number,
    threads: number,
    out: Float32Array,
    x: Float32Array,
    n: number,
    dtype: number,
    rows: number,
    cols: number,
    data: Uint8Array,
    scales: Uint8Array | null,
  ): void;
  /** count jobs of the 8 matmul arguments (out, x, n, dtype, rows, cols, data, scales) each. */
  matmulMany(
    isa: number,
    threads: number,
    count: number,
    ...jobs: (Float32Array | Uint8Array | number | null)[]
  ): void;
  /**
   * q8 (dtype 3) or q4 (4) [rows, cols] data + scales rewritten in place into the avx512vnni
   * packed layout (dtype 5 / 6).
   */
  packQuantized(
    data: Uint8Array,
    scales: Uint8Array,
    dtype: number,
    rows: number,
    cols: number,
    threads?: number,
  ): void;
  rmsnorm(
    out: Float32Array,
    x: Float32Array,
    weight: Float32Array | null,
    rows: number,
    dim: number,
    eps: number,
    threads?: number,
  ): void;
  rope(
    x: Float32Array,
    nTok: number,
    nHeads: number,
    headDim: number,
    positions: Int32Array,
    invFreq: Float32Array,
    neox: boolean,
  ): void;
  /**
   * q, kCache, vCache, out, nTok, nHeads, nKvHeads, headDim, pos0, scale, chunkSize, window,
   * kNew|null, vNew|null (stored at rows pos0.. of the caches first).
   */
  attention(isa: number, threads: number, ...args: AttentionArg[]): void;
  /** count sequences of the 14 attention arguments each. */
  attentionMany(isa: number, threads: number, count: number, ...seqs: AttentionArg[]): void;
  swiglu(
    out: Float32Array,
    gate: Float32Array,
    up: Float32Array,
    len: number,
    isa?: number,
    threads?: number,
  ): void;
  addScaled(out: Float32Array, a: Float32Array, len: number, scale: number): void;
  gatherRows: RowsOp;
  scatterAddRows: RowsOp;
  route(
    logits: Float32Array,
    nTok: number,
    nExperts: number,
    k: number,
    sigmoid: boolean,
    renormalize: boolean,
    outIds: Int32Array,
    outWeights: Float32Array,
  ): void;
  /**
   * Zero-filled native memory aligned to `align` bytes (default 4096; power of two >= 64) as a
   * Uint8Array of exactly `bytes` bytes; freed when the array is garbage-collected.
   */
  allocAligned(bytes: number, align?: number): Uint8Array;
  /**
   * Reads file bytes [offset, offset+length) into dest[destOffset...] on a libuv worker thread with
   * O_DIRECT (page cache bypassed). Any offset/length/destination works: fully 4096-aligned requests
   * (offset, length and dest address) go straight into dest, others through an aligned bounce buffer.
   * Falls back to buffered reads where O_DIRECT is refused (older tmpfs, some FUSE); `direct = false`
   * asks for buffered reads (through the page cache). Resolves with `length`; rejects on I/O errors
   * and on short reads (range past end of file).
   */
  readDirect(
    path: string,
    offset: number,
    length: number,
    dest: Uint8Array,
    destOffset: number,
    direct?: boolean,
  ): Promise<number>;
  /**
   * Streaming multi-threaded read of a fresh `bytes` buffer (allocated and freed per call): best of
   * `passes` (default 5) passes, in GB/s (1e9 bytes/s).
   */
  memReadBandwidth(bytes: number, threads: number, isa?: number, passes?: number): number;
  /** Memory the pool's idle workers pull into the caches (up to 32 arrays; replaces the last list). */
  prefetchWhenIdle(arrays: readonly Uint8Array[]): void;
}

function addonPath(): string {
  const override = process.env.MOE_NATIVE_PATH;
  if (override) return override;
  return fileURLToPath(new URL("../../../build/Release/moe_native.node", import.meta.url));
}

let cached: NativeAddon | null = null;

/** The addon, loaded once. Throws a clear message when it has not been built. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  const path = addonPath();
  if (!existsSync(path)) {
    throw new Error(`native addon not found at ${path}: run \`npm run build:native\` (or \`npm rebuild\`)`);
  }
  const require = createRequire(import.meta.url);
  cached = require(path) as NativeAddon;
  return cached;
}
