/**
 * Per-op timings of the CUDA addon at the Scout layer's shapes (CUDA events around many
 * back-to-back launches of one op): what a decode layer's time is made of, and how close each
 * weight-streaming op gets to the card's read bandwidth. The q8/q4 matvecs run with int8 and with
 * f32 activations (setInt8Matvec), at 1 and 4 tokens.
 */
import type { CudaAddon } from "../../gpu-backend/device/cuda/native.js";
import { relErr } from "./parity-lib.js";

export interface OpRow {
  op: string;
  /** GPU time per call (CUDA events around back-to-back calls). */
  us: number;
  /** Host time per call to enqueue it (JS -> Node-API -> launch); above `us`, the host is the limit. */
  host_us: number;
  /** Weight bytes over time (matvecs only), GB/s. */
  gbps: number | null;
  /** Largest |difference| from the f32-activation result over its largest |value| (int8 rows). */
  rel_diff?: number;
}

const Q8 = 3;
const Q4 = 4;
const blockBytes = (dtype: number) => (dtype === Q8 ? 32 : 16);
const weightBytes = (dtype: number, rows: number, cols: number) => (rows * cols * blockBytes(dtype)) / 32;

export function runOpsBench(a: CudaAddon, log: (s: string) => void, reps = 200): OpRow[] {
  const rows: OpRow[] = [];
  /** GPU and host microseconds per call of `fn`. */
  const time = (fn: () => void): { us: number; host: number } => {
    for (let i = 0; i < 3; i++) fn();
    const s = a.recordEvent(0);
    const h0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    const host = ((performance.now() - h0) * 1000) / reps;
    const e = a.recordEvent(0);
    a.sync();
    const ms = a.eventElapsed(s, e);
    a.releaseEvent(s);
    a.releaseEvent(e);
    return { us: (ms * 1000) / reps, host };
  };
  const push = (op: string, { us, host }: { us: number; host: number }, bytes = 0, rel?: number) => {
    const row: OpRow = {
      op,
      us: Number(us.toFixed(2)),
      host_us: Number(host.toFixed(2)),
      gbps: bytes ? Number((bytes / us / 1e3).toFixed(0)) : null,
    };
    if (rel !== undefined) row.rel_diff = rel;
    rows.push(row);
    log(
      `op ${op}: ${row.us} us (host ${row.host_us} us)${row.gbps ? `, ${row.gbps} GB/s` : ""}${rel !== undefined ? `, rel diff ${rel.toExponential(1)}` : ""}`,
    );
  };

  const H = 5120;
  const FFN = 8192;
  const x = a.alloc(4 * FFN * 4);
  a.fill(x, 0, 4 * FFN, 2, 3, -1, 1);
  const out = a.alloc(4 * FFN * 4);
  const shapes: [string, number, number][] = [
    ["q/o 5120x5120", H, H],
    ["k/v 1024x5120", 1024, H],
    ["gate/up 8192x5120", FFN, H],
    ["down 5120x8192", H, FFN],
  ];
  for (const dtype of [Q4, Q8]) {
    for (const [name, r, c] of shapes) {
      if (dtype === Q8 && name.startsWith("k/v")) continue;
      const wb = weightBytes(dtype, r, c);
      const w = a.alloc(wb);
      const s = a.alloc((r * c) / 16);
      a.fill(w, 0, wb, 0, r + c, 0, 0);
      a.fill(s, 0, (r * c) / 32, 1, r + c + 1, 0.5 / Math.sqrt(c), 1.5 / Math.sqrt(c));
      for (const n of [1, 4]) {
        const bytes = wb + (r * c) / 16;
        const run = () => a.matmul(out, 0, x, 0, n, dtype, r, c, w, 0, s, 0);
        a.setInt8Matvec(false);
        const f32 = time(run);
        const ref = new Float32Array(n * r);
        a.read(out, 0, ref);
        a.setInt8Matvec(true);
        const i8 = time(run);
        const got = new Float32Array(n * r);
        a.read(out, 0, got);
        const tag = `${dtype === Q4 ? "q4" : "q8"} ${name} n=${n}`;
        push(`${tag} f32-act`, f32, bytes);
        push(`${tag} int8-act`, i8, bytes, relErr(got, ref));
      }
      a.free(w);
      a.free(s);
    }
  }

  const HEADS = 40;
  const KV = 8;
  const HD = 128;
  const ctx = 2048;
  const q = a.alloc(HEADS * HD * 4);
  const kc = a.alloc(ctx * KV * HD * 4);
  const vc = a.alloc(ctx * KV * HD * 4);
  a.fill(q, 0, HEADS * HD, 2, 5, -1, 1);
  a.fill(kc, 0, ctx * KV * HD, 2, 6, -1, 1);
  a.fill(vc, 0, ctx * KV * HD, 2, 7, -1, 1);
  for (const p of [64, 2000])
    push(
      `attention 40/8 heads, ${p + 1} positions`,
      time(() => a.attention(q, 0, kc, 0, vc, 0, out, 0, 1, HEADS, KV, HD, p, 1 / Math.sqrt(HD), 8192, 0)),
      2 * (p + 1) * KV * HD * 4,
    );
  push(
    "rmsnorm 5120",
    time(() => a.rmsnorm(out, 0, x, 0, 0, 0, 1, H, 1e-5)),
  );
  push(
    "swiglu 8192",
    time(() => a.swiglu(out, 0, x, 0, x, FFN * 4, FFN)),
  );
  push(
    "addScaled 5120",
    time(() => a.addScaled(out, 0, x, 0, H, 1)),
  );
  const router = a.alloc(16 * H * 4);
  a.fill(router, 0, 16 * H, 2, 9, -0.02, 0.02);
  push(
    "router f32 16x5120",
    time(() => a.matmul(out, 0, x, 0, 1, 0, 16, H, router, 0, 0, 0)),
    16 * H * 4,
  );
  const ids = a.alloc(64);
  const wts = a.alloc(64);
  push(
    "route top-1 of 16",
    time(() => a.route(out, 0, 1, 16, 1, true, false, ids, 0, wts, 0)),
  );
  for (const id of [x, out, q, kc, vc, router, ids, wts]) a.free(id);
  return rows;
}
