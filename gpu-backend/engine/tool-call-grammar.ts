/**
 * tool_choice "required" or a named function: the reply must be one call, written exactly as the
 * chat template writes calls in earlier turns, `{"name": "<one of the names>", "arguments": <a JSON
 * object>}` ("parameters" for the json format). A byte automaton for the token mask (as JSON mode's
 * json-grammar.ts, which it embeds for the arguments). The arguments are any JSON object: the
 * function's parameter schema is shown to the model but not enforced. Outside strings they take
 * single spaces only (one line, as the templates write calls): a model unsure what to write could
 * otherwise fill its tokens with whitespace, which JSON allows anywhere.
 */
import { type ByteAutomaton, JsonState } from "./json-grammar.js";
import type { ToolCallFormat } from "./types.js";

/** Exact text (one of several options: the first byte decides) or a JSON object. */
type Segment = { options: Uint8Array[] } | "json";

const utf8 = new TextEncoder();

function plan(format: ToolCallFormat, names: string[]): Segment[] {
  const argsKey = format === "json" ? "parameters" : "arguments";
  return [
    { options: [utf8.encode('{"name": "')] },
    // Names never contain `"` (the schema checks them), so no option is a prefix of another.
    { options: [...new Set(names)].map((n) => utf8.encode(`${n}", "${argsKey}": `)) },
    "json",
    { options: [utf8.encode("}")] },
  ];
}

class CallState implements ByteAutomaton {
  constructor(
    private readonly segments: Segment[],
    private readonly seg: number,
    /** Bytes of the current text segment matched so far, and the options they still match. */
    private readonly pos: number,
    private readonly live: readonly Uint8Array[] | null,
    private readonly json: JsonState | null,
    /** The last byte was a space outside a string. */
    private readonly space = false,
  ) {}

  get done(): boolean {
    return this.seg >= this.segments.length;
  }

  get inPlainString(): boolean {
    return this.json?.inPlainString ?? false;
  }

  feed(bytes: Uint8Array): CallState | null {
    let s: CallState | null = this;
    for (let i = 0; i < bytes.length && s; i++) s = s.step(bytes[i]);
    return s;
  }

  step(b: number): CallState | null {
    const segment = this.segments[this.seg];
    if (segment === undefined) return null;
    if (segment === "json") {
      const inString = this.json?.inPlainString ?? false;
      const space = !inString && (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d);
      // (the text segment before the arguments ends with a space)
      if (space && (b !== 0x20 || this.space || this.json === null)) return null;
      const j = (this.json ?? JsonState.start()).step(b);
      if (!j) return null;
      return j.done ? this.next() : new CallState(this.segments, this.seg, 0, null, j, space);
    }
    const live = (this.live ?? segment.options).filter((o) => o[this.pos] === b);
    if (live.length === 0) return null;
    const pos = this.pos + 1;
    if (live.some((o) => o.length === pos)) return this.next();
    return new CallState(this.segments, this.seg, pos, live, null);
  }

  private next(): CallState {
    return new CallState(this.segments, this.seg + 1, 0, null, null);
  }
}

/** The start state of the grammar of one call to one of `names`. */
export function forcedCallGrammar(format: ToolCallFormat, names: string[]): ByteAutomaton {
  if (names.length === 0) throw new Error("a forced tool call needs at least one function name");
  return new CallState(plan(format, names), 0, 0, null, null);
}

/** What the reply starts with before the call (the template's opening tag, if it has one). */
export function forcedCallPrefix(format: ToolCallFormat): string {
  return format === "hermes" ? "<tool_call>\n" : "";
}
