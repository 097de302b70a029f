/** Helpers for kernel benchmarks: big weights filled cheaply with valid values, and a timer. */

import { loadNative } from "../../gpu-backend/device/cpu/native.js";
import type { Device, Weight, WeightDType } from "../../gpu-backend/device/device.js";
import { makeWeight, weightDataBytes } from "../../gpu-backend/device/f16.js";

/**
 * A [rows, cols] weight in 64-byte-aligned native memory, filled by tiling one random 1 MiB-ish
 * pattern (random values everywhere would take longer to make than to benchmark; the kernels'
 * speed does not depend on the values as long as they are ordinary finite numbers).
 */
export function bigWeight(dtype: WeightDType, rows: number, cols: number, seed = 1): Weight {
  const native = loadNative();
  const patRows = Math.max(1, Math.min(rows, Math.floor((1 << 18) / cols)));
  let s = seed >>> 0;
  const vals = new Float32Array(patRows * cols);
  for (let i = 0; i < vals.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    vals[i] = (s / 2 ** 32 - 0.5) * 0.1;
  }
  const pat = makeWeight(vals, patRows, cols, dtype);
  const data = native.allocAligned(weightDataBytes(dtype, rows, cols), 64);
  for (let off = 0; off < data.byteLength; off += pat.data.byteLength) {
    data.set(pat.data.subarray(0, Math.min(pat.data.byteLength, data.byteLength - off)), off);
  }
  const w: Weight = { dtype, rows, cols, data };
  if (pat.scales) {
    const scales = native.allocAligned((rows * cols) / 16, 64);
    for (let off = 0; off < scales.byteLength; off += pat.scales.byteLength) {
      scales.set(pat.scales.subarray(0, Math.min(pat.scales.byteLength, scales.byteLength - off)), off);
    }
    w.scales = scales;
  }
  return w;
}

/** Bytes a matvec streams from memory: element data plus scales. */
export function weightBytes(w: Weight): number {
  return w.data.byteLength + (w.scales?.byteLength ?? 0);
}

/**
 * Seconds per call: one warm-up, then repeat for at least minSeconds; best and median wall time,
 * and the process CPU time (user + system, all threads) spent in the timed calls.
 */
export function timeIt(
  fn: () => void,
  minSeconds = 1,
  minIters = 3,
): { best: number; median: number; iters: number; cpuSeconds: number } {
  fn();
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  while (times.length < minIters || (performance.now() - start) / 1000 < minSeconds) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  const cpu = process.cpuUsage(cpu0);
  times.sort((a, b) => a - b);
  return {
    best: times[0],
    median: times[Math.floor(times.length / 2)],
    iters: times.length,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

export function matvecOnce(dev: Device, w: Weight, n: number): () => void {
  const x = new Float32Array(n * w.cols).map((_, i) => Math.sin(i) * 0.5);
  const out = new Float32Array(n * w.rows);
  return () => dev.matmul(out, x, n, w);
}
