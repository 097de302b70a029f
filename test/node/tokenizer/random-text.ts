/** A small seeded generator of arbitrary Unicode text (fast-check style, without the dependency). */

export { mulberry32 } from "../rng.js";

const WORDS = [
  "the",
  "river",
  "Hello",
  "don't",
  "café",
  "naïve",
  "x",
  "JSON",
  "fn",
  "αβγ",
  "Привет",
  "日本語",
  "😀",
  "👍🏽",
];
const PUNCT = [
  " ",
  "  ",
  "\n",
  "\n\n",
  "\t",
  ".",
  ",",
  "!?",
  "()",
  "{}",
  "'s",
  "'LL",
  "->",
  "==",
  "\r\n",
  " ",
];

/** Ranges of scalar values to draw from (no surrogates: they cannot be encoded as UTF-8). */
const RANGES: [number, number][] = [
  [0x20, 0x7e], // ASCII printable
  [0x00, 0x1f], // controls
  [0xa0, 0x24f], // Latin-1 + extended
  [0x300, 0x36f], // combining marks
  [0x370, 0x3ff], // Greek
  [0x400, 0x4ff], // Cyrillic
  [0x600, 0x6ff], // Arabic
  [0x900, 0x97f], // Devanagari
  [0x3040, 0x30ff], // kana
  [0x4e00, 0x9fff], // CJK
  [0xac00, 0xd7a3], // Hangul
  [0xe000, 0xf8ff], // private use
  [0xfff0, 0xfffc], // specials (U+FFFD left out: the stream test looks for it)
  [0x1f300, 0x1faff], // emoji
  [0x10000, 0x10ffff], // any astral
];

export function randomText(rand: () => number, maxParts = 12): string {
  const parts: string[] = [];
  const n = 1 + Math.floor(rand() * maxParts);
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (r < 0.35) parts.push(WORDS[Math.floor(rand() * WORDS.length)]);
    else if (r < 0.6) parts.push(PUNCT[Math.floor(rand() * PUNCT.length)]);
    else if (r < 0.7) parts.push(String(Math.floor(rand() * 100000)));
    else {
      const [lo, hi] = RANGES[Math.floor(rand() * RANGES.length)];
      const len = 1 + Math.floor(rand() * 4);
      for (let j = 0; j < len; j++) parts.push(String.fromCodePoint(lo + Math.floor(rand() * (hi - lo + 1))));
    }
  }
  return parts.join("");
}
