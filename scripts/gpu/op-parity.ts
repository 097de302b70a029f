/**
 * Op-level parity of two devices: the same q8 / q4 weights and activations through each device's
 * matmul, at token counts that take the decode matvec (1, 5) and the prefill GEMM (24). Tells a
 * kernel difference from one that greedy decoding only shows as drifting logits.
 */
import type { Device, Weight } from "../../gpu-backend/device/device.js";
import { quantizeQ4, quantizeQ8 } from "../../gpu-backend/device/f16.js";
import { denseSpecs } from "../../gpu-backend/model/canonical.js";
import type { Checkpoint } from "../../gpu-backend/model/types.js";
import { relErr } from "./parity-lib.js";

export interface OpParityRow {
  dtype: "q8" | "q4";
  n: number;
  /** Largest |a - b| over the largest |a|. */
  rel_diff: number;
}

export function opParity(a: Device, b: Device, rows = 96, cols = 512): OpParityRow[] {
  const out: OpParityRow[] = [];
  const w32 = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37 + 1) * 0.05);
  for (const dtype of ["q8", "q4"] as const) {
    const q = dtype === "q8" ? quantizeQ8(w32, rows, cols) : quantizeQ4(w32, rows, cols);
    const w: Weight = { dtype, rows, cols, data: q.data, scales: q.scales };
    for (const [n, rel_diff] of compareMatmul(a, b, w, [1, 5, 24])) out.push({ dtype, n, rel_diff });
  }
  return out;
}

export interface TensorParityRow {
  tensor: string;
  dtype: string;
  rows: number;
  cols: number;
  n: number;
  rel_diff: number;
}

/**
 * Every quantized matrix of layer 0 and 1 of a checkpoint (and expert 0 of its first MoE layer)
 * through both devices' matmul at 1, 5, 16 and 24 tokens: where a model-level difference starts.
 */
export function checkpointOpParity(ckpt: Checkpoint, a: Device, b: Device): TensorParityRow[] {
  const c = ckpt.config;
  const mats: [string, Weight][] = [];
  for (const s of denseSpecs(c)) {
    if (s.vector || !/^(l[01]\.|embed|lm_head)/.test(s.name) || !ckpt.has(s.name)) continue;
    const w = ckpt.loadDense(s.name);
    if (w.dtype === "q8" || w.dtype === "q4") mats.push([s.name, w]);
  }
  const moe = c.moeLayers.indexOf(true);
  if (moe >= 0) {
    const e = ckpt.loadExpert(moe, 0);
    mats.push(
      [`l${moe}.expert0.gate`, e.gate],
      [`l${moe}.expert0.up`, e.up],
      [`l${moe}.expert0.down`, e.down],
    );
  }
  const out: TensorParityRow[] = [];
  for (const [name, w] of mats) {
    for (const [n, rel_diff] of compareMatmul(a, b, w, [1, 5, 16, 24]))
      out.push({ tensor: name, dtype: w.dtype, rows: w.rows, cols: w.cols, n, rel_diff });
  }
  return out;
}

/**
 * `w` uploaded to both devices (each gets its own copy: a device may re-lay the bytes out) and
 * multiplied with the same activations at each token count: [n, |b - a| / max |a|].
 */
function compareMatmul(a: Device, b: Device, w: Weight, ns: number[]): [number, number][] {
  const copy = (): Weight => ({ ...w, data: w.data.slice(), scales: w.scales?.slice() });
  const wa = a.upload(copy());
  const wb = b.upload(copy());
  return ns.map((n) => {
    const x = Float32Array.from({ length: n * w.cols }, (_, i) => Math.cos(i * 0.91) * 1.3);
    const ya = new Float32Array(n * w.rows);
    const yb = new Float32Array(n * w.rows);
    a.matmul(ya, x, n, wa);
    b.matmul(yb, x, n, wb);
    return [n, relErr(yb, ya)];
  });
}
