/**
 * The tokenizer training corpus: the embedded prose and code, plus a deterministic, generated
 * "code-like" section. Real vocabularies hold every 1-3 digit number (GPT-4o/Llama split digits in
 * runs of up to three) and many words in their code spellings (".name", "_name", "(Name", "NAME");
 * generating those from the prose's own words gives the trainer enough distinct pieces to learn
 * 8192-entry vocabularies from a few tens of KB of hand-written text. Fixed input, so the learned
 * merges (and every generated model's token ids) never change unless these files do.
 */
import { CODE } from "./corpus-code.js";
import { PROSE } from "./corpus-prose.js";

/** Every number 0..999 in words-per-line form, like a table of values. */
function numberLines(): string[] {
  const lines: string[] = [];
  for (let start = 0; start < 1000; start += 20) {
    const row: string[] = [];
    for (let n = start; n < start + 20; n++) row.push(String(n));
    lines.push(row.join(" "));
  }
  return lines;
}

/** Unique lowercase words of the prose, in first-seen order. */
function proseWords(): string[] {
  const seen = new Set<string>();
  for (const text of PROSE) {
    for (const m of text.toLowerCase().matchAll(/[a-z]{3,}/g)) seen.add(m[0]);
  }
  return [...seen];
}

const cap = (w: string): string => w[0].toUpperCase() + w.slice(1);

/**
 * Code spellings of each prose word, one per line (so no scaffolding text repeats and skews the
 * merge counts: each generated piece occurs about once, below every piece of the real text).
 */
function identifierLines(): string[] {
  const lines: string[] = [];
  for (const w of proseWords()) {
    lines.push(`.${w}`, `_${w}`, ` ${cap(w)}`, w.toUpperCase(), `(${w}`);
  }
  return lines;
}

export const CORPUS: readonly string[] = [
  ...PROSE,
  ...CODE,
  numberLines().join("\n"),
  identifierLines().join("\n"),
];

export function corpusBytes(): number {
  let n = 0;
  for (const t of CORPUS) n += new TextEncoder().encode(t).length;
  return n;
}
