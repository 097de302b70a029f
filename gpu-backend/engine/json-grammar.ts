/**
 * JSON as a byte automaton, for JSON mode (`response_format: {"type": "json_object"}`): a state
 * takes one byte at a time and says whether the bytes so far can still become one JSON object
 * (RFC 8259, UTF-8 checked inside strings), and when that object is complete. States are immutable
 * (a step returns a new one) and the container stack is a shared linked list, so trying a token's
 * bytes from a state never copies more than a few fields.
 */

enum Mode {
  /** Before the top-level object: whitespace, then `{`. */
  Start,
  /** After `{`: a key or `}`. */
  ObjectFirst,
  /** After `,` in an object: a key. */
  ObjectKey,
  /** After a key: `:`. */
  Colon,
  /** A value. */
  Value,
  /** After `[`: a value or `]`. */
  ArrayFirst,
  /** Inside a string (key or value). */
  String,
  /** After `\` in a string. */
  Escape,
  /** The 4 hex digits of `\u`. */
  Hex,
  /** Continuation bytes of a multi-byte character in a string. */
  Utf8,
  /** Inside a number (the sub-state is in `aux`). */
  Number,
  /** Inside true / false / null (the rest of the word is in `lit`). */
  Literal,
  /** After a value: `,`, or the close of the container. */
  AfterValue,
  /** The top-level object is complete. */
  Done,
}

// Number sub-states (`aux` while in Mode.Number).
enum Num {
  Minus,
  Zero,
  Int,
  Dot,
  Frac,
  E,
  ESign,
  Exp,
}

interface Container {
  readonly object: boolean;
  readonly up: Container | null;
  readonly depth: number;
}

/** Containers may nest this deep (a generator stuck opening brackets cannot grow the stack forever). */
export const MAX_JSON_DEPTH = 64;
/**
 * Whitespace bytes in a row between tokens of the structure (enough for a newline and indentation):
 * a model that would rather not write JSON could otherwise emit whitespace until max_tokens.
 */
export const MAX_JSON_SPACE = 32;

/** A byte automaton the token mask can drive (JsonState, or the tool-call grammar around one). */
export interface ByteAutomaton {
  /** The text is complete: only the end may follow. */
  readonly done: boolean;
  /** Inside a JSON string with nothing pending (any plain text token may follow). */
  readonly inPlainString: boolean;
  feed(bytes: Uint8Array): ByteAutomaton | null;
  step(b: number): ByteAutomaton | null;
}

export class JsonState implements ByteAutomaton {
  private constructor(
    private readonly mode: Mode,
    private readonly stack: Container | null,
    /** Hex digits or UTF-8 continuation bytes left, or the number sub-state. */
    private readonly aux = 0,
    /** Whether the string being read is a key. */
    private readonly key = false,
    /** Literal: the characters still to come; Utf8: the allowed range of the next byte. */
    private readonly lit = "",
    private readonly lo = 0x80,
    private readonly hi = 0xbf,
    /** Whitespace bytes just read between structure tokens. */
    private readonly ws = 0,
  ) {}

  static start(): JsonState {
    return new JsonState(Mode.Start, null);
  }

  /** A JSON value of any kind, not only an object (for the parts of a schema that allow anything). */
  static value(): JsonState {
    return new JsonState(Mode.Value, null);
  }

  /** The top-level object is closed: only the end of the text may follow. */
  get done(): boolean {
    return this.mode === Mode.Done;
  }

  /** From value(): the value is whole (a container closed, or a string or literal ended). */
  get complete(): boolean {
    return this.mode === Mode.Done || (this.mode === Mode.AfterValue && this.stack === null);
  }

  /** From value(): a number that is whole here, and that the next byte (not part of it) ends. */
  get numberMayEnd(): boolean {
    return (
      this.mode === Mode.Number &&
      this.stack === null &&
      [Num.Zero, Num.Int, Num.Frac, Num.Exp].includes(this.aux)
    );
  }

  /** Inside a string with nothing pending: any printable character other than `"` and `\` may follow. */
  get inPlainString(): boolean {
    return this.mode === Mode.String;
  }

  /** The state after `bytes`, or null if they cannot continue a JSON object from here. */
  feed(bytes: Uint8Array): JsonState | null {
    let s: JsonState | null = this;
    for (let i = 0; i < bytes.length && s; i++) s = s.step(bytes[i]);
    return s;
  }

  step(b: number): JsonState | null {
    if (isSpace(b) && this.mode !== Mode.String && this.mode !== Mode.Done && this.mode !== Mode.Literal) {
      // Whitespace ends a number, is invalid inside an escape or a character, and is capped elsewhere.
      if (this.mode === Mode.Number) {
        const complete = [Num.Zero, Num.Int, Num.Frac, Num.Exp].includes(this.aux);
        return complete ? new JsonState(Mode.AfterValue, this.stack, 0, false, "", 0x80, 0xbf, 1) : null;
      }
      if (this.mode === Mode.Escape || this.mode === Mode.Hex || this.mode === Mode.Utf8) return null;
      if (this.ws >= MAX_JSON_SPACE) return null;
      return new JsonState(
        this.mode,
        this.stack,
        this.aux,
        this.key,
        this.lit,
        this.lo,
        this.hi,
        this.ws + 1,
      );
    }
    switch (this.mode) {
      case Mode.Start:
        return b === 0x7b ? this.open(true) : null;
      case Mode.ObjectFirst:
        if (b === 0x7d) return this.close(true);
        return b === 0x22 ? this.with(Mode.String, this.stack, 0, true) : null;
      case Mode.ObjectKey:
        return b === 0x22 ? this.with(Mode.String, this.stack, 0, true) : null;
      case Mode.Colon:
        return b === 0x3a ? this.with(Mode.Value, this.stack) : null;
      case Mode.ArrayFirst:
        if (b === 0x5d) return this.close(false);
        return this.value(b);
      case Mode.Value:
        return this.value(b);
      case Mode.String:
        if (b === 0x22) return this.with(this.key ? Mode.Colon : Mode.AfterValue, this.stack);
        if (b === 0x5c) return this.with(Mode.Escape, this.stack, 0, this.key);
        if (b < 0x20) return null; // control characters must be escaped
        if (b < 0x80) return this;
        return this.utf8Lead(b);
      case Mode.Utf8: {
        if (b < this.lo || b > this.hi) return null;
        const left = this.aux - 1;
        if (left === 0) return this.with(Mode.String, this.stack, 0, this.key);
        return new JsonState(Mode.Utf8, this.stack, left, this.key, "", 0x80, 0xbf);
      }
      case Mode.Escape:
        if (b === 0x75) return this.with(Mode.Hex, this.stack, 4, this.key);
        // " \ / b f n r t
        return [0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74].includes(b)
          ? this.with(Mode.String, this.stack, 0, this.key)
          : null;
      case Mode.Hex:
        if (!isHex(b)) return null;
        return this.aux === 1
          ? this.with(Mode.String, this.stack, 0, this.key)
          : this.with(Mode.Hex, this.stack, this.aux - 1, this.key);
      case Mode.Number:
        return this.number(b);
      case Mode.Literal:
        if (b !== this.lit.charCodeAt(0)) return null;
        return this.lit.length === 1
          ? this.with(Mode.AfterValue, this.stack)
          : new JsonState(Mode.Literal, this.stack, 0, false, this.lit.slice(1));
      case Mode.AfterValue:
        return this.afterValue(b);
      case Mode.Done:
        return null;
    }
  }

  private with(mode: Mode, stack: Container | null, aux = 0, key = false): JsonState {
    return new JsonState(mode, stack, aux, key);
  }

  private open(object: boolean): JsonState | null {
    const depth = (this.stack?.depth ?? 0) + 1;
    if (depth > MAX_JSON_DEPTH) return null;
    return this.with(object ? Mode.ObjectFirst : Mode.ArrayFirst, { object, up: this.stack, depth });
  }

  private close(object: boolean): JsonState | null {
    if (!this.stack || this.stack.object !== object) return null;
    const up = this.stack.up;
    return this.with(up ? Mode.AfterValue : Mode.Done, up);
  }

  private value(b: number): JsonState | null {
    if (b === 0x7b) return this.open(true);
    if (b === 0x5b) return this.open(false);
    if (b === 0x22) return this.with(Mode.String, this.stack);
    if (b === 0x2d) return this.with(Mode.Number, this.stack, Num.Minus);
    if (b === 0x30) return this.with(Mode.Number, this.stack, Num.Zero);
    if (b >= 0x31 && b <= 0x39) return this.with(Mode.Number, this.stack, Num.Int);
    const word = b === 0x74 ? "rue" : b === 0x66 ? "alse" : b === 0x6e ? "ull" : null;
    return word ? new JsonState(Mode.Literal, this.stack, 0, false, word) : null;
  }

  private number(b: number): JsonState | null {
    const digit = b >= 0x30 && b <= 0x39;
    const to = (sub: Num) => this.with(Mode.Number, this.stack, sub);
    switch (this.aux as Num) {
      case Num.Minus:
        if (b === 0x30) return to(Num.Zero);
        return digit ? to(Num.Int) : null;
      case Num.Dot:
        return digit ? to(Num.Frac) : null;
      case Num.E:
        if (b === 0x2b || b === 0x2d) return to(Num.ESign);
        return digit ? to(Num.Exp) : null;
      case Num.ESign:
        return digit ? to(Num.Exp) : null;
      case Num.Int:
      case Num.Frac:
      case Num.Exp:
        if (digit) return this;
        break;
    }
    // A complete number (0, 12, 1.5, 1e9): `.` and `e` may extend some; anything else ends it.
    const sub = this.aux as Num;
    if (b === 0x2e && (sub === Num.Zero || sub === Num.Int)) return to(Num.Dot);
    if ((b === 0x65 || b === 0x45) && sub !== Num.Exp) return to(Num.E);
    return this.afterValue(b);
  }

  private afterValue(b: number): JsonState | null {
    const top = this.stack;
    if (!top) return null;
    if (b === 0x2c) return this.with(top.object ? Mode.ObjectKey : Mode.Value, top);
    if (b === 0x7d) return this.close(true);
    if (b === 0x5d) return this.close(false);
    return null;
  }

  /** The first byte of a multi-byte character: how many follow, and the range of the next (RFC 3629). */
  private utf8Lead(b: number): JsonState | null {
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) n = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      n = 2;
      if (b === 0xe0) lo = 0xa0; // no overlong forms
      if (b === 0xed) hi = 0x9f; // no surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f; // nothing past U+10FFFF
    } else return null;
    return new JsonState(Mode.Utf8, this.stack, n, this.key, "", lo, hi);
  }
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

function isHex(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}
