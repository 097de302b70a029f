/**
 * Op-by-op comparison of two devices running the same model: each device is wrapped so that every
 * op's outputs are copied as it returns; the two traces are then walked in order and the first op
 * whose outputs differ beyond a tolerance is named. Finds where a model-level difference starts.
 */
import type { AttentionArgs, Device, MatmulJob, Weight } from "../../gpu-backend/device/device.js";
import { relErr } from "./parity-lib.js";

export interface OpRecord {
  op: string;
  out: Float32Array;
}

/** `inner` with every op's outputs appended to `trace`. */
export function tracingDevice(inner: Device, trace: OpRecord[]): Device {
  const rec = (op: string, ...outs: ArrayLike<number>[]) => {
    let n = 0;
    for (const o of outs) n += o.length;
    const out = new Float32Array(n);
    let at = 0;
    for (const o of outs) {
      out.set(o, at);
      at += o.length;
    }
    trace.push({ op, out });
  };
  return {
    name: `${inner.name}+trace`,
    threads: inner.threads,
    upload: (w: Weight) => inner.upload(w),
    adopt: inner.adopt ? (w: Weight) => inner.adopt!(w) : undefined,
    matmul(out, x, n, w) {
      inner.matmul(out, x, n, w);
      rec(`matmul ${w.dtype} ${w.rows}x${w.cols} n=${n}`, out.subarray(0, n * w.rows));
    },
    matmulMany(jobs: readonly MatmulJob[]) {
      inner.matmulMany(jobs);
      for (const j of jobs)
        rec(`matmulMany ${j.w.dtype} ${j.w.rows}x${j.w.cols} n=${j.n}`, j.out.subarray(0, j.n * j.w.rows));
    },
    rmsnorm(out, x, weight, rows, dim, eps) {
      inner.rmsnorm(out, x, weight, rows, dim, eps);
      rec(`rmsnorm ${rows}x${dim}`, out.subarray(0, rows * dim));
    },
    rope(x, nTok, nHeads, headDim, positions, invFreq, style) {
      inner.rope(x, nTok, nHeads, headDim, positions, invFreq, style);
      rec(`rope ${nTok}x${nHeads}`, x.subarray(0, nTok * nHeads * headDim));
    },
    attention(a: AttentionArgs) {
      inner.attention(a);
      rec("attention", a.out.subarray(0, a.nTok * a.nHeads * a.headDim));
    },
    attentionMany(seqs: readonly AttentionArgs[]) {
      inner.attentionMany(seqs);
      for (const a of seqs)
        rec(`attention nTok=${a.nTok} pos0=${a.pos0}`, a.out.subarray(0, a.nTok * a.nHeads * a.headDim));
    },
    swiglu(out, gate, up, len) {
      inner.swiglu(out, gate, up, len);
      rec(`swiglu ${len}`, out.subarray(0, len));
    },
    addScaled(out, a, len, scale) {
      inner.addScaled(out, a, len, scale);
      rec(`addScaled ${len}`, out.subarray(0, len));
    },
    gatherRows(dst, src, rows, count, dim, scales) {
      inner.gatherRows(dst, src, rows, count, dim, scales);
      rec(`gatherRows ${count}x${dim}`, dst.subarray(0, count * dim));
    },
    scatterAddRows(dst, src, rows, count, dim, scales) {
      inner.scatterAddRows(dst, src, rows, count, dim, scales);
      rec(`scatterAddRows ${count}x${dim}`, dst.subarray(0, dst.length));
    },
    route(logits, nTok, nExperts, k, mode, renormalize, outIds, outWeights) {
      inner.route(logits, nTok, nExperts, k, mode, renormalize, outIds, outWeights);
      rec(`route ${nTok}x${nExperts}`, outIds.subarray(0, nTok * k), outWeights.subarray(0, nTok * k));
    },
  };
}

export interface Divergence {
  /** Ops compared (both traces, in order) before the first difference, or all when none. */
  index: number;
  op: string | null;
  rel_diff: number;
  /** The worst relative difference over the ops before it. */
  worst_before: number;
  ops: number;
}

/** The first op (in call order) whose outputs differ by more than `tol` of their scale. */
export function firstDivergence(a: OpRecord[], b: OpRecord[], tol: number): Divergence {
  let worst = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i].op !== b[i].op || a[i].out.length !== b[i].out.length)
      return { index: i, op: `${a[i].op} vs ${b[i].op}`, rel_diff: Number.NaN, worst_before: worst, ops: n };
    const rel = relErr(b[i].out, a[i].out);
    if (rel > tol) return { index: i, op: a[i].op, rel_diff: rel, worst_before: worst, ops: n };
    worst = Math.max(worst, rel);
  }
  return { index: n, op: null, rel_diff: 0, worst_before: worst, ops: n };
}
