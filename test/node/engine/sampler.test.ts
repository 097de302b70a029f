import { describe, expect, it } from "vitest";
import { greedyParams } from "../../../gpu-backend/engine/greedy.js";
import { argmax, Rng, Sampler, topIndices } from "../../../gpu-backend/engine/sampler.js";
import type { SamplingParams } from "../../../gpu-backend/engine/types.js";

const base: SamplingParams = greedyParams(16, { ignoreEos: false });

function randomLogits(n: number, rng: Rng): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (rng.next() - 0.5) * 8;
  return x;
}

describe("sampler", () => {
  const rng = new Rng(7);
  const logits = randomLogits(301, rng);

  it("greedy picks the argmax", () => {
    expect(new Sampler(base).sample(logits).tokenId).toBe(argmax(logits));
  });

  it("the same seed gives the same tokens, another seed other tokens", () => {
    const p = { ...base, temperature: 1, seed: 42 };
    const run = (params: SamplingParams) => {
      const s = new Sampler(params);
      return Array.from({ length: 50 }, () => s.sample(logits).tokenId);
    };
    expect(run(p)).toEqual(run(p));
    expect(run({ ...p, seed: 43 })).not.toEqual(run(p));
  });

  it("top-k only ever returns one of the k best", () => {
    const allowed = new Set(topIndices(logits, 5));
    const s = new Sampler({ ...base, temperature: 2, topK: 5, seed: 1 });
    for (let i = 0; i < 200; i++) expect(allowed.has(s.sample(logits).tokenId)).toBe(true);
  });

  it("top-p keeps the smallest nucleus reaching p", () => {
    // Probabilities 0.5, 0.3, 0.2 at temperature 1: top_p 0.7 keeps the first two only.
    const x = new Float32Array([Math.log(0.2), Math.log(0.5), Math.log(0.3)]);
    const s = new Sampler({ ...base, temperature: 1, topP: 0.7, seed: 3 });
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) seen.add(s.sample(x).tokenId);
    expect([...seen].sort()).toEqual([1, 2]);
  });

  it("sampling frequencies follow the softmax", () => {
    const x = new Float32Array([0, Math.log(3)]); // p = 0.25, 0.75
    const s = new Sampler({ ...base, temperature: 1, seed: 9 });
    let ones = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) ones += s.sample(x).tokenId;
    expect(ones / n).toBeGreaterThan(0.73);
    expect(ones / n).toBeLessThan(0.77);
  });

  it("presence and frequency penalties push repeated tokens down", () => {
    const x = new Float32Array([1, 0.9, 0]);
    const s = new Sampler({ ...base, presencePenalty: 0.05, frequencyPenalty: 0.1 });
    expect(s.sample(x).tokenId).toBe(0);
    s.accept(0);
    expect(s.sample(x).tokenId).toBe(1); // 1 - 0.15 < 0.9
  });

  it("logit_bias shifts the sampled distribution (-100 bans, +100 forces), not the logprobs", () => {
    const best = argmax(logits);
    const banned = new Sampler({ ...base, logitBias: new Map([[best, -100]]) });
    const rest = Float32Array.from(logits, (v, i) => (i === best ? Number.NEGATIVE_INFINITY : v));
    expect(banned.sample(logits).tokenId).toBe(argmax(rest));
    const worst = argmax(logits.map((v) => -v));
    const forced = new Sampler({
      ...base,
      temperature: 1,
      seed: 3,
      logprobs: 1,
      logitBias: new Map([[worst, 100]]),
    });
    let z = 0;
    for (const v of logits) z += Math.exp(v);
    for (let i = 0; i < 20; i++) {
      const r = forced.sample(logits);
      expect(r.tokenId).toBe(worst);
      expect(r.logprob).toBeCloseTo(logits[worst] - Math.log(z), 5);
    }
    // A small bias only tips a near tie.
    const tie = new Float32Array([1, 0.99, 0]);
    expect(new Sampler({ ...base, logitBias: new Map([[1, 0.02]]) }).sample(tie).tokenId).toBe(1);
    expect(new Sampler({ ...base, logitBias: new Map([[2, 0.5]]) }).sample(tie).tokenId).toBe(0);
  });

  it("logprobs are log-softmax of the raw logits, top entries sorted", () => {
    const s = new Sampler({ ...base, logprobs: 3 });
    const r = s.sample(logits);
    let z = 0;
    for (const v of logits) z += Math.exp(v);
    expect(r.logprob).toBeCloseTo(logits[r.tokenId] - Math.log(z), 5);
    expect(r.top!.map((t) => t.tokenId)).toEqual(topIndices(logits, 3));
    expect(r.top![0].logprob).toBeGreaterThanOrEqual(r.top![1].logprob);
  });

  it("topIndices agrees with a full sort", () => {
    const x = randomLogits(1000, new Rng(11));
    const sorted = Array.from(x.keys()).sort((a, b) => x[b] - x[a] || a - b);
    for (const k of [1, 7, 100, 600]) expect(topIndices(x, k)).toEqual(sorted.slice(0, k));
  });
});
