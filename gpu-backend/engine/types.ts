/** What the HTTP server needs from an engine: tokenize, template, generate a token stream. */
import type { SchemaNode } from "../../src/openai/json-schema.js";

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool" | "developer";
  content: string;
  /** An assistant turn's calls, as OpenAI sends them (arguments parsed to JSON where they parse). */
  tool_calls?: { id: string; type: "function"; function: { name: string; arguments: unknown } }[];
  /** A tool turn: the call it answers. */
  tool_call_id?: string;
}

/** How a chat template asks the model to write tool calls (see engine/tool-calls.ts). */
export type ToolCallFormat = "hermes" | "json";

export interface ToolCallSpec {
  format: ToolCallFormat;
  /** parallel_tool_calls: false ends the generation after the first call. */
  parallel: boolean;
}

/** A function a forced call may name, and the compiled schema of its arguments (null: any object). */
export interface ForcedFunction {
  name: string;
  parameters: SchemaNode | null;
}

/** A complete tool call found in the generated text. */
export interface ToolCall {
  id: string;
  name: string;
  /** The arguments object as JSON text. */
  arguments: string;
}

/** Options of the chat template rendering. */
export interface ChatTemplateRequest {
  /** OpenAI tool definitions, shown to the model by the template. */
  tools?: unknown[];
  /** Text the assistant's reply starts with (appended after the generation prompt). */
  replyPrefix?: string;
  /** Further template variables (chat_template_kwargs, e.g. Qwen3's enable_thinking). */
  variables?: Record<string, unknown>;
}

export interface SamplingParams {
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  /** 0 = off. */
  topK: number;
  seed?: number;
  presencePenalty: number;
  frequencyPenalty: number;
  /** Stop strings: generation ends before the first occurrence; it is not returned. */
  stop: string[];
  /** Number of top logprobs per token to return; null = no logprobs. */
  logprobs: number | null;
  /** Keep generating past end-of-sequence tokens (benchmarks, parity runs). */
  ignoreEos?: boolean;
  /** Added to these tokens' logits before sampling (OpenAI logit_bias; -100 bans, +100 forces). */
  logitBias?: ReadonlyMap<number, number>;
  /** JSON mode: the output is one JSON object (tokens masked to keep it so; EOS only once it closes). */
  jsonObject?: boolean;
  /** Structured outputs: the output is one JSON text valid under this compiled schema (masked so). */
  jsonSchema?: SchemaNode;
  /**
   * Prompt logprobs (legacy completions with echo): every prompt token after the first gets its
   * logprob and this many alternatives (GenerationResult.promptLogprobs); the prompt is then
   * computed whole, without the prefix cache.
   */
  promptLogprobs?: number;
  /** A reply opening with `<think>` reasons until `</think>` (TokenEvent.reasoning; see reasoning.ts). */
  reasoning?: boolean;
  /** Tool calls are parsed out of the text (TokenEvent.toolCalls). */
  tools?: ToolCallSpec;
  /**
   * The reply is one call to one of these functions (tool_choice "required" or named), in the
   * template's format after ChatTemplateRequest.replyPrefix; tokens are masked to keep it so.
   */
  forcedCall?: { functions: ForcedFunction[] };
}

export interface TokenLogprob {
  tokenId: number;
  /** The token's text; bytes of an incomplete UTF-8 character appear as `\xNN`. */
  token: string;
  logprob: number;
  /** The raw bytes the token stands for (part of a character, for some tokens). */
  bytes: Uint8Array;
}

export interface TokenEvent {
  tokenId: number;
  /** Text delta to emit (may be "" while a multi-byte character or a possible stop string is held back). */
  text: string;
  logprob?: TokenLogprob;
  topLogprobs?: TokenLogprob[];
  /** Reasoning text delta (params.reasoning): not part of `text`. */
  reasoning?: string;
  /** Tool calls completed by this token (params.tools). */
  toolCalls?: ToolCall[];
}

export type FinishReason = "stop" | "length" | "tool_calls";

export interface GenerationResult {
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens whose KV came from a cache. */
  cachedTokens: number;
  /** With params.promptLogprobs: prompt tokens 1.. (the first has none), in order. */
  promptLogprobs?: { logprob: TokenLogprob; top: TokenLogprob[] }[];
  /** Expert paging summary for this request (filled once the expert store exists). */
  paging?: Record<string, number>;
}

export interface Tokenizer {
  encode(text: string, addSpecialTokens?: boolean): number[];
  decode(ids: number[]): string;
  /** Raw bytes of a token (byte-level vocabularies; see tokenizer/token-text.ts). */
  tokenBytes?(id: number): Uint8Array;
  idToToken?(id: number): string | undefined;
  /** Control tokens (never text). */
  readonly specialTokenIds?: ReadonlySet<number>;
  /** Render the chat template (with the generation prompt) and tokenize it. */
  applyChatTemplate(messages: ChatMessage[], opts?: ChatTemplateRequest): number[];
  /** The chat template's source (reasoning.ts asks whether it renders thinking). */
  readonly chatTemplate?: string | null;
  /** How the chat template asks for tool calls; null or absent: it has no tool support. */
  readonly toolCallFormat?: ToolCallFormat | null;
  readonly eosTokenIds: number[];
}

/** Who a request is for: the scheduler keeps tenants from starving each other. */
export interface RequestMeta {
  tenant?: string;
}

export interface Engine {
  readonly modelId: string;
  readonly tokenizer: Tokenizer;
  readonly contextLength: number;
  /** Logits per step (token ids are below this). */
  readonly vocabSize: number;
  /**
   * Yields one event per generated token; returns the final accounting. Abort stops within one
   * step. Throws synchronously (before any event) for invalid input or when at capacity; such
   * errors carry `status` (400 / 503) and, for 503, `retryAfterSeconds`.
   */
  generate(
    promptIds: number[],
    params: SamplingParams,
    signal?: AbortSignal,
    meta?: RequestMeta,
  ): AsyncGenerator<TokenEvent, GenerationResult>;
}
