/**
 * How a single token is shown in logprobs. Byte-level and byte-fallback vocabularies split
 * multi-byte characters (emoji, CJK) across tokens, so one token can be part of a UTF-8 sequence:
 * its `bytes` must be those raw bytes (OpenAI: "useful when characters are represented by multiple
 * tokens and their byte representations must be combined"), not the bytes of U+FFFD that decoding
 * it alone gives. Its `token` string is its text where that is valid UTF-8, with each byte of an
 * incomplete or invalid sequence written as `\xNN` (what OpenAI-compatible APIs show).
 */

export interface TokenSource {
  decode(ids: number[]): string;
  /** Raw bytes of a token, where the tokenizer knows them (byte-level BPE). */
  tokenBytes?(id: number): Uint8Array;
  /** The vocabulary piece of an id (finds SentencePiece byte-fallback pieces such as <0xE2>). */
  idToToken?(id: number): string | undefined;
}

const utf8 = new TextEncoder();
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/** The bytes token `id` contributes to the text. */
export function tokenBytes(tok: TokenSource, id: number): Uint8Array {
  if (tok.tokenBytes) return tok.tokenBytes(id);
  const piece = BYTE_PIECE.exec(tok.idToToken?.(id) ?? "");
  if (piece) return Uint8Array.of(Number.parseInt(piece[1], 16));
  return utf8.encode(tok.decode([id]));
}

/** Length of the well-formed UTF-8 sequence starting at bytes[i], or 0 if there is none. */
function sequenceLength(bytes: Uint8Array, i: number): number {
  const b = bytes[i];
  let n: number;
  let min: number;
  if (b < 0x80) return 1;
  if (b >= 0xc2 && b <= 0xdf) [n, min] = [2, 0x80];
  else if (b >= 0xe0 && b <= 0xef) [n, min] = [3, 0x800];
  else if (b >= 0xf0 && b <= 0xf4) [n, min] = [4, 0x10000];
  else return 0;
  if (i + n > bytes.length) return 0;
  let cp = b & (0xff >> (n + 1));
  for (let k = 1; k < n; k++) {
    const c = bytes[i + k];
    if ((c & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (c & 0x3f);
  }
  // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
  if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return 0;
  return n;
}

/** `bytes` as text: valid UTF-8 decoded, any other byte as `\xNN`. */
export function tokenText(bytes: Uint8Array): string {
  let out = "";
  let run = 0; // start of the current run of valid sequences
  const decoder = new TextDecoder();
  for (let i = 0; i < bytes.length; ) {
    const n = sequenceLength(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    out += decoder.decode(bytes.subarray(run, i));
    out += `\\x${bytes[i].toString(16).padStart(2, "0")}`;
    run = ++i;
  }
  return out + decoder.decode(bytes.subarray(run));
}
