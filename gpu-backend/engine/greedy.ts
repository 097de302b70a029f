import type { SamplingParams } from "./types.js";

/** Greedy decoding of exactly `maxTokens` tokens (EOS ignored): benchmarks, parity runs, tests. */
export function greedyParams(maxTokens: number, extra: Partial<SamplingParams> = {}): SamplingParams {
  return {
    maxTokens,
    temperature: 0,
    topP: 1,
    topK: 0,
    presencePenalty: 0,
    frequencyPenalty: 0,
    stop: [],
    logprobs: null,
    ignoreEos: true,
    ...extra,
  };
}
