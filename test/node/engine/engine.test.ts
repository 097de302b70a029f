import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CpuDevice } from "../../../gpu-backend/device/cpu/cpu-device.js";
import { ReferenceDevice } from "../../../gpu-backend/device/reference/reference-device.js";
import { MoeEngine } from "../../../gpu-backend/engine/engine.js";
import { greedyParams } from "../../../gpu-backend/engine/greedy.js";
import { KvCache } from "../../../gpu-backend/engine/kv-cache.js";
import { loadEngine } from "../../../gpu-backend/engine/load-engine.js";
import { MoeTransformer } from "../../../gpu-backend/engine/model.js";
import { argmax } from "../../../gpu-backend/engine/sampler.js";
import { EagerExpertProvider } from "../../../gpu-backend/experts/eager-provider.js";
import { openCheckpoint } from "../../../gpu-backend/model/checkpoint.js";
import type { Family } from "../../../gpu-backend/model/types.js";
import type { LoadedTokenizer } from "../../../gpu-backend/tokenizer/load.js";
import { tokenText } from "../../../gpu-backend/tokenizer/token-text.js";
import { collect, greedy, makeTinyModels } from "./fixtures.js";

const families: Family[] = ["llama4", "mixtral", "qwen3moe"];
let models: ReturnType<typeof makeTinyModels>;
const engines: Record<string, MoeEngine> = {};

beforeAll(async () => {
  models = makeTinyModels(families);
  for (const f of families) engines[f] = await loadEngine(models.dirs[f], { threads: 1 });
});
afterAll(() => {
  for (const e of Object.values(engines)) e.close();
  models.cleanup();
});

const prompts = [
  [5, 17, 200, 33, 9, 41],
  [300, 2, 2, 2, 150, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93],
  [1, 400],
];

describe.each(families)("%s engine", (family) => {
  it("prefill as one batch gives the same logits as feeding tokens one by one", async () => {
    const m = engines[family].model;
    const p = prompts[1];
    const batched = (await m.forward(p, new KvCache(m.config, 64))).slice();
    const cache = new KvCache(m.config, 64);
    let stepped = new Float32Array();
    for (const t of p) stepped = (await m.forward([t], cache)).slice();
    let maxDiff = 0;
    for (let i = 0; i < batched.length; i++) maxDiff = Math.max(maxDiff, Math.abs(batched[i] - stepped[i]));
    expect(maxDiff).toBeLessThan(1e-4);
    expect(argmax(batched)).toBe(argmax(stepped));
  });

  it("logprobs carry each token's raw bytes, which concatenate to the generated text", async () => {
    const e = engines[family];
    const tok = e.tokenizer as LoadedTokenizer;
    const gen = e.generate(prompts[1], { ...greedyParams(24), logprobs: 5 });
    const chosen: number[] = [];
    let text = "";
    let entries = 0;
    let r = await gen.next();
    while (!r.done) {
      const ev = r.value;
      text += ev.text;
      for (const lp of [ev.logprob!, ...(ev.topLogprobs ?? [])]) {
        entries++;
        expect(Array.from(lp.bytes)).toEqual(Array.from(tok.tokenBytes!(lp.tokenId)));
        expect(lp.token).toBe(tokenText(lp.bytes));
      }
      if (!tok.specialTokenIds.has(ev.tokenId)) chosen.push(...ev.logprob!.bytes);
      r = await gen.next();
    }
    expect(entries).toBe(24 * 6);
    expect(new TextDecoder().decode(Uint8Array.from(chosen))).toBe(text);
  });

  it("logit_bias steers generation: +100 forces a token, -100 keeps the greedy choice out", async () => {
    const e = engines[family];
    const plain = await collect(e.generate(prompts[0], greedy));
    const forced = await collect(e.generate(prompts[0], { ...greedy, logitBias: new Map([[123, 100]]) }));
    expect(forced.ids).toEqual(Array(greedy.maxTokens).fill(123));
    const banned = await collect(
      e.generate(prompts[0], { ...greedy, logitBias: new Map([[plain.ids[0], -100]]) }),
    );
    expect(banned.ids[0]).not.toBe(plain.ids[0]);
    expect(banned.ids).not.toContain(plain.ids[0]);
  });

  it("outputs depend on the prompt (the generated model is not degenerate)", async () => {
    const outs = await Promise.all(prompts.map((p) => collect(engines[family].generate(p, greedy))));
    const distinct = new Set(outs.map((o) => o.ids.join(",")));
    expect(distinct.size).toBe(prompts.length);
    // Not one token repeated forever either.
    for (const o of outs) expect(new Set(o.ids).size).toBeGreaterThan(1);
  });

  it("matches the float64 reference device on greedy tokens", async () => {
    const ckpt = openCheckpoint(models.dirs[family]);
    const ref = new ReferenceDevice();
    const refModel = new MoeTransformer(ckpt, ref, new EagerExpertProvider(ckpt, ref));
    ckpt.close();
    const m = engines[family].model;
    for (const p of prompts) {
      const a = new KvCache(m.config, 64);
      const b = new KvCache(m.config, 64);
      let la = await m.forward(p, a);
      let lb = await refModel.forward(p, b);
      for (let step = 0; step < 8; step++) {
        const ta = argmax(la);
        expect(ta).toBe(argmax(lb));
        la = await m.forward([ta], a);
        lb = await refModel.forward([ta], b);
      }
    }
  });
});

describe("scheduler", () => {
  it("concurrent requests (continuous batching) produce exactly the sequential outputs", async () => {
    const e = engines.llama4;
    const sequential = [];
    for (const p of prompts) sequential.push((await collect(e.generate(p, greedy))).ids);
    const together = await Promise.all(prompts.map((p) => collect(e.generate(p, greedy))));
    expect(together.map((o) => o.ids)).toEqual(sequential);
    expect(e.scheduler.stats().running).toBe(0);
  });

  it("reuses a shared prefix from the prefix cache with identical output and exact cached_tokens", async () => {
    const e = engines.qwen3moe;
    const system = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % 450);
    const a = [...system, 7, 8, 9];
    const b = [...system, 100, 101];
    const noCache = new MoeEngine("x", e.model, e.tokenizer, e.experts, { prefixCacheBytes: 0 });
    const expectA = await collect(noCache.generate(a, greedy));
    const expectB = await collect(noCache.generate(b, greedy));
    const cached = new MoeEngine("y", e.model, e.tokenizer, e.experts, { prefixBlockTokens: 16 });
    const gotA = await collect(cached.generate(a, greedy));
    const gotB = await collect(cached.generate(b, greedy));
    expect(gotA.cachedTokens).toBe(0);
    expect(gotB.cachedTokens).toBe(32); // two full 16-token blocks of the 40 shared tokens
    expect(gotA.ids).toEqual(expectA.ids);
    expect(gotB.ids).toEqual(expectB.ids);
    // The same prompt again: every full block but the one holding the last token is reused.
    const again = await collect(cached.generate(a, greedy));
    expect(again.cachedTokens).toBe(32);
    expect(again.ids).toEqual(expectA.ids);
  });

  it("prompts started together behind the same first block share it: the later ones wait for its prefill", async () => {
    const e = engines.qwen3moe;
    const system = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % 450);
    const prompts3 = [
      [...system, 7, 8, 9],
      [...system, 7, 8, 9],
      [...system, 100, 101],
    ];
    const noCache = new MoeEngine("x", e.model, e.tokenizer, e.experts, { prefixCacheBytes: 0 });
    const expected = await Promise.all(prompts3.map((p) => collect(noCache.generate(p, greedy))));
    const cached = new MoeEngine("y", e.model, e.tokenizer, e.experts, { prefixBlockTokens: 16 });
    const got = await Promise.all(prompts3.map((p) => collect(cached.generate(p, greedy))));
    expect(got.map((g) => g.cachedTokens)).toEqual([0, 32, 32]);
    expect(got.map((g) => g.ids)).toEqual(expected.map((x) => x.ids));
    // Without the prefix cache there is nothing to wait for: all three prefill at once.
    expect(expected.map((x) => x.cachedTokens)).toEqual([0, 0, 0]);
  });

  it("keeps KV in f16 by default: half the bytes, logits within f16 rounding of an f32 cache", async () => {
    const e = engines.llama4;
    const m = e.model;
    const f16 = new KvCache(m.config, 64, "f16");
    const f32 = new KvCache(m.config, 64);
    expect(f16.bytes() * 2).toBe(f32.bytes());
    expect(f16.k[0]).toBeInstanceOf(Uint16Array);
    let a = await m.forward(prompts[1], f16);
    let b = await m.forward(prompts[1], f32);
    for (let step = 0; step < 6; step++) {
      let maxDiff = 0;
      let scale = 0;
      for (let i = 0; i < a.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
        scale = Math.max(scale, Math.abs(b[i]));
      }
      expect(maxDiff / scale).toBeLessThan(1e-2);
      const next = argmax(b);
      a = await m.forward([next], f16);
      b = await m.forward([next], f32);
    }
    // The scheduler's caches are the engine's type; the prefix cache refuses any other.
    expect(e.prefixCache!.kvDtype).toBe("f16");
    expect(() => e.prefixCache!.store(prompts[1], f32)).toThrow(/f16 KV/);
  });

  it("sizes a sequence's KV cache for its whole prompt once, not at every prefill chunk", async () => {
    const e = engines.llama4;
    const prompt = Array.from({ length: 300 }, (_, i) => (i * 13 + 5) % 450);
    const growths: number[] = [];
    const reserve = KvCache.prototype.reserve;
    KvCache.prototype.reserve = function (this: KvCache, tokens: number) {
      const before = this.capacity;
      reserve.call(this, tokens);
      if (this.capacity !== before) growths.push(this.capacity);
    };
    try {
      const one = await collect(e.generate(prompt, { ...greedy, maxTokens: 1 }));
      expect(one.ids).toHaveLength(1);
    } finally {
      KvCache.prototype.reserve = reserve;
    }
    // Two prefill chunks (256 + 44 tokens), one allocation: every layer's K/V copied never.
    expect(growths).toEqual([300]);
  });

  it("an aborted request stops within a step and frees its slot", async () => {
    const e = engines.mixtral;
    const ctrl = new AbortController();
    const gen = e.generate(prompts[0], { ...greedy, maxTokens: 200 }, ctrl.signal);
    let n = 0;
    for await (const _ of gen) {
      if (++n === 3) ctrl.abort();
    }
    expect(n).toBeLessThanOrEqual(4);
    expect(e.scheduler.stats().running).toBe(0);
    // The engine keeps serving.
    expect((await collect(e.generate(prompts[2], greedy))).ids).toHaveLength(greedy.maxTokens);
  });

  it("refuses work beyond the queue with a 503 and a retry hint, and invalid prompts with a 400", async () => {
    const e = engines.llama4;
    const small = new MoeEngine("z", e.model, e.tokenizer, e.experts, {
      scheduler: { maxRunning: 1, maxQueued: 1 },
    });
    const first = collect(small.generate(prompts[0], greedy));
    const second = collect(small.generate(prompts[1], greedy));
    expect(() => small.generate(prompts[2], greedy)).toThrow(expect.objectContaining({ status: 503 }));
    await Promise.all([first, second]);
    expect(() => small.generate([99999], greedy)).toThrow(expect.objectContaining({ status: 400 }));
    expect(() => small.generate([1], { ...greedy, maxTokens: 10 ** 7 })).toThrow(
      expect.objectContaining({ status: 400, code: "context_length_exceeded" }),
    );
  });

  it("uses the CPU device by default", () => {
    expect(new CpuDevice({ threads: 1 }).name).toMatch(/cpu/);
  });
});

describe("fairness", () => {
  it("admits a waiting tenant with nothing running before a busy tenant's backlog", async () => {
    const e = engines.llama4;
    const one = new MoeEngine("f", e.model, e.tokenizer, e.experts, {
      scheduler: { maxRunning: 1, maxQueued: 8 },
    });
    const order: string[] = [];
    const run = (tenant: string, p: number[]) =>
      collect(one.generate(p, { ...greedy, maxTokens: 3 }, undefined, { tenant })).then(() =>
        order.push(tenant),
      );
    // Tenant a floods the queue first; b arrives last but must not wait behind all of a's requests.
    const all = [run("a", prompts[0]), run("a", prompts[1]), run("a", prompts[2]), run("a", prompts[0])];
    all.push(run("b", prompts[1]));
    await Promise.all(all);
    expect(order.indexOf("b")).toBeLessThan(3);
  });
});

describe("backpressure", () => {
  it("pauses a sequence whose reader stops, and resumes it when reading resumes", async () => {
    const e = engines.llama4;
    const gen = e.generate(prompts[0], { ...greedy, maxTokens: 120 });
    await gen.next();
    const steps = () => e.scheduler.stats().steps;
    // Not reading: the scheduler must stop stepping this sequence once 32 events wait unread.
    await new Promise((r) => setTimeout(r, 300));
    const paused = steps();
    await new Promise((r) => setTimeout(r, 200));
    expect(steps()).toBe(paused);
    expect(e.scheduler.stats().running).toBe(1);
    let n = 1;
    for await (const _ of gen) n++;
    expect(n).toBe(120);
    expect(e.scheduler.stats().running).toBe(0);
  });
});
