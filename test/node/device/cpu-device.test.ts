import { describe, expect, it } from "vitest";
import { CpuDevice } from "../../../gpu-backend/device/cpu/cpu-device.js";
import { loadNative } from "../../../gpu-backend/device/cpu/native.js";
import type { AttentionArgs, WeightDType } from "../../../gpu-backend/device/device.js";
import { f16ArrayToF32, f32ToF16Array, f32ToF16Bits, makeWeight } from "../../../gpu-backend/device/f16.js";
import { ReferenceDevice } from "../../../gpu-backend/device/reference/reference-device.js";
import { expectClose, randn, rng } from "./helpers.js";

const native = loadNative();

/** What the avx512vnni q4 and (uploaded, packed) q8 kernels see: x rounded to int8 per 32-block, d = amax/127 (f32), RNE. */
function quantizeActivations(x: Float32Array): Float32Array {
  const fr = Math.fround;
  const out = new Float32Array(x.length);
  for (let b = 0; b < x.length; b += 32) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    for (let j = 0; j < 32; j++) {
      const v = fr(x[b + j] * id);
      let q = Math.round(v);
      if (Math.abs(v % 1) === 0.5) q = 2 * Math.round(v / 2); // ties to even, as vcvtps2dq does
      out[b + j] = fr(q * d);
    }
  }
  return out;
}
const ref = new ReferenceDevice();
const DTYPES: WeightDType[] = ["f32", "f16", "bf16", "q8", "q4"];

// Each instruction set this CPU supports runs the same checks (scalar always does).
describe.each(native.availableIsas)("CpuDevice (%s)", (isa) => {
  const dev = new CpuDevice({ isa, threads: 2 });

  describe.each(DTYPES)("matmul %s", (dtype) => {
    const quant = dtype === "q8" || dtype === "q4";
    // Odd shapes: 37 rows leave a remainder after 4-row tiles; odd cols exercise the scalar tails.
    const shapes: [number, number][] = quant
      ? [
          [37, 96],
          [37, 160],
          [300, 512],
        ]
      : [
          [37, 101],
          [37, 160],
          [300, 515],
        ];
    it.each(shapes)("rows %i cols %i, n = 1, 5, 16", (rows, cols) => {
      const r = rng(rows * 1000 + cols);
      const w = makeWeight(randn(rows * cols, r), rows, cols, dtype);
      const uploaded = dev.upload(w);
      for (const n of [1, 5, 16]) {
        const x = randn(n * cols, r);
        const got = new Float32Array(n * rows);
        const want = new Float32Array(n * rows);
        dev.matmul(got, x, n, uploaded);
        if (quant && isa === "avx512vnni") {
          // Activations are quantized to int8 per block first (llama.cpp style): exact against the
          // reference on the same quantized activations, and close to the unquantized result.
          ref.matmul(want, quantizeActivations(x), n, w);
          expectClose(got, want, 2e-6 * cols, 1e-5, `${dtype} ${rows}x${cols} n=${n} (int8 x)`);
          ref.matmul(want, x, n, w);
          expectClose(got, want, 0.01 * Math.sqrt(cols), 0, `${dtype} ${rows}x${cols} n=${n} vs f32 x`);
        } else {
          ref.matmul(want, x, n, w);
          // Inputs are exact in f32 on both sides; only f32 accumulation order differs.
          expectClose(got, want, 2e-6 * cols, 1e-5, `${dtype} ${rows}x${cols} n=${n}`);
        }
      }
    });
  });

  it("matmul reads weights in JS memory at unaligned offsets, and validates sizes", () => {
    const r = rng(7);
    const rows = 9;
    const cols = 64;
    const w = makeWeight(randn(rows * cols, r), rows, cols, "q8");
    const buf = new Uint8Array(w.data.byteLength + 3);
    buf.set(w.data, 3);
    const sbuf = new Uint8Array(w.scales!.byteLength + 1);
    sbuf.set(w.scales!, 1);
    const shifted = { ...w, data: buf.subarray(3), scales: sbuf.subarray(1) };
    const x = randn(cols, r);
    const got = new Float32Array(rows);
    const want = new Float32Array(rows);
    dev.matmul(got, x, 1, shifted);
    // avx512vnni: int8 activations (plain q8 takes the same arithmetic as packed); exact elsewhere.
    ref.matmul(want, isa === "avx512vnni" ? quantizeActivations(x) : x, 1, w);
    expectClose(got, want, 1e-4, 1e-5, "shifted q8");
    expect(() => dev.matmul(new Float32Array(rows - 1), x, 1, w)).toThrow(/matmul out/);
    expect(() => dev.matmul(got, x.subarray(1), 1, w)).toThrow(/matmul x/);
    expect(() => dev.matmul(got, x, 1, { ...w, data: w.data.subarray(1) })).toThrow(/weight data/);
  });

  it("matmulMany equals one matmul per job, bit for bit (mixed dtypes, shapes and token counts)", () => {
    const r = rng(11);
    // Two q4 jobs in one dispatch: their quantized activations must not share a buffer.
    const specs: [WeightDType, number, number, number][] = [
      ["q4", 37, 96, 3],
      ["q8", 300, 512, 1],
      ["q4", 64, 160, 5],
      ["bf16", 37, 101, 16],
      ["f32", 8, 64, 2],
    ];
    const jobs = specs.map(([dtype, rows, cols, n]) => ({
      w: dev.upload(makeWeight(randn(rows * cols, r), rows, cols, dtype)),
      x: randn(n * cols, r),
      n,
      out: new Float32Array(n * rows),
    }));
    dev.matmulMany(jobs);
    for (const j of jobs) {
      const want = new Float32Array(j.out.length);
      dev.matmul(want, j.x, j.n, j.w);
      expect(j.out).toEqual(want);
    }
    dev.matmulMany([]); // nothing to do is fine
    const bad = { ...jobs[1], out: new Float32Array(10) };
    expect(() => dev.matmulMany([jobs[0], bad])).toThrow(/matmul out/);
  });

  it("upload copies into device memory", () => {
    const r = rng(3);
    const w = makeWeight(randn(4 * 32, r), 4, 32, "q4");
    const u = dev.upload(w);
    expect(u.data).not.toBe(w.data);
    expect(Array.from(u.data)).toEqual(Array.from(w.data));
    expect(Array.from(u.scales!)).toEqual(Array.from(w.scales!));
  });

  it("small uploads share slabs: 64-byte aligned, never overlapping, computing as in any other place", () => {
    const r = rng(5);
    const srcs = [makeWeight(randn(48 * 64, r), 48, 64, "q8"), makeWeight(randn(16 * 96, r), 16, 96, "f16")];
    const ups = srcs.map((w) => dev.upload(w));
    const blocks = ups.flatMap((u) => (u.scales ? [u.data, u.scales] : [u.data]));
    for (const b of blocks) expect(b.byteOffset % 64).toBe(0);
    // Blocks of one slab never overlap.
    const same = blocks.filter((b) => b.buffer === blocks[0].buffer);
    expect(same.length).toBeGreaterThan(1);
    const spans = same.map((b) => [b.byteOffset, b.byteOffset + b.byteLength]).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i][0]).toBeGreaterThanOrEqual(spans[i - 1][1]);
    for (const [i, w] of srcs.entries()) {
      const x = randn(2 * w.cols, r);
      const got = new Float32Array(2 * w.rows);
      const want = new Float32Array(2 * w.rows);
      dev.matmul(got, x, 2, ups[i]);
      new CpuDevice({ isa, threads: 1 }).matmul(want, x, 2, new CpuDevice({ isa }).upload(w));
      expect(got).toEqual(want);
    }
  });

  it("rmsnorm with and without weight", () => {
    const r = rng(11);
    const rows = 3;
    const dim = 77;
    const x = randn(rows * dim, r, 3);
    const weight = randn(dim, r);
    for (const wv of [weight, null]) {
      const got = new Float32Array(rows * dim);
      const want = new Float32Array(rows * dim);
      dev.rmsnorm(got, x, wv, rows, dim, 1e-5);
      ref.rmsnorm(want, x, wv, rows, dim, 1e-5);
      expectClose(got, want, 1e-6, 1e-6, "rmsnorm");
    }
  });

  it("rmsnorm of a batch split over threads equals one thread's, bit for bit", () => {
    const r = rng(12);
    // 45 rows: groups of 8 plus a tail, enough work to be split.
    const rows = 45;
    const dim = 1024;
    const x = randn(rows * dim, r, 3);
    const weight = randn(dim, r);
    const one = new CpuDevice({ isa, threads: 1 });
    for (const wv of [weight, null]) {
      const got = new Float32Array(rows * dim);
      const want = new Float32Array(rows * dim);
      dev.rmsnorm(got, x, wv, rows, dim, 1e-5);
      one.rmsnorm(want, x, wv, rows, dim, 1e-5);
      expect(got).toEqual(want);
    }
  });

  it.each(["interleaved", "neox"] as const)("rope %s, full and partial rotation", (style) => {
    const r = rng(style.length);
    const nTok = 5;
    const nHeads = 3;
    const headDim = 16;
    const positions = Int32Array.from({ length: nTok }, () => Math.floor(r() * 5000));
    for (const half of [8, 4]) {
      const invFreq = Float32Array.from({ length: half }, (_, i) => 10000 ** (-i / half));
      const x = randn(nTok * nHeads * headDim, r);
      const got = x.slice();
      const want = x.slice();
      dev.rope(got, nTok, nHeads, headDim, positions, invFreq, style);
      ref.rope(want, nTok, nHeads, headDim, positions, invFreq, style);
      expectClose(got, want, 1e-6, 1e-6, `rope ${style} half=${half}`);
      if (half === 4)
        expectClose(got.subarray(headDim - 8, headDim), x.subarray(headDim - 8, headDim), 0, 0, "unrotated");
    }
  });

  // GQA 6 heads over 2 kv heads; causal, chunked and sliding-window masks; prefill and decode.
  const cases: [number, number, number, number][] = [
    // nTok, pos0, chunk, window
    [5, 0, 0, 0],
    [1, 9, 0, 0],
    [5, 7, 4, 0],
    [1, 13, 4, 0],
    [5, 7, 0, 3],
    [1, 13, 0, 5],
    [5, 200, 64, 0],
    [5, 200, 0, 50],
  ];
  // Head dims 64 and 128 take the AVX-512 register kernel (16 keys at a time); 20 the generic one.
  // Groups of 3 query heads per KV head leave an unpaired head in the output loop.
  const shapes: [number, number, number][] = [
    [6, 2, 20],
    [6, 2, 64],
    [8, 2, 128],
    [4, 4, 64],
  ];
  it.each(shapes.flatMap(([h, kv, hd]) => cases.map((c) => [h, kv, hd, ...c] as const)))(
    "attention heads %i/%i dim %i: nTok %i pos0 %i chunk %i window %i",
    (nHeads, nKvHeads, headDim, nTok, pos0, chunkSize, window) => {
      const r = rng(nTok * 31 + pos0 + chunkSize * 7 + window + headDim);
      const maxCtx = pos0 + nTok + 3;
      const base = {
        q: randn(nTok * nHeads * headDim, r),
        kCache: randn(maxCtx * nKvHeads * headDim, r, 2),
        vCache: randn(maxCtx * nKvHeads * headDim, r),
        nTok,
        nHeads,
        nKvHeads,
        headDim,
        pos0,
        scale: 1 / Math.sqrt(headDim),
        chunkSize,
        window,
      };
      const got: AttentionArgs = { ...base, out: new Float32Array(nTok * nHeads * headDim) };
      const want: AttentionArgs = { ...base, out: new Float32Array(nTok * nHeads * headDim) };
      dev.attention(got);
      ref.attention(want);
      expectClose(got.out, want.out, 1e-5, 1e-5, "attention");
    },
  );

  // Prefill chunks (4+ tokens) read each KV head's rows from a contiguous copy; a single token
  // reads the cache in place. Both must give the same bits.
  it.each([
    [8, 2, 64, 40, 6, 0],
    [6, 2, 128, 100, 17, 32],
    [6, 2, 20, 30, 5, 0],
    [4, 4, 64, 0, 24, 0],
  ])(
    "attention of a token does not depend on how many tokens share the call (heads %i/%i dim %i pos0 %i nTok %i chunk %i)",
    (nHeads, nKvHeads, headDim, pos0, nTok, chunkSize) => {
      const r = rng(77 + headDim + nTok);
      const maxCtx = pos0 + nTok;
      const base = {
        kCache: randn(maxCtx * nKvHeads * headDim, r),
        vCache: randn(maxCtx * nKvHeads * headDim, r),
        nHeads,
        nKvHeads,
        headDim,
        scale: 0.125,
        chunkSize,
        window: 0,
      };
      const q = randn(nTok * nHeads * headDim, r);
      const all = new Float32Array(q.length);
      dev.attention({ ...base, q, out: all, nTok, pos0 });
      const row = nHeads * headDim;
      for (let t = 0; t < nTok; t++) {
        const one = new Float32Array(row);
        dev.attention({ ...base, q: q.subarray(t * row, (t + 1) * row), out: one, nTok: 1, pos0: pos0 + t });
        expect(one).toEqual(all.subarray(t * row, (t + 1) * row));
      }
    },
  );

  it("attentionMany equals one attention call per sequence, bit for bit", () => {
    const r = rng(78);
    const seqs = [
      [1, 30, 0, 0],
      [4, 9, 8, 0],
      [1, 0, 0, 0],
      [3, 50, 0, 16],
    ].map(([nTok, pos0, chunkSize, window]) => ({
      q: randn(nTok * 4 * 32, r),
      kCache: randn((pos0 + nTok) * 2 * 32, r),
      vCache: randn((pos0 + nTok) * 2 * 32, r),
      out: new Float32Array(nTok * 4 * 32),
      nTok,
      nHeads: 4,
      nKvHeads: 2,
      headDim: 32,
      pos0,
      scale: 0.2,
      chunkSize,
      window,
    }));
    dev.attentionMany(seqs);
    for (const a of seqs) {
      const want = new Float32Array(a.out.length);
      dev.attention({ ...a, out: want });
      expect(a.out).toEqual(want);
    }
    expect(() => dev.attentionMany([{ ...seqs[0], kCache: new Float32Array(3) }])).toThrow(/kCache/);
  });

  it("swiglu and addScaled", () => {
    const r = rng(5);
    const len = 1001;
    const g = randn(len, r, 8);
    const u = randn(len, r);
    const got = new Float32Array(len);
    const want = new Float32Array(len);
    dev.swiglu(got, g, u, len);
    ref.swiglu(want, g, u, len);
    expectClose(got, want, 1e-6, 1e-6, "swiglu");
    // Large enough to be split across threads, with gates far into both tails.
    const big = 70_001;
    const gb = randn(big, r, 100);
    const ub = randn(big, r);
    const gotB = new Float32Array(big);
    const wantB = new Float32Array(big);
    dev.swiglu(gotB, gb, ub, big);
    ref.swiglu(wantB, gb, ub, big);
    expectClose(gotB, wantB, 1e-6, 1e-6, "swiglu big");
    const a = randn(len, r);
    for (const scale of [undefined, 0.37]) {
      const o1 = g.slice();
      const o2 = g.slice();
      dev.addScaled(o1, a, len, scale);
      ref.addScaled(o2, a, len, scale);
      expectClose(o1, o2, 1e-7, 1e-7, "addScaled");
    }
  });

  it("gatherRows and scatterAddRows: row copies and addScaled per listed row, in order", () => {
    const r = rng(13);
    const dim = 37;
    const src = randn(6 * dim, r);
    // Row 4 twice: a token that picked two experts gets both outputs, first one first.
    const rows = Int32Array.from([4, 0, 4, 2]);
    const scales = Float32Array.from([0.5, -1.25, 3, 0.1]);
    for (const sc of [scales, null]) {
      const got = new Float32Array(rows.length * dim);
      const want = new Float32Array(rows.length * dim);
      dev.gatherRows(got, src, rows, rows.length, dim, sc);
      ref.gatherRows(want, src, rows, rows.length, dim, sc);
      expect(got).toEqual(want); // one f32 product per element either way
      const dstGot = randn(6 * dim, rng(14));
      const dstWant = dstGot.slice();
      dev.scatterAddRows(dstGot, got, rows, rows.length, dim, sc);
      for (let i = 0; i < rows.length; i++) {
        const o = dstWant.subarray(rows[i] * dim, (rows[i] + 1) * dim);
        dev.addScaled(o, got.subarray(i * dim, (i + 1) * dim), dim, sc ? sc[i] : 1);
      }
      expect(dstGot).toEqual(dstWant);
    }
    // Only `count` rows are used; a listed row outside the table is refused before any write.
    const dst = new Float32Array(rows.length * dim);
    dev.gatherRows(dst, src, Int32Array.from([1, 99]), 1, dim, null);
    expect(dst.subarray(0, dim)).toEqual(src.subarray(dim, 2 * dim));
    const before = dst.slice();
    expect(() => dev.gatherRows(dst, src, Int32Array.from([1, 6]), 2, dim, null)).toThrow(/out of range/);
    expect(() => dev.scatterAddRows(dst, src, Int32Array.from([0, -1]), 2, dim, null)).toThrow(
      /out of range/,
    );
    // Too small a dense side (gather's dst, scatter's src) is refused by every device.
    for (const d of [dev, ref]) {
      const short = new Float32Array(dim);
      expect(() => d.gatherRows(short, src, Int32Array.from([1, 2]), 2, dim, null)).toThrow(/dst|elements/);
      expect(() => d.scatterAddRows(dst, short, Int32Array.from([1, 2]), 2, dim, null)).toThrow(
        /src|elements/,
      );
    }
    expect(dst).toEqual(before);
  });

  // An f16 cache holds IEEE half bits; its attention is the f32 arithmetic on the widened values.
  it.each([
    [8, 2, 64, 40, 1],
    [8, 2, 64, 40, 6],
    [6, 2, 20, 30, 1],
    [6, 2, 20, 30, 5],
    [4, 4, 128, 17, 2],
  ])(
    "attention on an f16 cache (heads %i/%i dim %i pos0 %i nTok %i) equals f32 on the same values",
    (nHeads, nKvHeads, headDim, pos0, nTok) => {
      const r = rng(90 + headDim + nTok);
      const row = nKvHeads * headDim;
      const keys = pos0 + nTok;
      const k16 = f32ToF16Array(randn(keys * row, r, 2));
      const v16 = f32ToF16Array(randn(keys * row, r));
      const base = {
        q: randn(nTok * nHeads * headDim, r),
        nTok,
        nHeads,
        nKvHeads,
        headDim,
        pos0,
        scale: 0.125,
        chunkSize: 0,
        window: 0,
      };
      const got = new Float32Array(nTok * nHeads * headDim);
      const want = new Float32Array(got.length);
      dev.attention({ ...base, kCache: k16, vCache: v16, out: got });
      dev.attention({ ...base, kCache: f16ArrayToF32(k16), vCache: f16ArrayToF32(v16), out: want });
      expect(got).toEqual(want);
      const refOut = new Float32Array(got.length);
      ref.attention({ ...base, kCache: k16, vCache: v16, out: refOut });
      expectClose(got, refOut, 1e-5, 1e-5, "f16 attention vs reference");
      expect(() => dev.attention({ ...base, kCache: k16, vCache: f16ArrayToF32(v16), out: got })).toThrow(
        /one element type/,
      );
    },
  );

  it("kNew into an f16 cache rounds to nearest even, as the reference stores it", () => {
    const [nHeads, nKvHeads, headDim, pos0, nTok] = [2, 1, 64, 3, 2];
    const n = nTok * nKvHeads * headDim;
    // Ties, subnormals, overflow to infinity, values just below the largest half, signed zero.
    const special = [
      1 + 2 ** -11,
      1 + 3 * 2 ** -11,
      2 ** -25,
      3 * 2 ** -26,
      2 ** -14 - 2 ** -25,
      65520,
      65519,
      -0,
      1e-9,
      -7e4,
    ];
    const kNew = Float32Array.from({ length: n }, (_, i) =>
      i < special.length ? special[i] : Math.sin(i) * 3,
    );
    const vNew = Float32Array.from({ length: n }, (_, i) => Math.cos(i) * 1000);
    const cap = (pos0 + nTok) * nKvHeads * headDim;
    const caches = [dev, ref].map((d) => {
      const kCache = new Uint16Array(cap);
      const vCache = new Uint16Array(cap);
      const out = new Float32Array(nTok * nHeads * headDim);
      d.attention({
        q: new Float32Array(out.length).fill(0.01),
        kCache,
        vCache,
        kNew,
        vNew,
        out,
        nTok,
        nHeads,
        nKvHeads,
        headDim,
        pos0,
        scale: 1,
        chunkSize: 0,
        window: 0,
      });
      return { kCache, vCache };
    });
    const at = pos0 * nKvHeads * headDim;
    expect(Array.from(caches[0].kCache.subarray(at))).toEqual(Array.from(kNew, f32ToF16Bits));
    expect(caches[0].kCache).toEqual(caches[1].kCache);
    expect(caches[0].vCache).toEqual(caches[1].vCache);
  });

  it("attention stores kNew / vNew at pos0 first, as a separate write would", () => {
    const r = rng(15);
    const [nHeads, nKvHeads, headDim, pos0, nTok] = [4, 2, 64, 20, 3];
    const row = nKvHeads * headDim;
    const cap = pos0 + nTok + 5;
    const kCache = randn(cap * row, r);
    const vCache = randn(cap * row, r);
    const kNew = randn(nTok * row, r);
    const vNew = randn(nTok * row, r);
    const base = { q: randn(nTok * nHeads * headDim, r), nTok, nHeads, nKvHeads, headDim, pos0 };
    const rest = { scale: 0.125, chunkSize: 0, window: 0 };
    for (const d of [dev, ref]) {
      const k1 = kCache.slice();
      const v1 = vCache.slice();
      const got = new Float32Array(nTok * nHeads * headDim);
      d.attentionMany([{ ...base, ...rest, kCache: k1, vCache: v1, kNew, vNew, out: got }]);
      const k2 = kCache.slice();
      const v2 = vCache.slice();
      k2.set(kNew, pos0 * row);
      v2.set(vNew, pos0 * row);
      const want = new Float32Array(got.length);
      d.attention({ ...base, ...rest, kCache: k2, vCache: v2, out: want });
      expect(k1).toEqual(k2);
      expect(v1).toEqual(v2);
      expect(got).toEqual(want);
      expect(() => d.attention({ ...base, ...rest, kCache: k1, vCache: v1, kNew, out: want })).toThrow(
        /together/,
      );
    }
  });

  it.each([
    ["softmax", true],
    ["softmax", false],
    ["sigmoid", false],
    ["sigmoid", true],
  ] as const)("route %s renormalize=%s", (mode, renorm) => {
    const r = rng(mode.length + (renorm ? 1 : 0));
    const nTok = 5;
    const nExperts = 9;
    const k = 3;
    const logits = randn(nTok * nExperts, r, 3);
    const ids = [new Int32Array(nTok * k), new Int32Array(nTok * k)];
    const ws = [new Float32Array(nTok * k), new Float32Array(nTok * k)];
    dev.route(logits, nTok, nExperts, k, mode, renorm, ids[0], ws[0]);
    ref.route(logits, nTok, nExperts, k, mode, renorm, ids[1], ws[1]);
    expect(Array.from(ids[0])).toEqual(Array.from(ids[1]));
    expectClose(ws[0], ws[1], 1e-6, 1e-6, "route weights");
    // The chosen experts really are the top k.
    for (let t = 0; t < nTok; t++) {
      const row = Array.from(logits.subarray(t * nExperts, (t + 1) * nExperts));
      const kth = [...row].sort((a, b) => b - a)[k - 1];
      for (let j = 0; j < k; j++) expect(row[ids[0][t * k + j]]).toBeGreaterThanOrEqual(kth);
    }
  });
});

describe("CpuDevice thread pool", () => {
  it("gives identical results over many quick multi-threaded ops (no lost or doubled chunks)", () => {
    const r = rng(2024);
    const rows = 96;
    const cols = 512; // 96*512 = 49k MACs: just above the threading threshold, ~10 us per op
    const w = new CpuDevice({ threads: 1 }).upload(makeWeight(randn(rows * cols, r), rows, cols, "f32"));
    const x = randn(cols, r);
    const want = new Float32Array(rows);
    new CpuDevice({ threads: 1 }).matmul(want, x, 1, w);
    const dev = new CpuDevice({ threads: 2 });
    const got = new Float32Array(rows);
    for (let i = 0; i < 2000; i++) {
      got.fill(Number.NaN);
      dev.matmul(got, x, 1, w);
      if (got.some((v, j) => v !== want[j])) expect.fail(`iteration ${i}: results differ`);
    }
  });
});

describe("CpuDevice idle-time prefetch", () => {
  it("is a hint only: results stay identical while lists are replaced between and during ops", () => {
    const r = rng(77);
    const rows = 96;
    const cols = 512;
    const dev = new CpuDevice({ threads: 2 });
    const ws = Array.from({ length: 20 }, () =>
      dev.upload(makeWeight(randn(rows * cols, r), rows, cols, "q8")),
    );
    const x = randn(cols, r);
    const want = ws.map((w) => {
      const out = new Float32Array(rows);
      new CpuDevice({ threads: 1 }).matmul(out, x, 1, w);
      return out;
    });
    const got = new Float32Array(rows);
    for (let i = 0; i < 400; i++) {
      // 20 weights with their scales: 40 arrays, more than the 32 a list holds (the rest is left out).
      dev.prefetchWhenIdle(i % 3 ? ws.slice(i % 20) : ws);
      dev.matmul(got, x, 1, ws[i % 20]);
      if (got.some((v, j) => v !== want[i % 20][j])) expect.fail(`iteration ${i}: results differ`);
    }
    dev.prefetchWhenIdle([]);
  });

  it("takes Uint8Arrays only", () => {
    expect(() => native.prefetchWhenIdle([new Float32Array(4) as unknown as Uint8Array])).toThrow(
      /Uint8Array/,
    );
    expect(() => native.prefetchWhenIdle("x" as unknown as Uint8Array[])).toThrow(/Uint8Array/);
  });
});

describe("CpuDevice options", () => {
  it("takes its thread count from the option, else MOE_THREADS, else the hardware", () => {
    expect(new CpuDevice({ threads: 3 }).threads).toBe(3);
    const saved = process.env.MOE_THREADS;
    process.env.MOE_THREADS = "1";
    try {
      expect(new CpuDevice().threads).toBe(1);
    } finally {
      if (saved === undefined) delete process.env.MOE_THREADS;
      else process.env.MOE_THREADS = saved;
    }
    expect(new CpuDevice().threads).toBe(Number(process.env.MOE_THREADS ?? native.hardwareThreads));
    expect(new CpuDevice().name).toBe(`cpu-${native.bestIsa}`);
  });

  it.each(DTYPES)("single-threaded and multi-threaded %s matmuls agree exactly", (dtype) => {
    const r = rng(99);
    const rows = 259; // not a multiple of the 4-row tiles
    const cols = 1024;
    const w = makeWeight(randn(rows * cols, r), rows, cols, dtype);
    for (const n of [1, 3]) {
      const x = randn(n * cols, r);
      const a = new Float32Array(n * rows);
      const b = new Float32Array(n * rows);
      new CpuDevice({ threads: 1 }).matmul(a, x, n, w);
      new CpuDevice({ threads: 2 }).matmul(b, x, n, w);
      expect(Array.from(a)).toEqual(Array.from(b));
      const want = new Float32Array(n * rows);
      ref.matmul(want, x, n, w);
      // Loose: the best ISA may quantize activations (checked tightly per ISA above).
      expectClose(a, want, 0.01 * Math.sqrt(cols), 0, `${dtype} threads=1 vs reference`);
    }
  });
});

// q8 weights uploaded to (or adopted by) the avx512vnni device are packed 16 rows per vector.
// q8/q4 weights uploaded to (or adopted by) the avx512vnni device are packed 16 rows per vector.
describe.runIf(native.availableIsas.includes("avx512vnni"))("CpuDevice packed weights (avx512vnni)", () => {
  const dev = new CpuDevice({ isa: "avx512vnni", threads: 2 });
  const rows = 37; // two packed groups and 5 plain tail rows
  const cols = 96;
  const r = rng(21);
  const w = makeWeight(randn(rows * cols, r), rows, cols, "q8");

  it.each(["q8", "q4"] as const)(
    "%s: a token's row is the same bit for bit for every n, thread count and row position",
    (dtype) => {
      const src = makeWeight(randn(rows * cols, r), rows, cols, dtype);
      const packed = dev.upload(src);
      expect(packed.packed).toBe(true);
      const x = randn(16 * cols, r);
      const all = new Float32Array(16 * rows);
      dev.matmul(all, x, 16, packed);
      const one = new Float32Array(rows);
      const single = new CpuDevice({ isa: "avx512vnni", threads: 1 });
      for (const t of [0, 7, 15]) {
        single.matmul(one, x.subarray(t * cols, (t + 1) * cols), 1, packed);
        expect(one).toEqual(all.subarray(t * rows, (t + 1) * rows));
      }
      // Tail rows 32..36 (computed lane by lane) equal the same rows inside a full packed group.
      const rowBytes = dtype === "q8" ? cols : cols / 2;
      const moved = makeWeight(new Float32Array(16 * cols), 16, cols, dtype);
      moved.data.set(src.data.subarray(32 * rowBytes, rows * rowBytes));
      moved.scales!.set(src.scales!.subarray((32 * cols) / 16, (rows * cols) / 16));
      const out = new Float32Array(16 * 16);
      dev.matmul(out, x, 16, dev.upload(moved));
      for (let t = 0; t < 16; t++) {
        expect(out.subarray(t * 16, t * 16 + 5)).toEqual(all.subarray(t * rows + 32, t * rows + 37));
      }
    },
  );

  it.each([
    ["q8", 37, 96],
    ["q8", 64, 160],
    ["q8", 300, 512],
    ["q4", 37, 96],
    ["q4", 64, 160],
    ["q4", 300, 512],
    ["q4", 20, 224],
  ] as const)("plain %s [%i x %i] equals packed bit for bit at n = 1, 3, 5, 16", (dtype, rows, cols) => {
    const r2 = rng(rows + cols);
    const plain = makeWeight(randn(rows * cols, r2), rows, cols, dtype);
    const packed = dev.upload(plain);
    for (const n of [1, 3, 5, 16]) {
      const x = randn(n * cols, r2);
      const a = new Float32Array(n * rows);
      const b = new Float32Array(n * rows);
      dev.matmul(a, x, n, plain);
      dev.matmul(b, x, n, packed);
      expect(a).toEqual(b);
    }
  });

  it("adopt packs in place once; plain q8 gives the same numbers; other devices refuse a packed weight", () => {
    const own = { ...w, data: w.data.slice(), scales: w.scales!.slice() };
    const adopted = dev.adopt(own);
    expect(adopted.data).toBe(own.data); // same memory, rewritten
    expect(Buffer.from(own.data).equals(Buffer.from(w.data))).toBe(false);
    expect(dev.adopt(adopted)).toBe(adopted);
    const want = new Float32Array(rows);
    const got = new Float32Array(rows);
    const x = randn(cols, r);
    dev.matmul(got, x, 1, adopted);
    dev.matmul(want, x, 1, w); // plain q8 (row-major int8 kernel): bit-identical
    expect(got).toEqual(want);
    expect(() => ref.matmul(want, x, 1, adopted)).toThrow(/packed/);
    expect(() => new CpuDevice({ isa: "avx512", threads: 1 }).matmul(want, x, 1, adopted)).toThrow(
      /need the avx512vnni kernels/,
    );
    // Devices without a packed layout leave q8 as it is.
    expect(new CpuDevice({ isa: "avx512", threads: 1 }).upload(w).packed).toBeUndefined();
  });
});
