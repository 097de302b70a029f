/**
 * Frames -> OpenAI: the edge side of the internal protocol. Turns the backend's frames into the
 * exact chunks (stream) or response object (non-stream) the backend's own OpenAI endpoints
 * produce for the same generation, for chat and legacy completions, and keeps what the edge
 * needs for accounting: exact usage (cached tokens included), finish reason, text and deltas.
 */
import { assistantDelta, assistantMessage } from "../openai/assistant-message.js";
import type { OpenAIErrorBody } from "../openai/errors.js";
import { joinLegacyLogprobs } from "../openai/legacy-logprobs.js";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  FinishReason,
  LegacyLogprobs,
  LogprobContent,
  TopLogprob,
  Usage,
} from "../openai/types.js";
import { ProtocolError } from "./codec.js";
import type { EndFrame, Frame, FrameLogprob, FrameToolCall, FrameUsage, TokenFrame } from "./types.js";

export interface OpenAIView {
  endpoint: "chat" | "completion";
  id: string;
  created: number;
  model: string;
  /** Send the usage chunk at the end (stream_options.include_usage); chunks then carry `usage: null`. */
  includeUsage: boolean;
  /** The client asked for logprobs (chat: logprobs true; completions: logprobs set). */
  logprobs: boolean;
  /** Legacy completions with echo: the prompt text, sent first (the start frame's, when it has one). */
  echo?: string;
  /** Choices (the request's n); default 1. */
  n?: number;
}

export interface TextCompletion {
  id: string;
  object: "text_completion";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    text: string;
    logprobs: LegacyLogprobs | null;
    finish_reason: FinishReason;
  }>;
  usage: Usage;
}

const utf8 = new TextEncoder();

export function usageFromFrame(u: FrameUsage): Usage {
  return {
    prompt_tokens: u.prompt_tokens,
    completion_tokens: u.completion_tokens,
    total_tokens: u.prompt_tokens + u.completion_tokens,
    prompt_tokens_details: { cached_tokens: u.cached_tokens },
  };
}

function top(t: FrameLogprob): TopLogprob {
  return { token: t.token, logprob: t.logprob, bytes: t.bytes ?? Array.from(utf8.encode(t.token)) };
}

function chatLogprob(f: TokenFrame): LogprobContent | null {
  if (!f.logprob) return null;
  return { ...top(f.logprob), top_logprobs: (f.top ?? []).map(top) };
}

/**
 * Legacy logprobs of a run of tokens; offsets advance by the text each token's frame carried (as
 * the stream's do), so the tokens of one multi-byte character share its offset.
 */
function legacyLogprobs(frames: TokenFrame[], startOffset: number): LegacyLogprobs | null {
  const withLp = frames.filter((f) => f.logprob);
  if (withLp.length === 0) return null;
  const out: LegacyLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let offset = startOffset;
  for (const f of withLp) {
    const lp = f.logprob!;
    out.tokens.push(lp.token);
    out.token_logprobs.push(lp.logprob);
    out.top_logprobs.push(Object.fromEntries((f.top ?? []).map((t) => [t.token, t.logprob])));
    out.text_offset.push(offset);
    offset += f.text.length;
  }
  return out;
}

/** What one choice has received. */
class Choice {
  text = "";
  readonly deltas: string[] = [];
  readonly tokens: TokenFrame[] = [];
  readonly toolCalls: FrameToolCall[] = [];
  reasoning = "";
  finishReason: FinishReason | null = null;
  /** Legacy streaming offsets advance by the text deltas actually sent. */
  offset = 0;
}

/**
 * Feed frames in order. `chunks()` gives the stream chunks each frame becomes; after `end`,
 * `response()` gives the non-stream answer. State (text, usage, ...) is readable at any time; the
 * per-answer fields (text, deltas, finish reason, ...) are the first choice's.
 */
export class FramesToOpenAI {
  usage: Usage | null = null;
  paging: Record<string, number> | null = null;
  error: { status: number; body: OpenAIErrorBody } | null = null;
  /** Chunks that carried content. */
  contentChunks = 0;
  /** Prompt tokens, from the start frame (null before it). */
  promptTokens: number | null = null;
  /** Token frames received: one per generated token, so exact even when the stream breaks. */
  completionTokens = 0;
  private started = false;
  private ended = false;
  private readonly choices: Choice[];
  /** Legacy completions: the echoed prompt, and its logprobs (echo with logprobs, non-stream). */
  private echo: string;
  private promptLogprobs: LegacyLogprobs | null = null;

  constructor(readonly view: OpenAIView) {
    this.echo = view.echo ?? "";
    this.choices = Array.from({ length: Math.max(1, view.n ?? 1) }, () => new Choice());
    for (const c of this.choices) c.offset = this.echo.length;
  }

  get text(): string {
    return this.choices[0].text;
  }
  get deltas(): readonly string[] {
    return this.choices[0].deltas;
  }
  get finishReason(): FinishReason | null {
    return this.choices[0].finishReason;
  }
  get toolCalls(): readonly FrameToolCall[] {
    return this.choices[0].toolCalls;
  }
  get reasoning(): string {
    return this.choices[0].reasoning;
  }
  /** Some choice holds what a text-only replay cannot give back (reasoning, tool calls). */
  get hasExtras(): boolean {
    return this.choices.some((c) => c.reasoning !== "" || c.toolCalls.length > 0);
  }

  get done(): boolean {
    return this.ended || this.error !== null;
  }

  private choice(index: number | undefined): Choice {
    const c = this.choices[index ?? 0];
    if (!c) throw new ProtocolError(`choice ${index} of ${this.choices.length}`);
    return c;
  }

  private chatChunk(choices: ChatCompletionChunk["choices"]): ChatCompletionChunk {
    const v = this.view;
    return {
      id: v.id,
      object: "chat.completion.chunk",
      created: v.created,
      model: v.model,
      choices,
      ...(v.includeUsage ? { usage: null } : {}),
    };
  }

  private textChunk(choices: unknown[]): Record<string, unknown> {
    const v = this.view;
    return {
      id: v.id,
      object: "text_completion",
      created: v.created,
      model: v.model,
      choices,
      ...(v.includeUsage ? { usage: null } : {}),
    };
  }

  /** The chunk that ends choice `index` in a stream. */
  private finishChunk(index: number, reason: FinishReason): unknown {
    return this.view.endpoint === "chat"
      ? this.chatChunk([{ index, delta: {}, logprobs: null, finish_reason: reason }])
      : this.textChunk([{ index, text: "", logprobs: null, finish_reason: reason }]);
  }

  /** The chunks (JSON-ready objects) this frame becomes in a stream; ping frames become none. */
  chunks(frame: Frame): unknown[] {
    if (this.done) throw new ProtocolError(`frame '${frame.t}' after the end of the stream`);
    const chat = this.view.endpoint === "chat";
    switch (frame.t) {
      case "start":
        if (this.started) throw new ProtocolError("a second start frame");
        this.started = true;
        this.promptTokens = frame.prompt_tokens;
        if (chat)
          return this.choices.map((_, index) =>
            this.chatChunk([
              { index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null },
            ]),
          );
        if (frame.echo !== undefined) {
          this.echo = frame.echo;
          for (const c of this.choices) c.offset = frame.echo.length;
        }
        return this.echo
          ? this.choices.map((_, index) =>
              this.textChunk([{ index, text: this.echo, logprobs: null, finish_reason: null }]),
            )
          : [];
      case "ping":
        return [];
      case "token": {
        this.requireStart(frame.t);
        const index = frame.c ?? 0;
        const c = this.choice(index);
        if (c.finishReason !== null) throw new ProtocolError(`a token for choice ${index} after its finish`);
        c.tokens.push(frame);
        this.completionTokens++;
        if (frame.text !== "") {
          c.text += frame.text;
          c.deltas.push(frame.text);
        }
        if (chat) {
          const lp = chatLogprob(frame);
          const calls = frame.tool_calls ?? [];
          const reasoning = frame.reasoning ?? "";
          const firstIndex = c.toolCalls.length;
          c.toolCalls.push(...calls);
          c.reasoning += reasoning;
          if (frame.text === "" && lp === null && calls.length === 0 && reasoning === "") return [];
          if (frame.text !== "") this.contentChunks++;
          return [
            this.chatChunk([
              {
                index,
                delta: assistantDelta(frame.text, calls, firstIndex, reasoning),
                logprobs: lp ? { content: [lp] } : null,
                finish_reason: null,
              },
            ]),
          ];
        }
        const lp = this.view.logprobs ? legacyLogprobs([frame], c.offset) : null;
        c.offset += frame.text.length;
        if (frame.text === "" && lp === null) return [];
        if (frame.text !== "") this.contentChunks++;
        return [this.textChunk([{ index, text: frame.text, logprobs: lp, finish_reason: null }])];
      }
      case "finish": {
        this.requireStart(frame.t);
        const c = this.choice(frame.c);
        if (c.finishReason !== null) throw new ProtocolError(`choice ${frame.c} finished twice`);
        c.finishReason = frame.finish_reason;
        return [this.finishChunk(frame.c, frame.finish_reason)];
      }
      case "end": {
        this.requireStart(frame.t);
        this.end(frame);
        const usage = this.usage!;
        // Choices without a finish frame of their own (a single choice never has one) end here.
        const out: unknown[] = [];
        this.choices.forEach((c, index) => {
          if (c.finishReason !== null) return;
          c.finishReason = frame.finish_reason;
          out.push(this.finishChunk(index, frame.finish_reason));
        });
        if (this.view.includeUsage)
          out.push(chat ? { ...this.chatChunk([]), usage } : { ...this.textChunk([]), usage });
        return out;
      }
      case "error":
        this.error = { status: frame.status, body: { error: frame.error } };
        return [this.error.body];
    }
  }

  /**
   * Usage so far: the end frame's when it came, else the prompt tokens of the start frame plus one
   * completion token per token frame received (exact for a stream cut mid-way); null before start.
   * Cached prompt tokens are only known from the end frame.
   */
  deliveredUsage(): Usage | null {
    if (this.usage) return this.usage;
    if (this.promptTokens === null) return null;
    return {
      prompt_tokens: this.promptTokens,
      completion_tokens: this.completionTokens,
      total_tokens: this.promptTokens + this.completionTokens,
    };
  }

  private requireStart(t: string): void {
    if (!this.started) throw new ProtocolError(`frame '${t}' before the start frame`);
  }

  private end(frame: EndFrame): void {
    this.ended = true;
    this.usage = usageFromFrame(frame.usage);
    this.paging = frame.paging ?? null;
    this.promptLogprobs = frame.prompt_logprobs ?? null;
  }

  /** The non-stream answer; only after the end frame. */
  response(): ChatCompletion | TextCompletion {
    if (!this.ended || this.usage === null) throw new ProtocolError("the stream has no end frame");
    const v = this.view;
    if (v.endpoint === "chat") {
      return {
        id: v.id,
        object: "chat.completion",
        created: v.created,
        model: v.model,
        choices: this.choices.map((c, index) => ({
          index,
          message: assistantMessage(c.text, c.toolCalls, c.reasoning),
          logprobs: v.logprobs
            ? { content: c.tokens.map(chatLogprob).filter((x): x is LogprobContent => x !== null) }
            : null,
          finish_reason: c.finishReason!,
        })),
        usage: this.usage,
      };
    }
    const echo = this.echo;
    return {
      id: v.id,
      object: "text_completion",
      created: v.created,
      model: v.model,
      choices: this.choices.map((c, index) => ({
        index,
        text: echo + c.text,
        logprobs: v.logprobs
          ? joinLegacyLogprobs(this.promptLogprobs, legacyLogprobs(c.tokens, echo.length))
          : null,
        finish_reason: c.finishReason!,
      })),
      usage: this.usage,
    };
  }
}
