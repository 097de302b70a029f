/**
 * GPT-2 byte-level alphabet: every byte maps to one printable Unicode character, so a byte-level
 * BPE vocabulary is a set of ordinary strings (space -> "Ġ", newline -> "Ċ"). This is the mapping
 * the Hugging Face `ByteLevel` pre-tokenizer and decoder use; ours must match it exactly.
 */

function buildByteToChar(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const out = new Array<string>(256);
  for (const b of printable) out[b] = String.fromCodePoint(b);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    if (out[b] === undefined) out[b] = String.fromCodePoint(256 + next++);
  }
  return out;
}

/** BYTE_TO_CHAR[b] is the vocabulary character of byte b. */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

/** Inverse of BYTE_TO_CHAR. */
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/** UTF-8 bytes of `text` as a byte-level string. */
export function toByteLevel(text: string): string {
  let s = "";
  for (const b of new TextEncoder().encode(text)) s += BYTE_TO_CHAR[b];
  return s;
}

/** Bytes of a byte-level token string; null if it holds a character outside the alphabet. */
export function byteLevelToBytes(token: string): Uint8Array | null {
  const out: number[] = [];
  for (const ch of token) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b === undefined) return null;
    out.push(b);
  }
  return Uint8Array.from(out);
}
