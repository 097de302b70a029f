import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEngine } from "../../../gpu-backend/engine/load-engine.js";
import type { ChatMessage } from "../../../gpu-backend/engine/types.js";
import { plainValue, readGgufHeader } from "../../../gpu-backend/formats/gguf.js";
import { preTokenizerRegex } from "../../../gpu-backend/formats/gguf-tokenizer.js";
import type { Family } from "../../../gpu-backend/model/types.js";
import { TOKENIZER_SPECS } from "../../../gpu-backend/tokenizer/families.js";
import { tokenizerFilesFromGguf, tokenizerFromGguf } from "../../../gpu-backend/tokenizer/from-gguf.js";
import { type LoadedTokenizer, loadTokenizer } from "../../../gpu-backend/tokenizer/load.js";
import { exportGguf } from "../../../gpu-backend/tools/export-gguf.js";
import { makeModel } from "../../../gpu-backend/tools/make-model.js";
import { collect, greedy } from "../engine/fixtures.js";
import { mulberry32, randomText } from "./random-text.js";

const FAMILIES: Family[] = ["llama4", "mixtral", "qwen3moe"];
const root = mkdtempSync(join(tmpdir(), "from-gguf-"));
const ggufDir = join(root, "gguf"); // no tokenizer files here: the GGUF must carry its own
const hfDir = (f: Family) => join(root, f);
const ggufPath = (f: Family) => join(ggufDir, `${f}.gguf`);
const hf: Record<string, LoadedTokenizer> = {};
const gg: Record<string, LoadedTokenizer> = {};

beforeAll(async () => {
  mkdirSync(ggufDir);
  for (const family of FAMILIES) {
    // GGUF has no attention_chunk_size (llama.cpp hard-codes 8192, the real Llama 4 value); the
    // tiny preset's chunk of 16 would make the two engines differ for reasons unrelated to tokens.
    const overrides = family === "llama4" ? { attention_chunk_size: 8192 } : {};
    makeModel({ family, preset: "tiny", out: hfDir(family), seed: 5, overrides });
    // bf16 matches the generated checkpoint's dtype, so the weights are bit-identical.
    exportGguf(hfDir(family), ggufPath(family), "bf16");
    hf[family] = await loadTokenizer(hfDir(family));
    gg[family] = await tokenizerFromGguf(ggufPath(family));
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const FIXED = [
  "",
  "Hello, world!",
  "  leading and trailing spaces  \n\n\ttabs\r\nCRLF",
  "I'm sure they'RE fine, we'll see. DON'T",
  "café naïve Ünïcödé Привет мир αβγ 日本語 한국어 مرحبا",
  "emoji 😀👍🏽👨‍👩‍👧 🇫🇷",
  "def f(x: int) -> int:\n    return x ** 2  # 1234567 3.14159\n",
  'const o = { "a": [1, 2, 3] }; // ok?!',
  "<|begin_of_text|><|header_start|>user<|header_end|>\n\nhi<|eot|>",
  "<s>[INST] question [/INST] answer</s>",
  "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\nhm\n</think>\n\n<tool_call>{}</tool_call>",
  "<|endoftext|><unk>",
];

const CONVOS: { msgs: ChatMessage[]; opts?: Parameters<LoadedTokenizer["renderChat"]>[1] }[] = [
  { msgs: [{ role: "user", content: "hi 😀" }] },
  {
    msgs: [
      { role: "system", content: "Be brief." },
      { role: "user", content: "What is 2+2?" },
      { role: "assistant", content: "4" },
      { role: "user", content: "And 3+3?" },
    ],
  },
  { msgs: [{ role: "user", content: "a" }], opts: { addGenerationPrompt: false } },
  {
    msgs: [{ role: "user", content: "weather?" }],
    opts: {
      tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }],
    },
  },
];

describe.each(FAMILIES)("%s GGUF tokenizer", (family) => {
  it("encodes every string to the same ids as tokenizer.json, with and without special tokens", () => {
    const rand = mulberry32(11);
    const texts = [...FIXED, ...Array.from({ length: 150 }, () => randomText(rand, 16))];
    for (const s of texts) {
      for (const add of [true, false]) {
        const ids = hf[family].encode(s, add);
        expect([s, add, gg[family].encode(s, add)]).toEqual([s, add, ids]);
        expect(gg[family].decode(ids)).toBe(hf[family].decode(ids));
        expect(gg[family].decode(ids, true)).toBe(hf[family].decode(ids, true));
      }
    }
  });

  it("has the same vocabulary, special tokens, bos and stop ids", () => {
    const a = hf[family];
    const b = gg[family];
    expect(b.vocabSize).toBe(a.vocabSize);
    expect([...b.specialTokenIds].sort()).toEqual([...a.specialTokenIds].sort());
    expect(b.bosTokenId).toBe(a.bosTokenId);
    expect(b.bosToken).toBe(a.bosToken);
    expect(b.eosToken).toBe(a.eosToken);
    expect([...b.eosTokenIds].sort()).toEqual([...a.eosTokenIds].sort());
    for (let id = 0; id < a.vocabSize; id++) expect(b.idToToken(id)).toBe(a.idToToken(id));
    for (const s of TOKENIZER_SPECS[family].trailingSpecials)
      expect(b.tokenToId(s.content)).toBe(a.tokenToId(s.content));
  });

  it("renders the chat template identically", () => {
    expect(gg[family].chatTemplate).toBe(hf[family].chatTemplate);
    for (const { msgs, opts } of CONVOS) {
      expect(gg[family].renderChat(msgs, opts)).toBe(hf[family].renderChat(msgs, opts));
      expect(gg[family].applyChatTemplate(msgs, opts)).toEqual(hf[family].applyChatTemplate(msgs, opts));
    }
  });

  it("loadEngine(file.gguf) with no tokenizer.json beside it generates what the HF folder does", async () => {
    expect(existsSync(join(ggufDir, "tokenizer.json"))).toBe(false);
    const a = await loadEngine(hfDir(family), { threads: 1 });
    const b = await loadEngine(ggufPath(family), { threads: 1 });
    try {
      const msgs: ChatMessage[] = [{ role: "user", content: "Tell me a story about 3 cats 🐱." }];
      const promptA = a.tokenizer.applyChatTemplate(msgs);
      const promptB = b.tokenizer.applyChatTemplate(msgs);
      expect(promptB).toEqual(promptA);
      const outA = await collect(a.generate(promptA, greedy));
      const outB = await collect(b.generate(promptB, greedy));
      expect(outA.ids).toHaveLength(greedy.maxTokens);
      expect(outB.ids).toEqual(outA.ids);
      expect(outB.text).toBe(outA.text);
    } finally {
      a.close();
      b.close();
    }
  });

  // The tiny vocabularies have no multi-digit tokens, so encoding alone cannot tell Qwen's split
  // from Llama 3's: check the rebuilt pre-tokenizer and merges directly.
  it("rebuilds the original split regex and merges", () => {
    const h = readGgufHeader(ggufPath(family));
    const rebuilt = tokenizerFilesFromGguf((k) => plainValue(h.metadata.get(k)), h.path).tokenizerJson;
    const original = JSON.parse(readFileSync(join(hfDir(family), "tokenizer.json"), "utf8"));
    expect(preTokenizerRegex(rebuilt)).toBe(preTokenizerRegex(original));
    expect((rebuilt.model as { merges: unknown }).merges).toEqual(original.model.merges);
  });
});

describe("unsupported GGUF tokenizers", () => {
  const meta = (over: Record<string, unknown>) => {
    const h = readGgufHeader(ggufPath("qwen3moe"));
    return (k: string) => (k in over ? over[k] : plainValue(h.metadata.get(k)));
  };

  it("rejects SentencePiece ('llama') tokenizers, saying they are out of scope", () => {
    expect(() => tokenizerFilesFromGguf(meta({ "tokenizer.ggml.model": "llama" }), "x.gguf")).toThrow(
      /"llama" is not supported.*SentencePiece.*out of scope/,
    );
  });

  it("rejects an unknown pre-tokenizer name, listing the known ones", () => {
    expect(() => tokenizerFilesFromGguf(meta({ "tokenizer.ggml.pre": "nonesuch" }), "x.gguf")).toThrow(
      /tokenizer.ggml.pre "nonesuch" is not supported \(known: .*llama-bpe.*qwen2.*llama4/,
    );
  });
});
