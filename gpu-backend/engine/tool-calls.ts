/**
 * Tool calls in generated text. Each chat template asks the model for calls in its own format;
 * this turns the text stream into content deltas plus complete calls, as tokens arrive:
 *   - "hermes" (Qwen3): `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`, anywhere in
 *     the reply, any number of them; the text around them is content.
 *   - "json" (Llama 4's template): the reply is `{"name": ..., "parameters": {...}}`, several
 *     separated by `;` or whitespace; a reply that does not start with `{` is plain content.
 * A call whose JSON does not parse (or lacks a name or an arguments object) stays content, as the
 * model wrote it. Calls are only emitted whole: a stream sends each one in a single delta.
 */
import { partialTagAt } from "./held-text.js";
import type { ToolCall, ToolCallFormat, ToolCallSpec } from "./types.js";

const OPEN = "<tool_call>";
const CLOSE = "</tool_call>";

export interface ToolCallOutput {
  /** Content that is now safe to emit. */
  text: string;
  /** Calls completed by this text. */
  calls: ToolCall[];
}

/** OpenAI-style call id: `call_` and 24 random alphanumerics. */
export function newCallId(): string {
  return `call_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
}

/** A call object `{"name": string, "arguments" | "parameters": object}`, or null. */
export function parseCallObject(json: string, newId: () => string = newCallId): ToolCall | null {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const args = o.arguments ?? o.parameters ?? {};
  if (typeof o.name !== "string" || o.name === "") return null;
  if (typeof args !== "object" || args === null || Array.isArray(args)) return null;
  return { id: newId(), name: o.name, arguments: JSON.stringify(args) };
}

/**
 * End of the JSON object starting at s[0] === "{" (index after its `}`), or -1 while it is still
 * open. Only brackets outside strings count; whether it parses is checked afterwards.
 */
function objectEnd(s: string): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === "{" || ch === "[") depth++;
    else if (ch === "}" || ch === "]") {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

export class ToolCallParser {
  /** Text received but not yet emitted or turned into calls. */
  private buf = "";
  /** Inside a call (hermes: after <tool_call>; json: a reply made of calls). */
  private inCall = false;
  /** json format: the reply turned out not to be calls; everything is content from now on. */
  private plain = false;
  private calls = 0;
  /** Whitespace after a call, not emitted yet (see content). */
  private space = "";

  constructor(
    private readonly spec: Pick<ToolCallSpec, "format" | "parallel"> & {
      /**
       * The reply is known to be one call (a forced call, written under its grammar): cut short
       * (max_tokens), it is still answered as that call, with the arguments it got to (the finish
       * reason, length, says it was cut).
       */
      forced?: boolean;
    },
    private readonly newId: () => string = newCallId,
  ) {}

  /** A call was emitted. */
  get called(): boolean {
    return this.calls > 0;
  }

  /** The call emitted was cut short (forced, max_tokens): the reply did not end with it. */
  cut = false;

  /** No more calls may come (parallel_tool_calls false and one was made): end the generation. */
  get stopped(): boolean {
    return !this.spec.parallel && this.calls > 0;
  }

  /**
   * The next text delta of the reply; `last`: the generation ends with it, so what was held back is
   * emitted and an unclosed call is tried as it is. After `stopped`, text is dropped.
   */
  take(text: string, last: boolean): ToolCallOutput {
    const out: ToolCallOutput = { text: "", calls: [] };
    if (this.stopped) return out;
    this.buf += text;
    if (this.spec.format === "hermes") this.hermes(out, last);
    else this.json(out, last);
    return out;
  }

  private emitCall(out: ToolCallOutput, json: string): boolean {
    const call = parseCallObject(json, this.newId);
    if (!call) return false;
    out.calls.push(call);
    this.calls++;
    return true;
  }

  /**
   * A forced call cut short: its name (once written whole), and its arguments as far as they got
   * (not valid JSON then; "" when the cut came before them).
   */
  private emitCut(out: ToolCallOutput, text: string): boolean {
    const name = /^\{"name": "([^"]+)"/.exec(text);
    if (!name) return false;
    const args = /^, "(?:arguments|parameters)":\s*([\s\S]*)$/.exec(text.slice(name[0].length));
    out.calls.push({ id: this.newId(), name: name[1], arguments: args ? args[1] : "" });
    this.calls++;
    this.cut = true;
    this.buf = "";
    return true;
  }

  /**
   * Content. After a call, whitespace is held until text follows it: whitespace between calls or
   * at the end is dropped, but not the spaces inside text (which may come a character at a time).
   */
  private content(out: ToolCallOutput, s: string): void {
    if (this.calls === 0) {
      out.text += s;
      return;
    }
    const text = this.space + s;
    const end = text.trimEnd().length;
    out.text += text.slice(0, end);
    this.space = text.slice(end);
  }

  private hermes(out: ToolCallOutput, end: boolean): void {
    while (!this.stopped) {
      if (!this.inCall) {
        const at = this.buf.indexOf(OPEN);
        if (at < 0) {
          const hold = end ? 0 : partialTagAt(this.buf, OPEN);
          this.content(out, this.buf.slice(0, this.buf.length - hold));
          this.buf = this.buf.slice(this.buf.length - hold);
          return;
        }
        this.content(out, this.buf.slice(0, at));
        this.space = "";
        this.buf = this.buf.slice(at + OPEN.length);
        this.inCall = true;
      }
      const close = this.buf.indexOf(CLOSE);
      if (close < 0 && !end) return;
      const body = close < 0 ? this.buf : this.buf.slice(0, close);
      if (!this.emitCall(out, body.trim())) out.text += OPEN + body + (close < 0 ? "" : CLOSE);
      this.buf = close < 0 ? "" : this.buf.slice(close + CLOSE.length);
      this.inCall = false;
      if (end && this.buf === "") return;
    }
  }

  private json(out: ToolCallOutput, end: boolean): void {
    while (!this.plain && !this.stopped) {
      // Between calls (or before the first): separators, then `{` starts the next one.
      const lead = this.buf.match(this.inCall ? /^[\s;]*/ : /^\s*/)![0].length;
      if (lead === this.buf.length) {
        if (end && !this.inCall) out.text += this.buf;
        if (end) this.buf = "";
        return;
      }
      if (this.buf[lead] !== "{") break;
      const close = objectEnd(this.buf.slice(lead));
      if (close < 0 && !end) return;
      if (close < 0 && this.spec.forced && this.emitCut(out, this.buf.slice(lead))) return;
      const obj = close < 0 ? this.buf.slice(lead) : this.buf.slice(lead, lead + close);
      if (close < 0 || !this.emitCall(out, obj)) break;
      this.inCall = true;
      this.buf = this.buf.slice(lead + close);
    }
    // Not (or no longer) calls: the rest of the reply is content.
    if (!this.stopped) {
      this.plain = true;
      this.content(out, this.buf);
    }
    this.buf = "";
  }
}

/** The call format a chat template asks for (by the instructions it renders), or null. */
export function detectToolCallFormat(template: string | null): ToolCallFormat | null {
  if (!template) return null;
  if (template.includes(OPEN)) return "hermes";
  if (template.includes('"parameters"') && template.includes("function call")) return "json";
  return null;
}
