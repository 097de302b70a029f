/** Legacy completions logprobs of the prompt (echo) and of the completion, as one answer. */
import type { LegacyLogprobs } from "./types.js";

/** Two runs of legacy logprobs one after the other (the prompt's, then the completion's). */
export function joinLegacyLogprobs(
  a: LegacyLogprobs | null,
  b: LegacyLogprobs | null,
): LegacyLogprobs | null {
  if (!a || !b) return a ?? b;
  return {
    tokens: [...a.tokens, ...b.tokens],
    token_logprobs: [...a.token_logprobs, ...b.token_logprobs],
    top_logprobs: [...a.top_logprobs, ...b.top_logprobs],
    text_offset: [...a.text_offset, ...b.text_offset],
  };
}
