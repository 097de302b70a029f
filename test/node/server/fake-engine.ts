/**
 * A test double for the Engine interface, used ONLY by the server's HTTP tests (they check HTTP
 * behaviour, not model output). Tokens are characters; the reply is derived from the prompt.
 */
import { ReasoningSplitter } from "../../../gpu-backend/engine/reasoning.js";
import { ToolCallParser } from "../../../gpu-backend/engine/tool-calls.js";
import type {
  ChatMessage,
  Engine,
  GenerationResult,
  SamplingParams,
  TokenEvent,
  Tokenizer,
} from "../../../gpu-backend/engine/types.js";

const utf8 = new TextEncoder();

export const EOS = 0;

export class CharTokenizer implements Tokenizer {
  readonly eosTokenIds = [EOS];
  /** Tool calls are written `<tool_call>{...}</tool_call>` (the real parser finds them: params.tools). */
  readonly toolCallFormat = "hermes" as const;
  /** A thinking template, as Qwen3's (replies may open with <think>: params.reasoning). */
  readonly chatTemplate = "{{ messages }} <think>";
  encode(text: string, addSpecialTokens = false): number[] {
    const ids = Array.from(text, (ch) => ch.codePointAt(0)!);
    return addSpecialTokens ? [1, ...ids] : ids;
  }
  decode(ids: number[]): string {
    return String.fromCodePoint(...ids.filter((id) => id > 1));
  }
  applyChatTemplate(messages: ChatMessage[]): number[] {
    return this.encode(`${messages.map((m) => `<${m.role}>${m.content}`).join("")}<assistant>`, true);
  }
}

export interface FakeOptions {
  /** Text the engine produces (before max_tokens); default: "reply to <last 5 prompt chars>". */
  reply?: string;
  /** Throw after this many tokens. */
  failAfter?: number;
  /** Await this before every token (lets tests control timing). */
  beforeToken?: (index: number) => Promise<void>;
  contextLength?: number;
}

export class FakeEngine implements Engine {
  readonly modelId = "fake-model";
  readonly tokenizer = new CharTokenizer();
  readonly contextLength: number;
  /** Token ids are Unicode code points. */
  readonly vocabSize = 0x110000;
  readonly calls: { promptIds: number[]; params: SamplingParams }[] = [];
  aborted = 0;

  constructor(private readonly opts: FakeOptions = {}) {
    this.contextLength = opts.contextLength ?? 4096;
  }

  async *generate(
    promptIds: number[],
    params: SamplingParams,
    signal?: AbortSignal,
  ): AsyncGenerator<TokenEvent, GenerationResult> {
    this.calls.push({ promptIds, params });
    const reply = this.opts.reply ?? `reply to ${this.tokenizer.decode(promptIds.slice(-16))}`;
    let completion = 0;
    let finishReason: GenerationResult["finishReason"] = "length";
    const tools = params.tools ? new ToolCallParser(params.tools) : null;
    const thinking = params.reasoning ? new ReasoningSplitter() : null;
    // The engine's own order: reasoning split first, tool calls from the content.
    const split = (ev: TokenEvent, text: string, last: boolean) => {
      const r = thinking?.take(text, last) ?? { reasoning: "", content: text };
      const out = tools?.take(r.content, last) ?? { text: r.content, calls: [] };
      ev.text = out.text;
      if (r.reasoning !== "") ev.reasoning = r.reasoning;
      if (out.calls.length > 0) ev.toolCalls = out.calls;
    };
    for (const ch of reply) {
      if (signal?.aborted) {
        this.aborted++;
        break;
      }
      if (completion === this.opts.failAfter) throw new Error("device fell over");
      await this.opts.beforeToken?.(completion);
      if (signal?.aborted) {
        this.aborted++;
        break;
      }
      completion++;
      const id = ch.codePointAt(0)!;
      const ev: TokenEvent = { tokenId: id, text: ch };
      if (params.logprobs !== null) {
        ev.logprob = { tokenId: id, token: ch, logprob: -0.5, bytes: utf8.encode(ch) };
        // The third alternative is the first byte of "€" alone, as byte-level vocabularies have.
        ev.topLogprobs = Array.from({ length: params.logprobs }, (_, i) =>
          i === 2
            ? { tokenId: i, token: "\\xe2", logprob: -i, bytes: Uint8Array.of(0xe2) }
            : { tokenId: i, token: `t${i}`, logprob: -i, bytes: utf8.encode(`t${i}`) },
        );
      }
      const last = completion >= params.maxTokens;
      split(ev, ch, last);
      yield ev;
      if (last || tools?.stopped) break;
    }
    if (tools?.stopped) {
      finishReason = "tool_calls";
    } else if (completion < params.maxTokens && !signal?.aborted) {
      completion++; // the EOS token counts as generated
      const ev: TokenEvent = { tokenId: EOS, text: "" };
      split(ev, "", true);
      finishReason = tools?.called ? "tool_calls" : "stop";
      yield ev;
    }
    return { finishReason, promptTokens: promptIds.length, completionTokens: completion, cachedTokens: 0 };
  }
}
