import { createStreamDecoder } from "../tokenizer/stream-decoder.js";
import { KvCache } from "./kv-cache.js";
import type { MoeTransformer } from "./model.js";
import { Sampler } from "./sampler.js";
import { StepLock } from "./step-lock.js";
import { StopStringFilter } from "./stop-strings.js";
import type {
  Engine,
  GenerationResult,
  SamplingParams,
  TokenEvent,
  TokenLogprob,
  Tokenizer,
} from "./types.js";
import type { ExpertProvider } from "../experts/provider.js";

export class EngineError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
  }
}

/**
 * One model serving many requests: each request has its own KV cache and sampler; steps of
 * concurrent requests interleave through a FIFO lock.
 */
export class MoeEngine implements Engine {
  private readonly lock = new StepLock();

  constructor(
    readonly modelId: string,
    readonly model: MoeTransformer,
    readonly tokenizer: Tokenizer,
    readonly experts: ExpertProvider,
  ) {}

  get contextLength(): number {
    return this.model.config.maxPositions;
  }

  /** Reject work the model cannot do before any compute happens. */
  validate(promptIds: number[], params: SamplingParams): void {
    const vocab = this.model.config.vocabSize;
    if (promptIds.length === 0) throw new EngineError("the prompt is empty", 400, "empty_prompt");
    for (const id of promptIds) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw new EngineError(`token id ${id} is outside the vocabulary (0..${vocab - 1})`, 400, "invalid_token");
      }
    }
    if (!Number.isInteger(params.maxTokens) || params.maxTokens < 1) {
      throw new EngineError("max_tokens must be a positive integer", 400, "invalid_value");
    }
    const total = promptIds.length + params.maxTokens;
    if (total > this.contextLength) {
      throw new EngineError(
        `this model's context is ${this.contextLength} tokens; the prompt (${promptIds.length}) plus max_tokens (${params.maxTokens}) is ${total}`,
        400,
        "context_length_exceeded",
      );
    }
  }

  async *generate(
    promptIds: number[],
    params: SamplingParams,
    signal?: AbortSignal,
  ): AsyncGenerator<TokenEvent, GenerationResult> {
    this.validate(promptIds, params);
    const cache = new KvCache(this.model.config, promptIds.length + params.maxTokens);
    const sampler = new Sampler(params);
    const decoder = createStreamDecoder(this.tokenizer);
    const stops = new StopStringFilter(params.stop);
    const eos = new Set(params.ignoreEos ? [] : this.tokenizer.eosTokenIds);
    const before = this.experts.stats();
    let completion = 0;
    let finishReason: GenerationResult["finishReason"] = "length";
    let logits = await this.lock.run(() => this.model.forward(promptIds, cache));
    while (!signal?.aborted) {
      const s = sampler.sample(logits);
      sampler.accept(s.tokenId);
      completion++;
      const last = completion >= params.maxTokens;
      let text: string;
      if (eos.has(s.tokenId)) {
        finishReason = "stop";
        text = stops.flush();
      } else {
        text = stops.push(decoder.push(s.tokenId));
        if (stops.stopped) finishReason = "stop";
        else if (last) text += stops.push(decoder.flush()) + stops.flush();
      }
      const event: TokenEvent = { tokenId: s.tokenId, text };
      if (s.logprob !== undefined) {
        event.logprob = this.logprobEntry(s.tokenId, s.logprob);
        event.topLogprobs = s.top!.map((t) => this.logprobEntry(t.tokenId, t.logprob));
      }
      yield event;
      if (finishReason === "stop" || last) break;
      logits = await this.lock.run(() => this.model.forward([s.tokenId], cache));
    }
    return {
      finishReason,
      promptTokens: promptIds.length,
      completionTokens: completion,
      cachedTokens: 0,
      paging: diffStats(before, this.experts.stats()),
    };
  }

  private logprobEntry(tokenId: number, logprob: number): TokenLogprob {
    return { tokenId, token: this.tokenizer.decode([tokenId]), logprob };
  }

  close(): void {
    this.experts.close();
  }
}

function diffStats(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(b)) out[k] = b[k] - (a[k] ?? 0);
  return out;
}
