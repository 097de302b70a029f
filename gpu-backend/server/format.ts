/** Engine events -> OpenAI response objects (chat and legacy completions). */

import type { LegacyLogprobs, LogprobContent, TopLogprob, Usage } from "../../src/openai/types.js";
import type { FinishReason, GenerationResult, TokenEvent, Tokenizer, TokenLogprob } from "../engine/types.js";
import { createStreamDecoder } from "../tokenizer/stream-decoder.js";
import { tokenBytes, tokenText } from "../tokenizer/token-text.js";

export function completionId(prefix: "chatcmpl" | "cmpl"): string {
  return `${prefix}-${crypto.randomUUID().replaceAll("-", "")}`;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * Usage of a request's choices: the prompt once (and its cached tokens as the first choice found
 * them), the completion tokens of all.
 */
export function usageOf(results: GenerationResult[]): Usage {
  const prompt = results[0].promptTokens;
  const completion = results.reduce((a, r) => a + r.completionTokens, 0);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: results[0].cachedTokens },
  };
}

function top(t: TokenLogprob): TopLogprob {
  return { token: t.token, logprob: t.logprob, bytes: Array.from(t.bytes) };
}

/** The chat `logprobs.content` entry of one token, or null when logprobs were not asked for. */
export function chatLogprob(ev: TokenEvent): LogprobContent | null {
  if (!ev.logprob) return null;
  return { ...top(ev.logprob), top_logprobs: (ev.topLogprobs ?? []).map(top) };
}

/**
 * The prompt's part of legacy logprobs (echo): every prompt token, the first without a logprob (as
 * OpenAI answers), offsets advancing by each token's text.
 */
export function promptLogprobs(
  tok: Tokenizer,
  ids: number[],
  scored: NonNullable<GenerationResult["promptLogprobs"]>,
): LegacyLogprobs {
  const decoder = createStreamDecoder(tok);
  const out: LegacyLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let offset = 0;
  ids.forEach((id, i) => {
    const s = i === 0 ? null : scored[i - 1];
    out.tokens.push(tokenText(tokenBytes(tok, id)));
    out.token_logprobs.push(s ? s.logprob.logprob : null);
    out.top_logprobs.push(s ? Object.fromEntries(s.top.map((t) => [t.token, t.logprob])) : null);
    out.text_offset.push(offset);
    offset += decoder.push(id).length;
  });
  return out;
}

/** The text of prompt token ids, as generated text would read (what echo returns for an id prompt). */
export function promptText(tok: Tokenizer, ids: number[]): string {
  const decoder = createStreamDecoder(tok);
  return ids.map((id) => decoder.push(id)).join("") + decoder.flush();
}

/**
 * Legacy completions logprobs for a run of tokens; offsets count from `startOffset` in the text and
 * advance by each token's text delta (the tokens of one multi-byte character share its offset).
 */
export function legacyLogprobs(events: TokenEvent[], startOffset = 0): LegacyLogprobs | null {
  const withLp = events.filter((e) => e.logprob);
  if (withLp.length === 0) return null;
  const out: LegacyLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let offset = startOffset;
  for (const e of withLp) {
    const lp = e.logprob!;
    out.tokens.push(lp.token);
    out.token_logprobs.push(lp.logprob);
    out.top_logprobs.push(Object.fromEntries((e.topLogprobs ?? []).map((t) => [t.token, t.logprob])));
    out.text_offset.push(offset);
    offset += e.text.length;
  }
  return out;
}

export type { FinishReason, LegacyLogprobs };
