/**
 * tool_choice "required" or a named function: the reply must be one call, written exactly as the
 * chat template writes calls in earlier turns, `{"name": "<one of the names>", "arguments": <JSON
 * object>}` ("parameters" for the json format). A byte automaton for the token mask. The arguments
 * follow the function's parameter schema where it compiles (json-schema-grammar.ts; any JSON object
 * otherwise), with at most one whitespace byte in a row: a model unsure what to write could
 * otherwise fill its tokens with whitespace, which JSON allows anywhere.
 */
import type { SchemaNode } from "../../src/openai/json-schema.js";
import type { ByteAutomaton } from "./json-grammar.js";
import { SchemaState } from "./json-schema-grammar.js";
import type { ForcedFunction, ToolCallFormat } from "./types.js";

const ANY_OBJECT: SchemaNode = {
  kind: "object",
  props: new Map(),
  required: new Set(),
  additional: { kind: "any" },
};
const utf8 = new TextEncoder();

interface Plan {
  prefix: Uint8Array;
  /** Per function: `name", "arguments":` (names never contain `"`, so none is a prefix of another). */
  names: { bytes: Uint8Array; args: SchemaNode }[];
  suffix: Uint8Array;
}

enum Phase {
  Prefix,
  Name,
  Args,
  Suffix,
  Done,
}

class CallState implements ByteAutomaton {
  constructor(
    private readonly plan: Plan,
    private readonly phase: Phase,
    /** Bytes of the current text matched so far (Prefix, Name, Suffix). */
    private readonly pos: number,
    /** Name: the functions whose text still matches. */
    private readonly live: Plan["names"],
    private readonly args: SchemaState | null,
  ) {}

  get done(): boolean {
    return this.phase === Phase.Done;
  }

  get inPlainString(): boolean {
    return this.args?.inPlainString ?? false;
  }

  feed(bytes: Uint8Array): CallState | null {
    let s: CallState | null = this;
    for (let i = 0; i < bytes.length && s; i++) s = s.step(bytes[i]);
    return s;
  }

  step(b: number): CallState | null {
    const p = this.plan;
    switch (this.phase) {
      case Phase.Prefix:
      case Phase.Suffix: {
        const text = this.phase === Phase.Prefix ? p.prefix : p.suffix;
        if (text[this.pos] !== b) return null;
        if (this.pos + 1 < text.length) return this.with(this.phase, this.pos + 1);
        return this.phase === Phase.Prefix ? this.with(Phase.Name, 0, p.names) : this.with(Phase.Done, 0);
      }
      case Phase.Name: {
        const live = this.live.filter((n) => n.bytes[this.pos] === b);
        if (live.length === 0) return null;
        const whole = live.find((n) => n.bytes.length === this.pos + 1);
        if (whole) return this.with(Phase.Args, 0, [], SchemaState.start(whole.args, 1));
        return this.with(Phase.Name, this.pos + 1, live);
      }
      case Phase.Args: {
        const a = this.args!.step(b);
        if (!a) return null;
        return a.done ? this.with(Phase.Suffix, 0) : this.with(Phase.Args, 0, [], a);
      }
      case Phase.Done:
        return null;
    }
  }

  private with(
    phase: Phase,
    pos: number,
    live: Plan["names"] = [],
    args: SchemaState | null = null,
  ): CallState {
    return new CallState(this.plan, phase, pos, live, args);
  }
}

/** The start state of the grammar of one call to one of `functions`. */
export function forcedCallGrammar(format: ToolCallFormat, functions: ForcedFunction[]): ByteAutomaton {
  if (functions.length === 0) throw new Error("a forced tool call needs at least one function");
  const argsKey = format === "json" ? "parameters" : "arguments";
  const plan: Plan = {
    prefix: utf8.encode('{"name": "'),
    names: functions.map((f) => ({
      bytes: utf8.encode(`${f.name}", "${argsKey}":`),
      args: f.parameters ?? ANY_OBJECT,
    })),
    suffix: utf8.encode("}"),
  };
  return new CallState(plan, Phase.Prefix, 0, [], null);
}

/** What the reply starts with before the call (the template's opening tag, if it has one). */
export function forcedCallPrefix(format: ToolCallFormat): string {
  return format === "hermes" ? "<tool_call>\n" : "";
}
