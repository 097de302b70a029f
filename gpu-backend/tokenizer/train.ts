/**
 * A small deterministic byte-level BPE trainer (the classic algorithm of Sennrich et al. and
 * GPT-2, as the Hugging Face `BpeTrainer` runs it): count pre-tokenized words, then repeatedly merge
 * the most frequent adjacent symbol pair. Ties go to the pair with the smaller symbol ids, so the
 * same corpus always yields the same merges.
 *
 * Pair counts are kept incrementally with a lazily-invalidated max-heap, so training thousands of
 * merges over a few tens of KB takes well under a second.
 */
import { BYTE_TO_CHAR, toByteLevel } from "./bytes.js";

export interface TrainOptions {
  /** Raw texts; each is pre-tokenized separately. */
  texts: readonly string[];
  /** Splits raw text into pre-tokens (already in byte-level characters). */
  pretokenize: (text: string) => string[];
  /** How many new tokens (beyond the 256 byte symbols) to learn. */
  newTokens: number;
}

export interface TrainResult {
  /** Learned tokens in creation order (their ids follow the 256 byte symbols). */
  tokens: string[];
  /** Merge rules in priority order, as pairs of token strings. */
  merges: [string, string][];
}

// Symbol ids fit in 24 bits, so a pair packs exactly into one double.
const SHIFT = 2 ** 24;
const pairKey = (a: number, b: number): number => a * SHIFT + b;

/** Max-heap on (count desc, key asc); entries may be stale and are checked when popped. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private better(i: number, j: number): boolean {
    return (
      this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j])
    );
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.better(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  pop(): { count: number; key: number } {
    const top = { count: this.counts[0], key: this.keys[0] };
    const lastC = this.counts.pop()!;
    const lastK = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.keys.length && this.better(l, m)) m = l;
        if (r < this.keys.length && this.better(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

export function trainByteLevelBpe(opts: TrainOptions): TrainResult {
  // 1. Word frequencies (words are byte-level strings).
  const freq = new Map<string, number>();
  for (const text of opts.texts) {
    for (const w of opts.pretokenize(text)) freq.set(w, (freq.get(w) ?? 0) + 1);
  }
  const charId = new Map<string, number>(BYTE_TO_CHAR.map((c, i) => [c, i]));
  const symbols: string[] = [...BYTE_TO_CHAR];
  const idOf = new Map<string, number>(symbols.map((s, i) => [s, i]));

  // Sort words so iteration order (and thus everything after) does not depend on Map insertion.
  const entries = [...freq.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [w, c] of entries) {
    const ids: number[] = [];
    for (const ch of w) {
      const id = charId.get(ch);
      if (id === undefined) throw new Error(`pre-token ${JSON.stringify(w)} is not byte-level`);
      ids.push(id);
    }
    words.push(ids);
    counts.push(c);
  }

  // 2. Initial pair statistics.
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (wi: number, sign: 1 | -1, touched: Set<number>): void => {
    const w = words[wi];
    for (let i = 0; i + 1 < w.length; i++) {
      const k = pairKey(w[i], w[i + 1]);
      pairCount.set(k, (pairCount.get(k) ?? 0) + sign * counts[wi]);
      if (sign > 0) {
        const set = pairWords.get(k);
        if (set) set.add(wi);
        else pairWords.set(k, new Set([wi]));
      }
      touched.add(k);
    }
  };
  const initial = new Set<number>();
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1, initial);
  const heap = new PairHeap();
  for (const k of initial) heap.push(pairCount.get(k)!, k);

  // 3. Merge loop.
  const tokens: string[] = [];
  const merges: [string, string][] = [];
  while (tokens.length < opts.newTokens && heap.size > 0) {
    const { count, key } = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (current !== count) {
      if (current > 0) heap.push(current, key);
      continue;
    }
    if (count <= 0) break;
    const a = Math.floor(key / SHIFT);
    const b = key % SHIFT;
    const merged = symbols[a] + symbols[b];
    merges.push([symbols[a], symbols[b]]);
    // Two different pairs can spell the same string ("ab"+"c", "a"+"bc"): reuse the id.
    let newId = idOf.get(merged);
    if (newId === undefined) {
      newId = symbols.length;
      symbols.push(merged);
      idOf.set(merged, newId);
      tokens.push(merged);
    }
    const touched = new Set<number>();
    const where = [...(pairWords.get(key) ?? [])].sort((x, y) => x - y);
    for (const wi of where) {
      const w = words[wi];
      let has = false;
      for (let i = 0; i + 1 < w.length; i++) {
        if (w[i] === a && w[i + 1] === b) {
          has = true;
          break;
        }
      }
      if (!has) continue;
      addPairs(wi, -1, touched);
      const out: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          out.push(newId);
          i++;
        } else out.push(w[i]);
      }
      words[wi] = out;
      addPairs(wi, 1, touched);
    }
    pairWords.delete(key);
    pairCount.delete(key);
    for (const k of touched) {
      const c = pairCount.get(k) ?? 0;
      if (c > 0) heap.push(c, k);
      else pairCount.delete(k);
    }
  }
  return { tokens, merges };
}

/** Convenience for tests: byte-level form of a raw string. */
export { toByteLevel };
