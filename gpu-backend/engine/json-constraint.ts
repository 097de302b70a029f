/**
 * Grammar masks (JSON mode, structured outputs, forced tool calls): which tokens may come next so
 * that the output stays in the grammar, ending (EOS) only once it is complete. Each step masks the
 * logits to the tokens whose bytes the automaton (json-grammar.ts and the automata built on its
 * interface) accepts from the current state. Trying every token would cost a vocabulary's worth of
 * automaton steps per token (200K for Llama 4), so:
 *   - inside a free string, the tokens that are plain text (printable, no `"` or `\`, whole UTF-8
 *     characters) are allowed as a block and only the others are tried;
 *   - tokens are tried through a byte trie (token-trie.ts): shared prefixes are stepped once and a
 *     refused byte drops every token under it.
 */
import { tokenBytes } from "../tokenizer/token-text.js";
import { type ByteAutomaton, JsonState } from "./json-grammar.js";
import { TokenTrie } from "./token-trie.js";
import type { Tokenizer } from "./types.js";

interface JsonVocab {
  bytes: Uint8Array[];
  /** Plain-text tokens: always allowed inside a free string, and they leave it one. */
  plain: number[];
  /** Every usable token, and the usable ones that are not plain text. */
  all: TokenTrie;
  other: TokenTrie;
  eos: number[];
}

const vocabs = new WeakMap<Tokenizer, Map<number, JsonVocab>>();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function isPlain(b: Uint8Array): boolean {
  for (const x of b) if (x < 0x20 || x === 0x22 || x === 0x5c) return false;
  try {
    strictUtf8.decode(b);
    return true;
  } catch {
    return false;
  }
}

/** Built once per tokenizer and vocabulary size. Control tokens (other than EOS) are never allowed. */
function jsonVocab(tok: Tokenizer, size: number): JsonVocab {
  let bySize = vocabs.get(tok);
  if (!bySize) {
    bySize = new Map();
    vocabs.set(tok, bySize);
  }
  const cached = bySize.get(size);
  if (cached) return cached;
  const special = tok.specialTokenIds ?? new Set<number>();
  const eos = tok.eosTokenIds.filter((id) => id < size);
  const bytes: Uint8Array[] = [];
  const plain: number[] = [];
  const other: number[] = [];
  for (let id = 0; id < size; id++) {
    const usable =
      !special.has(id) && !eos.includes(id) && (tok.tokenBytes || tok.idToToken?.(id) !== undefined);
    const b = usable ? tokenBytes(tok, id) : new Uint8Array(0);
    bytes.push(b);
    if (b.length === 0) continue;
    (isPlain(b) ? plain : other).push(id);
  }
  const v: JsonVocab = {
    bytes,
    plain,
    all: new TokenTrie(bytes, [...plain, ...other]),
    other: new TokenTrie(bytes, other),
    eos,
  };
  bySize.set(size, v);
  return v;
}

export class JsonConstraint {
  private readonly vocab: JsonVocab;

  /** `state`: where the automaton starts (default: one JSON object; see tool-call-grammar.ts). */
  constructor(
    tokenizer: Tokenizer,
    vocabSize: number,
    private state: ByteAutomaton = JsonState.start(),
  ) {
    this.vocab = jsonVocab(tokenizer, vocabSize);
  }

  /** The top-level object is complete. */
  get done(): boolean {
    return this.state.done;
  }

  /** `logits` with every token that cannot come next set to -Infinity (a new array). */
  mask(logits: Float32Array): Float32Array {
    const out = new Float32Array(logits.length).fill(Number.NEGATIVE_INFINITY);
    const v = this.vocab;
    const s = this.state;
    let allowed = 0;
    const allow = (id: number) => {
      out[id] = logits[id];
      allowed++;
    };
    if (s.done) {
      for (const id of v.eos) allow(id);
    } else if (s.inPlainString) {
      for (const id of v.plain) allow(id);
      v.other.walk(s, allow);
    } else {
      v.all.walk(s, allow);
    }
    // A vocabulary without some byte could strand the automaton: end rather than emit an error.
    if (allowed === 0) for (const id of v.eos) allow(id);
    return out;
  }

  /** The chosen token (one `mask` allowed). */
  accept(tokenId: number): void {
    if (this.state.done) return;
    this.state = this.state.feed(this.vocab.bytes[tokenId]) ?? this.state;
  }
}
