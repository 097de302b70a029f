/**
 * The TypeScript half of the CUDA device, run against the emulated addon (fake-addon.ts): every op
 * gives the reference device's answer through the mirrors, KV caches move only new rows, the
 * expert cache keeps its byte budget (LRU, same-size slot reuse), and a whole tiny model decodes
 * the same greedy tokens as the CPU device, eager and through the lazy expert store.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CpuDevice } from "../../../gpu-backend/device/cpu/cpu-device.js";
import { CudaDevice } from "../../../gpu-backend/device/cuda/cuda-device.js";
import type { WeightDType } from "../../../gpu-backend/device/device.js";
import { makeWeight } from "../../../gpu-backend/device/f16.js";
import { ReferenceDevice } from "../../../gpu-backend/device/reference/reference-device.js";
import type { Family } from "../../../gpu-backend/model/types.js";
import { makeModel } from "../../../gpu-backend/tools/make-model.js";
import { BF16_LOGIT_TOLERANCE, compareRuns, greedy } from "../../../scripts/gpu/parity-lib.js";
import { expectClose, randn, rng } from "../device/helpers.js";
import { FakeCudaAddon } from "./fake-addon.js";

function device(expertCacheBytes?: number): { dev: CudaDevice; fake: FakeCudaAddon } {
  const fake = new FakeCudaAddon();
  return { dev: new CudaDevice(fake, fake.probe(), { expertCacheBytes }), fake };
}

const ref = new ReferenceDevice();

describe("CudaDevice ops through the emulated addon", () => {
  it("matmul matches the reference for every dtype, matvec and prefill sizes", () => {
    const { dev } = device();
    const r = rng(1);
    for (const dtype of ["f32", "f16", "bf16", "q8", "q4"] as WeightDType[]) {
      const w = makeWeight(randn(48 * 64, r, 0.5), 48, 64, dtype);
      const up = dev.upload(w);
      for (const n of [1, 20]) {
        const x = randn(n * 64, r);
        const a = new Float32Array(n * 48);
        const b = new Float32Array(n * 48);
        dev.matmul(a, x, n, up);
        ref.matmul(b, x, n, w);
        expectClose(a, b, 1e-5, 1e-5, `${dtype} n=${n}`);
      }
    }
  });

  it("rmsnorm, rope (both styles), swiglu, addScaled, route match the reference", () => {
    const { dev } = device();
    const r = rng(2);
    const x = randn(3 * 32, r);
    const w = randn(32, r);
    const [a, b] = [new Float32Array(96), new Float32Array(96)];
    dev.rmsnorm(a, x, w, 3, 32, 1e-5);
    ref.rmsnorm(b, x, w, 3, 32, 1e-5);
    expectClose(a, b, 1e-6, 1e-6, "rmsnorm");
    dev.rmsnorm(a, x, null, 3, 32, 1e-5);
    ref.rmsnorm(b, x, null, 3, 32, 1e-5);
    expectClose(a, b, 1e-6, 1e-6, "rmsnorm null");
    const pos = Int32Array.from([0, 5, 9]);
    const freq = Float32Array.from({ length: 4 }, (_, i) => 10000 ** (-i / 4));
    for (const style of ["interleaved", "neox"] as const) {
      const p = randn(3 * 2 * 16, r);
      const q = p.slice();
      dev.rope(p, 3, 2, 16, pos, freq, style);
      ref.rope(q, 3, 2, 16, pos, freq, style);
      expectClose(p, q, 1e-6, 1e-6, style);
    }
    const g = randn(50, r);
    const u = randn(50, r);
    const [s1, s2] = [new Float32Array(50), new Float32Array(50)];
    dev.swiglu(s1, g, u, 50);
    ref.swiglu(s2, g, u, 50);
    expectClose(s1, s2, 1e-6, 1e-6, "swiglu");
    const o1 = randn(50, r);
    const o2 = o1.slice();
    dev.addScaled(o1, g, 50, 0.5);
    ref.addScaled(o2, g, 50, 0.5);
    expectClose(o1, o2, 1e-6, 1e-6, "addScaled");
    const logits = randn(4 * 8, r);
    for (const mode of ["softmax", "sigmoid"] as const) {
      const [i1, i2] = [new Int32Array(8), new Int32Array(8)];
      const [w1, w2] = [new Float32Array(8), new Float32Array(8)];
      dev.route(logits, 4, 8, 2, mode, mode === "softmax", i1, w1);
      ref.route(logits, 4, 8, 2, mode, mode === "softmax", i2, w2);
      expect(Array.from(i1)).toEqual(Array.from(i2));
      expectClose(w1, w2, 1e-6, 1e-6, `route ${mode}`);
    }
  });

  it("attention uploads only the new KV rows of a growing cache and matches the reference", () => {
    const { dev } = device();
    const r = rng(3);
    const [nHeads, nKv, hd, cap] = [4, 2, 8, 32];
    const row = nKv * hd;
    const k = new Float32Array(cap * row);
    const v = new Float32Array(cap * row);
    let pos = 0;
    let expectedKvBytes = 0;
    for (const nTok of [5, 1, 1, 3]) {
      k.set(randn(nTok * row, r), pos * row);
      v.set(randn(nTok * row, r), pos * row);
      const q = randn(nTok * nHeads * hd, r);
      const [a, b] = [new Float32Array(q.length), new Float32Array(q.length)];
      const args = {
        q,
        kCache: k,
        vCache: v,
        nTok,
        nHeads,
        nKvHeads: nKv,
        headDim: hd,
        pos0: pos,
        scale: 0.35,
        chunkSize: 4,
        window: 0,
      };
      dev.attention({ ...args, out: a });
      ref.attention({ ...args, out: b });
      expectClose(a, b, 1e-5, 1e-5, `attention pos0=${pos}`);
      expectedKvBytes += 2 * nTok * row * 4;
      pos += nTok;
    }
    expect(dev.counters.kvBytes).toBe(expectedKvBytes);
  });

  it("the expert cache keeps its byte budget: LRU eviction, same-size slot reuse, exact counters", () => {
    const r = rng(4);
    const ws = [0, 1, 2].map(() => makeWeight(randn(32 * 64, r, 0.5), 32, 64, "q8"));
    const slot = 32 * 64 + (32 * 64) / 16; // data (256-aligned here) + f16 scales
    const { dev, fake } = device(2 * slot);
    const x = randn(64, r);
    const out = new Float32Array(32);
    const want = new Float32Array(32);
    const order = [0, 1, 0, 2, 1, 0];
    for (const i of order) {
      dev.matmul(out, x, 1, ws[i]);
      ref.matmul(want, x, 1, ws[i]);
      expectClose(out, want, 1e-5, 1e-5, `expert ${i}`);
    }
    // 0 miss, 1 miss, 0 hit, 2 miss (evicts 1), 1 miss (evicts 0), 0 miss (evicts 2)
    expect(dev.counters.expertHits).toBe(1);
    expect(dev.counters.expertMisses).toBe(5);
    expect(dev.counters.expertBytes).toBe(5 * slot);
    // Only two expert slots were ever allocated: evictions reuse them.
    const expertBuffers = [...fake.buffers.values()].filter((b) => b.byteLength === slot).length;
    expect(expertBuffers).toBe(2);
  });
});

describe("CudaDevice (emulated addon) runs whole models like the CPU device", () => {
  const dirs: Partial<Record<Family, string>> = {};
  let root = "";
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "moe-cuda-parity-"));
    for (const family of ["llama4", "qwen3moe"] as Family[]) {
      dirs[family] = join(root, family);
      makeModel({ family, preset: "tiny", out: dirs[family]!, seed: 11 });
    }
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const prompt = [1, 17, 42, 99, 7, 250, 3, 64, 18, 21, 5, 301, 77, 12, 9, 40, 8, 2];
  for (const family of ["llama4", "qwen3moe"] as Family[]) {
    it(`${family}: greedy tokens identical, logits within bf16 tolerance (eager and lazy store)`, async () => {
      const cpu = await greedy(dirs[family]!, new CpuDevice({ threads: 1 }), prompt, 6);
      const eager = await greedy(dirs[family]!, device().dev, prompt, 6);
      const c1 = compareRuns(eager, cpu);
      expect(c1.tokensEqual).toBe(true);
      expect(c1.maxRelErr).toBeLessThan(BF16_LOGIT_TOLERANCE);
      // The lazy store hands the device new views for every load: they page through the expert cache.
      const { dev } = device(64 * 1024);
      const lazy = await greedy(dirs[family]!, dev, prompt, 6, { expertBudget: "50%" });
      const c2 = compareRuns(lazy, cpu);
      expect(c2.tokensEqual).toBe(true);
      expect(c2.maxRelErr).toBeLessThan(BF16_LOGIT_TOLERANCE);
      expect(dev.counters.expertMisses).toBeGreaterThan(0);
      // f16 KV on the host (the engine's default): the device mirror holds its rows widened to f32.
      const cpu16 = await greedy(dirs[family]!, new CpuDevice({ threads: 1 }), prompt, 6, { kvDtype: "f16" });
      const cuda16 = await greedy(dirs[family]!, device().dev, prompt, 6, { kvDtype: "f16" });
      const c3 = compareRuns(cuda16, cpu16);
      expect(c3.tokensEqual).toBe(true);
      expect(c3.maxRelErr).toBeLessThan(BF16_LOGIT_TOLERANCE);
    });
  }
});
