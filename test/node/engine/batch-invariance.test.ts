import { describe, expect, it } from "vitest";
import { CpuDevice } from "../../../gpu-backend/device/cpu/cpu-device.js";
import type { Weight } from "../../../gpu-backend/device/device.js";
import { f32ToBf16Array, quantizeQ4, quantizeQ8 } from "../../../gpu-backend/device/f16.js";
import { Rng } from "../../../gpu-backend/engine/sampler.js";

/**
 * Continuous batching and the prefix cache promise outputs identical to running each request
 * alone. That holds only if a row of a batched matmul is bit-identical to the same row computed
 * as a matvec, whatever the batch size: checked here for every weight dtype.
 */
describe("batch invariance of matmul", () => {
  const rows = 160;
  const cols = 512;
  const rng = new Rng(5);
  const f = Float32Array.from({ length: rows * cols }, () => rng.next() - 0.5);
  const bf = f32ToBf16Array(f);
  const q8 = quantizeQ8(f, rows, cols);
  const q4 = quantizeQ4(f, rows, cols);
  const weights: Weight[] = [
    { dtype: "f32", rows, cols, data: new Uint8Array(f.buffer) },
    { dtype: "bf16", rows, cols, data: new Uint8Array(bf.buffer) },
    { dtype: "q8", rows, cols, data: q8.data, scales: q8.scales },
    { dtype: "q4", rows, cols, data: q4.data, scales: q4.scales },
  ];
  const device = new CpuDevice({ threads: 2 });

  it.each(weights.map((w) => [w.dtype, w] as const))("%s rows do not depend on the batch size", (_, w0) => {
    const w = device.upload(w0);
    for (const n of [2, 3, 4, 7, 64]) {
      const x = Float32Array.from({ length: n * cols }, () => rng.next() * 2 - 1);
      const batched = new Float32Array(n * rows);
      device.matmul(batched, x, n, w);
      for (let t = 0; t < n; t++) {
        const one = new Float32Array(rows);
        device.matmul(one, x.subarray(t * cols, (t + 1) * cols), 1, w);
        expect(Array.from(batched.subarray(t * rows, (t + 1) * rows))).toEqual(Array.from(one));
      }
    }
  });
});
