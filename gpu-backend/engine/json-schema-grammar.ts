/**
 * Structured outputs (`response_format: {"type": "json_schema"}`): a byte automaton that accepts
 * exactly the JSON texts valid under a compiled schema (src/openai/json-schema.ts), for the token
 * mask of json-constraint.ts. A state is a set of alternatives (anyOf, or a type list, may match
 * the same bytes in several ways), each a persistent stack of frames: objects (allowed keys, each
 * once, required ones before `}`), arrays (item counts), strings, numbers and literals. Frames are
 * immutable, so trying a token's bytes from a state copies a few small objects at most.
 */
import type { SchemaNode } from "../../src/openai/json-schema.js";
import { type ByteAutomaton, JsonState, MAX_JSON_DEPTH, MAX_JSON_SPACE } from "./json-grammar.js";

/** Alternatives kept at once (ambiguous unions could otherwise multiply them). */
const MAX_ALTERNATIVES = 32;
/** Bytes of a key not listed in `properties` (keys the schema names are matched as literals). */
const MAX_FREE_KEY = 256;

const utf8 = new TextEncoder();
const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;

function deref(node: SchemaNode): SchemaNode {
  let n = node;
  while (n.kind === "ref") {
    if (!n.node) throw new Error("unresolved $ref");
    n = n.node;
  }
  return n;
}

/** What a frame makes of a byte. */
type Out =
  /** Consumed; `push`: a child value began with this byte (alternatives), `next` resumes after it. */
  | { next: Frame; push?: Frame[] }
  /** The frame's value is complete; `pass`: the byte was not part of it (a number's end). */
  | { done: true; pass: boolean }
  | null;

interface Frame {
  step(b: number): Out;
  /** Inside a free string with nothing pending: plain text may follow. */
  readonly plainString?: boolean;
}

/**
 * An integer within [lo, hi] (either side or both may be open): a digit is taken only if some
 * integer in range still starts with the digits so far, and the number may end only inside it.
 */
class BoundedIntFrame implements Frame {
  private constructor(
    private readonly lo: bigint | null,
    private readonly hi: bigint | null,
    private readonly neg: boolean,
    private readonly digits: string,
  ) {}

  static start(lo: bigint | null, hi: bigint | null, b: number): BoundedIntFrame | null {
    if (b === 0x2d) return lo === null || lo <= -1n ? new BoundedIntFrame(lo, hi, true, "") : null;
    return isDigit(b) ? new BoundedIntFrame(lo, hi, false, "").extend(b) : null;
  }

  private inRange(v: bigint): boolean {
    return (this.lo === null || v >= this.lo) && (this.hi === null || v <= this.hi);
  }

  /** Some integer in range is written with these digits first. */
  private viable(neg: boolean, digits: string): boolean {
    const d = BigInt(digits);
    // Longer numbers with this prefix: [d * 10^j, (d + 1) * 10^j - 1] (negated for `-`); no
    // leading zeros, so "0" and "-0" are complete.
    const width = Math.max(String(this.lo ?? 0n).length, String(this.hi ?? 0n).length) + 1;
    for (let j = 0; j <= (d === 0n ? 0 : width); j++) {
      const p = 10n ** BigInt(j);
      const a = d * p;
      const b = j === 0 ? d : (d + 1n) * p - 1n;
      const [x, y] = neg ? [-b, -a] : [a, b];
      if ((this.lo === null || y >= this.lo) && (this.hi === null || x <= this.hi)) return true;
    }
    return false;
  }

  private extend(b: number): BoundedIntFrame | null {
    if (this.digits === "0") return null; // JSON numbers have no leading zeros
    const digits = this.digits + String.fromCharCode(b);
    return this.viable(this.neg, digits) ? new BoundedIntFrame(this.lo, this.hi, this.neg, digits) : null;
  }

  step(b: number): Out {
    if (isDigit(b)) {
      const f = this.extend(b);
      return f ? { next: f } : null;
    }
    if (this.digits === "") return null;
    const v = BigInt(this.digits);
    return this.inRange(this.neg ? -v : v) ? { done: true, pass: true } : null;
  }
}

/** One of several exact JSON texts. Numbers end at the byte after them; other texts end themselves. */
class LiteralFrame implements Frame {
  constructor(
    private readonly options: readonly Uint8Array[],
    private readonly pos: number,
  ) {}

  static start(texts: string[], b: number): LiteralFrame | null {
    const f = new LiteralFrame(
      texts.map((t) => utf8.encode(t)),
      0,
    ).step(b);
    return f && "next" in f ? (f.next as LiteralFrame) : null;
  }

  step(b: number): Out {
    const live = this.options.filter((o) => o.length > this.pos && o[this.pos] === b);
    if (live.length === 0) {
      const whole = this.options.some((o) => o.length === this.pos);
      return whole ? { done: true, pass: true } : null;
    }
    const pos = this.pos + 1;
    // A text that ends in `"`, `}`, `]` or a letter (true, false, null) cannot be continued.
    const closed = live.find((o) => o.length === pos && !isDigit(o[pos - 1]));
    if (closed && live.length === 1) return { done: true, pass: false };
    return { next: new LiteralFrame(live, pos) };
  }
}

// ---- containers ----

/** Frames for a value of `node` that begins with byte b (already consumed), one per way it can. */
function startValue(node: SchemaNode, b: number, maxSpace: number): Frame[] {
  const n = deref(node);
  switch (n.kind) {
    case "union":
      return n.options.flatMap((o) => startValue(o, b, maxSpace));
    case "any": {
      const f = AnyFrame.start(b, maxSpace);
      return f ? [f] : [];
    }
    case "object":
      return b === 0x7b ? [new ObjectFrame(n, ObjPhase.First, [], null, 0, maxSpace)] : [];
    case "array":
      return b === 0x5b ? [new ArrayFrame(n, 0, ArrPhase.First, 0, maxSpace)] : [];
    case "string":
      // (a string any: JSON mode's automaton lexes it, UTF-8 checks included)
      return b === 0x22 ? [AnyFrame.start(b, maxSpace)!] : [];
    case "number": {
      // Integers (bounded or not) digit by digit; other numbers on JSON mode's automaton.
      const number = b === 0x2d || isDigit(b);
      const f = n.integer
        ? BoundedIntFrame.start(n.lo, n.hi, b)
        : number
          ? AnyFrame.start(b, maxSpace)
          : null;
      return f ? [f] : [];
    }
    case "literal": {
      const f = LiteralFrame.start(n.texts, b);
      return f ? [f] : [];
    }
    case "ref":
      return [];
  }
}

/**
 * A value the schema leaves open: JSON mode's own automaton (json-grammar.ts), much cheaper to
 * step than the frames above, with the same cap on whitespace in a row.
 */
class AnyFrame implements Frame {
  private constructor(
    private readonly js: JsonState,
    private readonly ws: number,
    private readonly maxSpace: number,
  ) {}

  static start(b: number, maxSpace: number): AnyFrame | null {
    const js = JsonState.value().step(b);
    return js ? new AnyFrame(js, 0, maxSpace) : null;
  }

  get plainString(): boolean {
    return this.js.inPlainString;
  }

  step(b: number): Out {
    const space = isSpace(b) && !this.js.inPlainString;
    if (space && this.ws >= this.maxSpace) return null;
    const js = this.js.step(b);
    if (!js) return this.js.numberMayEnd ? { done: true, pass: true } : null;
    if (js.complete) return { done: true, pass: false };
    return { next: new AnyFrame(js, space ? this.ws + 1 : 0, this.maxSpace) };
  }
}

enum ObjPhase {
  /** After `{`: a key or `}`. */
  First,
  /** Inside a key (literal: matching `literal`; free: lexing `free`). */
  Key,
  Colon,
  Value,
  /** After a value: `,` or `}`. */
  After,
  /** After `,`: a key. */
  Next,
}

class ObjectFrame implements Frame {
  constructor(
    private readonly node: SchemaNode & { kind: "object" },
    private readonly phase: ObjPhase,
    /** Keys done (and the current one, from Colon on). */
    private readonly seen: readonly string[],
    private readonly key: KeyMatch | null,
    private readonly ws: number,
    private readonly maxSpace: number,
  ) {}

  private with(phase: ObjPhase, seen = this.seen, key: KeyMatch | null = null, ws = 0): ObjectFrame {
    return new ObjectFrame(this.node, phase, seen, key, ws, this.maxSpace);
  }

  private complete(): boolean {
    for (const r of this.node.required) if (!this.seen.includes(r)) return false;
    return true;
  }

  /** Keys the schema names that are still allowed. */
  private openKeys(): string[] {
    return [...this.node.props.keys()].filter((k) => !this.seen.includes(k));
  }

  step(b: number): Out {
    const p = this.phase;
    if (isSpace(b) && p !== ObjPhase.Key) {
      return this.ws < this.maxSpace ? { next: this.with(p, this.seen, this.key, this.ws + 1) } : null;
    }
    switch (p) {
      case ObjPhase.First:
        if (b === 0x7d) return this.complete() ? { done: true, pass: false } : null;
        return b === 0x22 ? this.startKey() : null;
      case ObjPhase.Next:
        return b === 0x22 ? this.startKey() : null;
      case ObjPhase.Key: {
        const k = this.key!.step(b);
        if (k === null) return null;
        if (typeof k === "string")
          return this.seen.includes(k) ? null : { next: this.with(ObjPhase.Colon, [...this.seen, k]) };
        return { next: this.with(ObjPhase.Key, this.seen, k) };
      }
      case ObjPhase.Colon:
        return b === 0x3a ? { next: this.with(ObjPhase.Value) } : null;
      case ObjPhase.Value: {
        const name = this.seen[this.seen.length - 1];
        const schema = this.node.props.get(name) ?? this.node.additional;
        if (!schema) return null;
        const push = startValue(schema, b, this.maxSpace);
        return push.length > 0 ? { next: this.with(ObjPhase.After), push } : null;
      }
      case ObjPhase.After:
        if (b === 0x7d) return this.complete() ? { done: true, pass: false } : null;
        if (b !== 0x2c) return null;
        return this.node.additional || this.openKeys().length > 0 ? { next: this.with(ObjPhase.Next) } : null;
    }
  }

  private startKey(): Out {
    const names = this.openKeys();
    const free = this.node.additional !== null;
    if (!free && names.length === 0) return null;
    return { next: this.with(ObjPhase.Key, this.seen, KeyMatch.start(names, free)) };
  }
}

/**
 * A key after its opening quote: one of the schema's names (matched as JSON-encoded literals), or
 * when other keys are allowed, any string (lexed, then decoded).
 */
class KeyMatch {
  private constructor(
    /** Names still matching, JSON-encoded without the opening quote (with the closing one). */
    private readonly names: readonly { name: string; bytes: Uint8Array }[],
    private readonly pos: number,
    /**
     * Free key: its raw bytes so far, lexed by JSON mode's automaton (started on the opening
     * quote); null when only the names are allowed.
     */
    private readonly raw: Uint8Array | null,
    private readonly js: JsonState | null,
  ) {}

  static start(names: string[], free: boolean): KeyMatch {
    const encoded = names.map((name) => ({ name, bytes: utf8.encode(JSON.stringify(name).slice(1)) }));
    return free
      ? new KeyMatch([], 0, new Uint8Array(0), JsonState.value().step(0x22))
      : new KeyMatch(encoded, 0, null, null);
  }

  /** The key's name once its closing quote came, the next state, or null. */
  step(b: number): KeyMatch | string | null {
    if (this.raw && this.js) {
      const js = this.js.step(b);
      if (js === null) return null;
      if (js.complete) return JSON.parse(`"${new TextDecoder().decode(this.raw)}"`) as string;
      if (this.raw.length >= MAX_FREE_KEY) return null;
      const raw = new Uint8Array(this.raw.length + 1);
      raw.set(this.raw);
      raw[this.raw.length] = b;
      return new KeyMatch([], 0, raw, js);
    }
    const live = this.names.filter((n) => n.bytes[this.pos] === b);
    if (live.length === 0) return null;
    const pos = this.pos + 1;
    const whole = live.find((n) => n.bytes.length === pos);
    return whole ? whole.name : new KeyMatch(live, pos, null, null);
  }
}

enum ArrPhase {
  /** After `[`: a value or `]`. */
  First,
  /** After a value: `,` or `]`. */
  After,
  /** After `,`: a value. */
  Next,
}

class ArrayFrame implements Frame {
  constructor(
    private readonly node: SchemaNode & { kind: "array" },
    private readonly count: number,
    private readonly phase: ArrPhase,
    private readonly ws: number,
    private readonly maxSpace: number,
  ) {}

  step(b: number): Out {
    const n = this.node;
    if (isSpace(b)) {
      return this.ws < this.maxSpace
        ? { next: new ArrayFrame(n, this.count, this.phase, this.ws + 1, this.maxSpace) }
        : null;
    }
    if (this.phase === ArrPhase.After) {
      if (b === 0x5d) return this.count >= n.min ? { done: true, pass: false } : null;
      return b === 0x2c && this.count < n.max
        ? { next: new ArrayFrame(n, this.count, ArrPhase.Next, 0, this.maxSpace) }
        : null;
    }
    if (b === 0x5d && this.phase === ArrPhase.First) return n.min === 0 ? { done: true, pass: false } : null;
    if (this.count >= n.max) return null;
    const push = startValue(n.items, b, this.maxSpace);
    if (push.length === 0) return null;
    return { next: new ArrayFrame(n, this.count + 1, ArrPhase.After, 0, this.maxSpace), push };
  }
}

/** The bottom of every stack: whitespace, then the schema's value; after it, nothing. */
class RootFrame implements Frame {
  constructor(
    private readonly node: SchemaNode,
    private readonly ws: number,
    private readonly maxSpace: number,
    readonly finished = false,
  ) {}

  step(b: number): Out {
    if (this.finished) return null;
    if (isSpace(b))
      return this.ws < this.maxSpace ? { next: new RootFrame(this.node, this.ws + 1, this.maxSpace) } : null;
    const push = startValue(this.node, b, this.maxSpace);
    return push.length > 0 ? { next: new RootFrame(this.node, 0, this.maxSpace, true), push } : null;
  }
}

interface Stack {
  frame: Frame;
  up: Stack | null;
  depth: number;
}

export class SchemaState implements ByteAutomaton {
  private constructor(private readonly stacks: readonly Stack[]) {}

  /** The start state for a compiled schema (its root must be an object: see compileJsonSchema). */
  static start(node: SchemaNode, maxSpace = MAX_JSON_SPACE): SchemaState {
    return new SchemaState([{ frame: new RootFrame(node, 0, maxSpace), up: null, depth: 0 }]);
  }

  get done(): boolean {
    return this.stacks.some((s) => s.up === null && (s.frame as RootFrame).finished);
  }

  get inPlainString(): boolean {
    return this.stacks.length > 0 && this.stacks.every((s) => s.frame.plainString === true);
  }

  feed(bytes: Uint8Array): SchemaState | null {
    let s: SchemaState | null = this;
    for (let i = 0; i < bytes.length && s; i++) s = s.step(bytes[i]);
    return s;
  }

  step(b: number): SchemaState | null {
    const out: Stack[] = [];
    for (const s of this.stacks) advance(s, b, out);
    if (out.length === 0) return null;
    return new SchemaState(out.length > MAX_ALTERNATIVES ? out.slice(0, MAX_ALTERNATIVES) : out);
  }
}

function advance(s: Stack, b: number, out: Stack[]): void {
  const r = s.frame.step(b);
  if (r === null) return;
  if ("next" in r) {
    const here: Stack = { frame: r.next, up: s.up, depth: s.depth };
    if (!r.push) out.push(here);
    else if (s.depth + 1 <= MAX_JSON_DEPTH)
      for (const child of r.push) out.push({ frame: child, up: here, depth: s.depth + 1 });
    return;
  }
  // The frame's value is complete: its parent resumes (with this byte too, when it was not part of it).
  if (!s.up) return;
  if (r.pass) advance(s.up, b, out);
  else out.push(s.up);
}
