/**
 * The internal protocol between the edge and the backend, version 1. Defined once here (runs in
 * workerd and Node). The edge POSTs one msgpack-encoded `InternalRequest` (signed like every
 * backend call: HMAC over method, path, body hash, timestamp, nonce, tenant), and the backend
 * answers either a JSON OpenAI error (status 4xx/5xx, before anything was generated) or 200 with
 * a stream of length-prefixed msgpack frames: `start`, then `token`s (with `ping`s while nothing
 * flows, e.g. a long prefill), then exactly one `end` or `error`. With n > 1 choices, token frames
 * name their choice and each choice ends with a `finish` frame before the `end`. Fields added since
 * the first edition (tool calls, reasoning, echo, prompt logprobs, choices) are optional, so an
 * answer without them reads as before.
 */

import type { FoundToolCall } from "../openai/assistant-message.js";
import type { OpenAIErrorBody } from "../openai/errors.js";
import type { ChatCompletionRequest, CompletionRequest } from "../openai/schema.js";
import type { FinishReason, LegacyLogprobs } from "../openai/types.js";

export const PROTOCOL_VERSION = 1 as const;
export const INTERNAL_GENERATE_PATH = "/internal/v1/generate";
export const REQUEST_CONTENT_TYPE = "application/vnd.moe.request.v1+msgpack";
export const FRAMES_CONTENT_TYPE = "application/vnd.moe.frames.v1+msgpack";
/** A frame larger than this is a protocol error (a token frame is a few hundred bytes). */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;

/** Limits the edge imposes on this request, from the tenant's plan. */
export interface RequestLimits {
  /** Streams this tenant may hold on this backend at once (429 beyond). */
  maxInflight?: number | null;
}

export type InternalRequest = {
  v: typeof PROTOCOL_VERSION;
  /** Must equal the tenant the request is signed for. */
  tenant: string;
  requestId?: string;
  limits: RequestLimits;
} & (
  | { endpoint: "chat"; request: ChatCompletionRequest }
  | { endpoint: "completion"; request: CompletionRequest }
);

export interface FrameLogprob {
  id: number;
  token: string;
  logprob: number;
  /** The token's raw bytes (a token may hold part of a UTF-8 character); absent: UTF-8 of `token`. */
  bytes?: number[];
}

/** Sent once the request is admitted (the edge can flush its response headers). */
export interface StartFrame {
  t: "start";
  v: typeof PROTOCOL_VERSION;
  model: string;
  prompt_tokens: number;
  /** Legacy completions with echo: the prompt's text (the edge only has token ids for an id prompt). */
  echo?: string;
}

/** One generated token. `text` is its text delta ("" while bytes or a possible stop string are held back). */
export interface TokenFrame {
  t: "token";
  /** Choice index (n > 1); absent: 0. */
  c?: number;
  id: number;
  text: string;
  /** Present when logprobs were asked for. */
  logprob?: FrameLogprob;
  top?: FrameLogprob[];
  /** Reasoning text delta (backend's --reasoning-parser): not part of `text`. */
  reasoning?: string;
  /** Tool calls this token completed (chat with tools); `arguments` is JSON text. */
  tool_calls?: FrameToolCall[];
}

export type FrameToolCall = FoundToolCall;

/** Nothing to say yet (long prefill, busy batch): keeps proxies and the edge's timers alive. */
export interface PingFrame {
  t: "ping";
}

export interface FrameUsage {
  prompt_tokens: number;
  completion_tokens: number;
  /** Prompt tokens whose KV came from the prefix cache. */
  cached_tokens: number;
}

/** n > 1: choice `c` is done (the others may go on); the end frame follows once all are. */
export interface FinishFrame {
  t: "finish";
  c: number;
  finish_reason: FinishReason;
}

export interface EndFrame {
  t: "end";
  finish_reason: FinishReason;
  usage: FrameUsage;
  /** Legacy completions with echo and logprobs (non-stream): the prompt tokens' logprobs. */
  prompt_logprobs?: LegacyLogprobs;
  /** Expert paging for this request (hits, misses, bytes_read, stall_ms, ...). */
  paging?: Record<string, number>;
}

/** Generation failed after the stream began; no `end` follows. */
export interface ErrorFrame {
  t: "error";
  status: number;
  error: OpenAIErrorBody["error"];
}

export type Frame = StartFrame | TokenFrame | PingFrame | FinishFrame | EndFrame | ErrorFrame;
