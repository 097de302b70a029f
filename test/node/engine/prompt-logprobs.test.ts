/**
 * Prompt logprobs (legacy completions with echo + logprobs, how lm-eval scores loglikelihoods):
 * each prompt token's logprob is exactly the one decoding would report for it after the tokens
 * before it; max_tokens 0 generates nothing; such prompts are computed whole (no prefix cache).
 */
import { describe, expect, it } from "vitest";
import { greedyParams } from "../../../gpu-backend/engine/greedy.js";
import { PREFILL_CHUNK } from "../../../gpu-backend/engine/model.js";
import type { GenerationResult, SamplingParams } from "../../../gpu-backend/engine/types.js";
import { tinyEngine } from "./fixtures.js";

describe("prompt logprobs on the tiny model", () => {
  const engineOf = tinyEngine("qwen3moe", { engine: { prefixBlockTokens: 16 } });

  async function run(
    ids: number[],
    params: SamplingParams,
  ): Promise<{ events: number; result: GenerationResult }> {
    const gen = engineOf().generate(ids, params);
    let events = 0;
    let r = await gen.next();
    while (!r.done) {
      events++;
      r = await gen.next();
    }
    return { events, result: r.value };
  }

  it("equal, bit for bit, what decoding reports for each token; across prefill chunks; top sorted", async () => {
    const text = "The quick brown fox jumps over the lazy dog, again and again. ";
    let ids: number[] = [];
    while (ids.length <= PREFILL_CHUNK + 20)
      ids = engineOf().tokenizer.encode(text.repeat(ids.length / 8 + 2), false);
    ids = ids.slice(0, PREFILL_CHUNK + 20);
    const scored = await run(ids, { ...greedyParams(0), logprobs: 3, promptLogprobs: 3 });
    expect(scored.events).toBe(0); // max_tokens 0: the prompt scored, nothing generated
    expect(scored.result).toMatchObject({
      finishReason: "length",
      completionTokens: 0,
      promptTokens: ids.length,
    });
    const lps = scored.result.promptLogprobs!;
    expect(lps).toHaveLength(ids.length - 1);
    for (const k of [1, 7, PREFILL_CHUNK - 1, PREFILL_CHUNK, PREFILL_CHUNK + 1, ids.length - 1]) {
      // Decoding after ids[0..k) with ids[k] forced (logprobs stay the model's, bias or not).
      const gen = engineOf().generate(ids.slice(0, k), {
        ...greedyParams(1),
        logprobs: 3,
        logitBias: new Map([[ids[k], 100]]),
      });
      const first = await gen.next();
      await gen.return(undefined as never);
      const decoded = first.value as {
        tokenId: number;
        logprob: { logprob: number };
        topLogprobs: unknown[];
      };
      expect(decoded.tokenId).toBe(ids[k]);
      expect(lps[k - 1].logprob.tokenId).toBe(ids[k]);
      expect(lps[k - 1].logprob.logprob, `position ${k}`).toBe(decoded.logprob.logprob);
      expect(lps[k - 1].top).toEqual(decoded.topLogprobs);
    }
    for (const { logprob, top } of lps) {
      expect(top).toHaveLength(3);
      expect(top[0].logprob).toBeGreaterThanOrEqual(top[1].logprob);
      expect(top[0].logprob).toBeGreaterThanOrEqual(logprob.logprob);
      expect(logprob.logprob).toBeLessThanOrEqual(0);
    }
  });

  it("are computed whole even when the prefix cache holds the prompt; max_tokens 0 needs them", async () => {
    const ids = engineOf().tokenizer.encode(
      "a shared prompt that the prefix cache will hold. ".repeat(4),
      false,
    );
    const warm = await run(ids, greedyParams(2));
    const again = await run(ids, greedyParams(2));
    expect(again.result.cachedTokens).toBeGreaterThan(0);
    const scored = await run(ids, { ...greedyParams(2), logprobs: 0, promptLogprobs: 0 });
    expect(scored.result.cachedTokens).toBe(0);
    expect(scored.result.promptLogprobs).toHaveLength(ids.length - 1);
    expect(scored.events).toBe(warm.events);
    expect(() => engineOf().generate(ids, { ...greedyParams(0), logprobs: null })).toThrow(/at least 1/);
  });
});
