/**
 * The reference device: plain loops, float64 accumulation, no tricks. It exists to be obviously
 * correct (tests compare the fast devices against it) and to run anywhere, not to be fast.
 */
import type { AttentionArgs, Device, MatmulJob, RopeStyle, RowsOp, Weight } from "../device.js";
import { dequantize, weightDataBytes } from "../f16.js";
import { appendKvRows, gatherRowsHost, kvAsF32, scatterAddRowsVia } from "../host-rows.js";

export class ReferenceDevice implements Device {
  readonly name = "reference";
  readonly threads = 1;
  // Dequantized copies of weights, so repeated matmuls on one weight do not redo the work.
  private readonly cache = new WeakMap<Uint8Array, Float32Array>();

  upload(src: Weight): Weight {
    const bytes = weightDataBytes(src.dtype, src.rows, src.cols);
    if (src.data.byteLength < bytes)
      throw new Error(`upload: ${src.dtype} data has ${src.data.byteLength} < ${bytes} bytes`);
    const w: Weight = { dtype: src.dtype, rows: src.rows, cols: src.cols, data: src.data.slice(0, bytes) };
    if (src.scales) w.scales = src.scales.slice();
    return w;
  }

  private values(w: Weight): Float32Array {
    let v = this.cache.get(w.data);
    if (!v) {
      v = dequantize(w);
      this.cache.set(w.data, v);
    }
    return v;
  }

  matmulMany(jobs: readonly MatmulJob[]): void {
    for (const j of jobs) this.matmul(j.out, j.x, j.n, j.w);
  }

  matmul(out: Float32Array, x: Float32Array, n: number, w: Weight): void {
    if (w.packed) throw new Error("reference device: this weight was packed for another device");
    const wv = this.values(w);
    const { rows, cols } = w;
    for (let t = 0; t < n; t++) {
      for (let r = 0; r < rows; r++) {
        let acc = 0;
        const wo = r * cols;
        const xo = t * cols;
        for (let c = 0; c < cols; c++) acc += wv[wo + c] * x[xo + c];
        out[t * rows + r] = acc;
      }
    }
  }

  rmsnorm(
    out: Float32Array,
    x: Float32Array,
    weight: Float32Array | null,
    rows: number,
    dim: number,
    eps: number,
  ): void {
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      let ss = 0;
      for (let i = 0; i < dim; i++) ss += x[o + i] * x[o + i];
      const inv = 1 / Math.sqrt(ss / dim + eps);
      for (let i = 0; i < dim; i++) out[o + i] = x[o + i] * inv * (weight ? weight[i] : 1);
    }
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
    const half = invFreq.length; // rotate the first 2*half dims of each head
    for (let t = 0; t < nTok; t++) {
      for (let h = 0; h < nHeads; h++) {
        const base = (t * nHeads + h) * headDim;
        for (let i = 0; i < half; i++) {
          const theta = positions[t] * invFreq[i];
          const c = Math.cos(theta);
          const s = Math.sin(theta);
          // interleaved: pairs (2i, 2i+1); neox: pairs (i, i + half) within the rotated span
          const a = style === "interleaved" ? base + 2 * i : base + i;
          const b = style === "interleaved" ? a + 1 : a + half;
          const x0 = x[a];
          const x1 = x[b];
          x[a] = x0 * c - x1 * s;
          x[b] = x0 * s + x1 * c;
        }
      }
    }
  }

  attentionMany(seqs: readonly AttentionArgs[]): void {
    for (const a of seqs) this.attention(a);
  }

  attention(args: AttentionArgs): void {
    appendKvRows(args);
    const { q, out, nTok, nHeads, nKvHeads, headDim, pos0, scale, chunkSize, window } = args;
    const visible = (pos0 + nTok) * nKvHeads * headDim;
    const kCache = kvAsF32(args.kCache, visible);
    const vCache = kvAsF32(args.vCache, visible);
    const group = nHeads / nKvHeads;
    const scores = new Float64Array(pos0 + nTok);
    for (let t = 0; t < nTok; t++) {
      const p = pos0 + t;
      for (let h = 0; h < nHeads; h++) {
        const kvh = Math.floor(h / group);
        const qo = (t * nHeads + h) * headDim;
        let max = Number.NEGATIVE_INFINITY;
        for (let k = 0; k <= p; k++) {
          let visible = true;
          if (chunkSize > 0 && Math.floor(k / chunkSize) !== Math.floor(p / chunkSize)) visible = false;
          if (window > 0 && p - k >= window) visible = false;
          if (!visible) {
            scores[k] = Number.NEGATIVE_INFINITY;
            continue;
          }
          const ko = (k * nKvHeads + kvh) * headDim;
          let dot = 0;
          for (let i = 0; i < headDim; i++) dot += q[qo + i] * kCache[ko + i];
          scores[k] = dot * scale;
          if (scores[k] > max) max = scores[k];
        }
        let sum = 0;
        for (let k = 0; k <= p; k++) {
          scores[k] = scores[k] === Number.NEGATIVE_INFINITY ? 0 : Math.exp(scores[k] - max);
          sum += scores[k];
        }
        for (let i = 0; i < headDim; i++) {
          let acc = 0;
          for (let k = 0; k <= p; k++) {
            if (scores[k] !== 0) acc += scores[k] * vCache[(k * nKvHeads + kvh) * headDim + i];
          }
          out[qo + i] = sum > 0 ? acc / sum : 0;
        }
      }
    }
  }

  swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, len: number): void {
    for (let i = 0; i < len; i++) {
      const g = gate[i];
      out[i] = (g / (1 + Math.exp(-g))) * up[i];
    }
  }

  addScaled(out: Float32Array, a: Float32Array, len: number, scale = 1): void {
    for (let i = 0; i < len; i++) out[i] = out[i] + a[i] * scale;
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
    for (let t = 0; t < nTok; t++) {
      const row = Array.from(logits.subarray(t * nExperts, (t + 1) * nExperts));
      let score: number[];
      if (mode === "softmax") {
        const max = Math.max(...row);
        const e = row.map((v) => Math.exp(v - max));
        const sum = e.reduce((s, v) => s + v, 0);
        score = e.map((v) => v / sum);
      } else {
        score = row;
      }
      // Highest score first; ties go to the lower expert id (stable sort).
      const order = score.map((_, i) => i).sort((a, b) => score[b] - score[a] || a - b);
      const top = order.slice(0, k);
      const w = top.map((i) => (mode === "softmax" ? score[i] : 1 / (1 + Math.exp(-row[i]))));
      const total = w.reduce((s, v) => s + v, 0);
      for (let j = 0; j < k; j++) {
        outIds[t * k + j] = top[j];
        // renormalize applies in either mode (sigmoid + renorm is DeepSeek-style; Llama 4 passes false)
        outWeights[t * k + j] = renormalize ? w[j] / total : w[j];
      }
    }
  }
}
