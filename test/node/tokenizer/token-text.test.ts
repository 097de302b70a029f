import { describe, expect, it } from "vitest";
import { buildTokenizer } from "../../../gpu-backend/tokenizer/build.js";
import { BYTE_TO_CHAR } from "../../../gpu-backend/tokenizer/bytes.js";
import { tokenizerFromJson } from "../../../gpu-backend/tokenizer/load.js";
import { type TokenSource, tokenBytes, tokenText } from "../../../gpu-backend/tokenizer/token-text.js";

const utf8 = new TextEncoder();
const b = buildTokenizer({ family: "llama4", vocabSize: 512 });
const byteLevel = tokenizerFromJson(b.tokenizerJson, b.tokenizerConfig);

describe("tokenText", () => {
  it("is the text of valid UTF-8", () => {
    for (const s of ["", "hello", " world", "é", "€", "😀", "日本語", "a\u0000b"])
      expect(tokenText(utf8.encode(s))).toBe(s);
  });

  it("writes each byte of an incomplete or invalid sequence as \\xNN and keeps the valid parts", () => {
    const emoji = utf8.encode("😀"); // f0 9f 98 80
    expect(tokenText(emoji.subarray(0, 2))).toBe("\\xf0\\x9f");
    expect(tokenText(emoji.subarray(2))).toBe("\\x98\\x80");
    expect(tokenText(Uint8Array.of(0x61, 0xe2, 0x62))).toBe("a\\xe2b");
    expect(tokenText(Uint8Array.of(0xe2, 0x82, 0xac, 0xe2))).toBe("€\\xe2");
    // Overlong, surrogate and beyond-U+10FFFF forms are not UTF-8 either.
    expect(tokenText(Uint8Array.of(0xc0, 0x80))).toBe("\\xc0\\x80");
    expect(tokenText(Uint8Array.of(0xed, 0xa0, 0x80))).toBe("\\xed\\xa0\\x80");
    expect(tokenText(Uint8Array.of(0xf4, 0x90, 0x80, 0x80))).toBe("\\xf4\\x90\\x80\\x80");
  });
});

describe("tokenBytes", () => {
  it("gives a byte-level token's raw bytes, also where they are part of a character", () => {
    for (let byte = 0; byte < 256; byte++) {
      const id = byteLevel.tokenToId(BYTE_TO_CHAR[byte])!;
      expect(Array.from(tokenBytes(byteLevel, id))).toEqual([byte]);
      if (byte >= 0x80) expect(tokenText(tokenBytes(byteLevel, id))).toBe(`\\x${byte.toString(16)}`);
    }
  });

  it("concatenates over a token stream to the text's own bytes", () => {
    const text = "Emoji 😀 and 日本語, € 100 — naïve";
    const ids = byteLevel.encode(text, false);
    const bytes = ids.flatMap((id) => Array.from(tokenBytes(byteLevel, id)));
    expect(bytes).toEqual(Array.from(utf8.encode(text)));
  });

  it("reads SentencePiece byte-fallback pieces as their byte, other tokens as their decoded text", () => {
    const pieces = ["<0xE2>", "▁hello", "<0x0A>"];
    const sp: TokenSource = {
      idToToken: (id) => pieces[id],
      decode: (ids) => ids.map((id) => pieces[id].replace("▁", "")).join(""),
    };
    expect(Array.from(tokenBytes(sp, 0))).toEqual([0xe2]);
    expect(tokenText(tokenBytes(sp, 0))).toBe("\\xe2");
    expect(Array.from(tokenBytes(sp, 1))).toEqual(Array.from(utf8.encode("hello")));
    expect(tokenText(tokenBytes(sp, 2))).toBe("\n");
  });
});
