import type { ExpertProvider } from "../experts/provider.js";
import { createStreamDecoder } from "../tokenizer/stream-decoder.js";
import { tokenBytes, tokenText } from "../tokenizer/token-text.js";
import { JsonConstraint } from "./json-constraint.js";
import { SchemaState } from "./json-schema-grammar.js";
import type { KvDtype } from "./kv-cache.js";
import { type MoeTransformer, PREFILL_CHUNK } from "./model.js";
import { PrefixCache } from "./prefix-cache.js";
import { ReasoningSplitter } from "./reasoning.js";
import { logSumExp, Sampler, topIndices } from "./sampler.js";
import { AdmissionError, type ScheduledSequence, Scheduler, type SchedulerLimits } from "./scheduler.js";
import { StopStringFilter } from "./stop-strings.js";
import { forcedCallGrammar } from "./tool-call-grammar.js";
import { ToolCallParser } from "./tool-calls.js";
import type {
  Engine,
  GenerationResult,
  RequestMeta,
  SamplingParams,
  TokenEvent,
  Tokenizer,
  TokenLogprob,
  ToolCall,
} from "./types.js";

export class EngineError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export interface EngineOptions {
  scheduler?: Partial<SchedulerLimits>;
  /** Prefix (prompt) KV cache size in bytes; 0 disables it. */
  prefixCacheBytes?: number;
  /** Tokens per prefix-cache block. */
  prefixBlockTokens?: number;
  /** KV cache element type of every sequence and of the prefix cache (default f16). */
  kvDtype?: KvDtype;
}

/** A reader this far behind pauses its sequence (backpressure instead of unbounded buffering). */
const MAX_UNREAD_EVENTS = 32;

/** Events of one sequence, handed from the scheduler loop to the request's async generator. */
class Channel<T> {
  private items: T[] = [];
  /** Called after the reader takes an item (the scheduler resumes a paused sequence). */
  onTake: (() => void) | null = null;

  get backlog(): number {
    return this.items.length;
  }

  private wake: (() => void) | null = null;
  private ended = false;
  private error: Error | undefined;

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  end(error?: Error): void {
    this.ended = true;
    this.error = error;
    this.wake?.();
  }

  async *drain(): AsyncGenerator<T> {
    for (;;) {
      while (this.items.length > 0) {
        yield this.items.shift()!;
        this.onTake?.();
      }
      if (this.ended) {
        if (this.error) throw this.error;
        return;
      }
      await new Promise<void>((r) => {
        this.wake = r;
      });
      this.wake = null;
    }
  }
}

/**
 * One model serving many requests: a continuous-batching scheduler runs all live sequences
 * together, each with its own KV cache, sampler and stop handling.
 */
export class MoeEngine implements Engine {
  readonly scheduler: Scheduler;
  readonly prefixCache: PrefixCache | null;

  constructor(
    readonly modelId: string,
    readonly model: MoeTransformer,
    readonly tokenizer: Tokenizer,
    readonly experts: ExpertProvider,
    opts: EngineOptions = {},
  ) {
    const bytes = opts.prefixCacheBytes ?? 256 * 1024 * 1024;
    const kvDtype = opts.kvDtype ?? "f16";
    this.prefixCache =
      bytes > 0 ? new PrefixCache(model.config, opts.prefixBlockTokens ?? 16, bytes, kvDtype) : null;
    this.scheduler = new Scheduler(
      model,
      { maxRunning: 16, maxQueued: 64, stepTokens: PREFILL_CHUNK, ...opts.scheduler },
      this.prefixCache,
      kvDtype,
    );
  }

  get contextLength(): number {
    return this.model.config.maxPositions;
  }

  get vocabSize(): number {
    return this.model.config.vocabSize;
  }

  /** Reject work the model cannot do before any compute happens. */
  validate(promptIds: number[], params: SamplingParams): void {
    const vocab = this.model.config.vocabSize;
    if (promptIds.length === 0) throw new EngineError("the prompt is empty", 400, "empty_prompt");
    for (const id of promptIds) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw new EngineError(
          `token id ${id} is outside the vocabulary (0..${vocab - 1})`,
          400,
          "invalid_token",
        );
      }
    }
    // 0 only to score the prompt (prompt logprobs), as OpenAI allows with echo.
    const least = params.promptLogprobs !== undefined ? 0 : 1;
    if (!Number.isInteger(params.maxTokens) || params.maxTokens < least) {
      throw new EngineError(`max_tokens must be an integer of at least ${least}`, 400, "invalid_value");
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

  /**
   * Validates and enqueues synchronously (so a caller can answer 4xx / 503 before it starts a
   * stream), then returns the token stream.
   */
  generate(
    promptIds: number[],
    params: SamplingParams,
    signal?: AbortSignal,
    meta: RequestMeta = {},
  ): AsyncGenerator<TokenEvent, GenerationResult> {
    this.validate(promptIds, params);
    const sampler = new Sampler(params, undefined, this.constraintFor(params));
    const decoder = createStreamDecoder(this.tokenizer);
    const stops = new StopStringFilter(params.stop);
    // A forced call is parsed as a reply made of one JSON call object, whatever the template's format.
    const tools = params.forcedCall
      ? new ToolCallParser({ format: "json", parallel: false, forced: true })
      : params.tools
        ? new ToolCallParser(params.tools)
        : null;
    const thinking = params.reasoning ? new ReasoningSplitter() : null;
    const eos = new Set(params.ignoreEos ? [] : this.tokenizer.eosTokenIds);
    const before = this.experts.stats();
    const channel = new Channel<TokenEvent>();
    let completion = 0;
    let finishReason: GenerationResult["finishReason"] = "length";
    const promptLogprobs: NonNullable<GenerationResult["promptLogprobs"]> = [];
    const seq: ScheduledSequence = {
      prompt: promptIds,
      maxTotal: promptIds.length + params.maxTokens,
      tenant: meta.tenant ?? "",
      signal,
      cachedTokens: 0,
      onLogits: (logits) => {
        if (params.maxTokens === 0) return null;
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
        const ended = finishReason === "stop" || last;
        let reasoning = "";
        if (thinking) {
          const split = thinking.take(text, ended);
          reasoning = split.reasoning;
          text = split.content;
        }
        let calls: ToolCall[] = [];
        if (tools) {
          const out = tools.take(text, ended);
          text = out.text;
          calls = out.calls;
          if (tools.called && !tools.cut && (finishReason === "stop" || tools.stopped))
            finishReason = "tool_calls";
        }
        const event: TokenEvent = { tokenId: s.tokenId, text };
        if (reasoning !== "") event.reasoning = reasoning;
        if (calls.length > 0) event.toolCalls = calls;
        if (s.logprob !== undefined) {
          event.logprob = this.logprobEntry(s.tokenId, s.logprob);
          event.topLogprobs = s.top!.map((t) => this.logprobEntry(t.tokenId, t.logprob));
        }
        channel.push(event);
        return finishReason !== "length" || last ? null : s.tokenId;
      },
      onPromptLogits:
        params.promptLogprobs === undefined
          ? undefined
          : (rows, pos0) => {
              const k = params.promptLogprobs!;
              rows.forEach((row, i) => {
                const next = pos0 + i + 1; // the prompt token this row scores
                if (next >= promptIds.length) return;
                const lse = logSumExp(row);
                promptLogprobs.push({
                  logprob: this.logprobEntry(promptIds[next], row[promptIds[next]] - lse),
                  top: topIndices(row, k).map((t) => this.logprobEntry(t, row[t] - lse)),
                });
              });
            },
      paused: () => channel.backlog >= MAX_UNREAD_EVENTS,
      onEnd: (error) => channel.end(signal?.aborted ? undefined : error),
    };
    channel.onTake = () => {
      if (channel.backlog === MAX_UNREAD_EVENTS - 1) this.scheduler.kick();
    };
    try {
      this.scheduler.submit(seq);
    } catch (err) {
      if (err instanceof AdmissionError)
        throw new EngineError(err.message, err.status, "server_busy", err.retryAfterSeconds);
      throw err;
    }
    const experts = this.experts;
    return (async function* () {
      yield* channel.drain();
      return {
        finishReason,
        promptTokens: promptIds.length,
        completionTokens: completion,
        cachedTokens: seq.cachedTokens,
        paging: diffStats(before, experts.stats()),
        ...(params.promptLogprobs !== undefined ? { promptLogprobs } : {}),
      };
    })();
  }

  /** The token mask of JSON mode, structured outputs or a forced tool call, if one was asked for. */
  private constraintFor(params: SamplingParams): JsonConstraint | undefined {
    if (params.forcedCall) {
      const format = params.tools?.format ?? "json";
      const grammar = forcedCallGrammar(format, params.forcedCall.functions);
      return new JsonConstraint(this.tokenizer, this.vocabSize, grammar);
    }
    if (params.jsonSchema)
      return new JsonConstraint(this.tokenizer, this.vocabSize, SchemaState.start(params.jsonSchema));
    return params.jsonObject ? new JsonConstraint(this.tokenizer, this.vocabSize) : undefined;
  }

  private logprobEntry(tokenId: number, logprob: number): TokenLogprob {
    const bytes = tokenBytes(this.tokenizer, tokenId);
    return { tokenId, token: tokenText(bytes), logprob, bytes };
  }

  close(): void {
    this.experts.close();
  }
}

/** Per-request view of the provider's counters; gauges (resident set, budget) are reported as-is. */
function diffStats(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(b)) out[k] = /^(resident|budget|capacity)_/.test(k) ? b[k] : b[k] - (a[k] ?? 0);
  return out;
}
