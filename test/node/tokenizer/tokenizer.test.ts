import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { afterAll, describe, expect, it } from "vitest";
import type { Family } from "../../../gpu-backend/model/types.js";
import { buildTokenizer } from "../../../gpu-backend/tokenizer/build.js";
import { BYTE_TO_CHAR, byteLevelToBytes, toByteLevel } from "../../../gpu-backend/tokenizer/bytes.js";
import { TOKENIZER_SPECS } from "../../../gpu-backend/tokenizer/families.js";
import {
  type LoadedTokenizer,
  loadTokenizer,
  tokenizerFromJson,
} from "../../../gpu-backend/tokenizer/load.js";
import { createStreamDecoder } from "../../../gpu-backend/tokenizer/stream-decoder.js";
import { makeModel } from "../../../gpu-backend/tools/make-model.js";
import { mulberry32, randomText } from "./random-text.js";

const FAMILIES: Family[] = ["llama4", "mixtral", "qwen3moe"];
const cache = new Map<string, LoadedTokenizer>();

function tok(family: Family, vocabSize = 512): LoadedTokenizer {
  const key = `${family}/${vocabSize}`;
  let t = cache.get(key);
  if (!t) {
    const b = buildTokenizer({ family, vocabSize });
    t = tokenizerFromJson(b.tokenizerJson, b.tokenizerConfig);
    cache.set(key, t);
  }
  return t;
}

const tmp: string[] = [];
afterAll(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

describe("byte-level alphabet", () => {
  it("maps all 256 bytes to distinct printable characters and back", () => {
    expect(new Set(BYTE_TO_CHAR).size).toBe(256);
    expect(BYTE_TO_CHAR[32]).toBe("Ġ");
    expect(BYTE_TO_CHAR[10]).toBe("Ċ");
    const s = "héllo 😀\n";
    expect(new TextDecoder().decode(byteLevelToBytes(toByteLevel(s))!)).toBe(s);
  });
});

describe("buildTokenizer", () => {
  it.each(FAMILIES)("%s: vocabulary is exactly the requested size and merges are consistent", (family) => {
    for (const vocabSize of [512, 4096]) {
      const b = buildTokenizer({ family, vocabSize });
      const model = b.tokenizerJson.model as { vocab: Record<string, number>; merges: string[] };
      const added = b.tokenizerJson.added_tokens as { id: number; content: string }[];
      const ids = new Set([...Object.values(model.vocab), ...added.map((a) => a.id)]);
      expect(ids.size).toBe(vocabSize);
      expect(Math.max(...ids)).toBe(vocabSize - 1);
      expect(b.reservedFill).toBe(0);
      const broken = model.merges.filter((m) => {
        const [a, c] = m.split(" ");
        return (
          model.vocab[a] === undefined || model.vocab[c] === undefined || model.vocab[a + c] === undefined
        );
      });
      expect(broken).toEqual([]);
      expect(tok(family, vocabSize).vocabSize).toBe(vocabSize);
    }
  });

  it("learns 8192-entry vocabularies from the embedded corpus without filler tokens", () => {
    const b = buildTokenizer({ family: "llama4", vocabSize: 8192 });
    expect(b.reservedFill).toBe(0);
    const t = tokenizerFromJson(b.tokenizerJson, b.tokenizerConfig);
    // Common English words are single tokens in a trained vocabulary.
    for (const w of [" the", " and", " river", " function"]) expect(t.encode(w, false)).toHaveLength(1);
  });

  it("is deterministic", () => {
    const a = JSON.stringify(buildTokenizer({ family: "qwen3moe", vocabSize: 1000 }).tokenizerJson);
    const b = JSON.stringify(buildTokenizer({ family: "qwen3moe", vocabSize: 1000 }).tokenizerJson);
    expect(a).toBe(b);
  });

  it("rejects a vocabulary too small for bytes and specials", () => {
    expect(() => buildTokenizer({ family: "llama4", vocabSize: 260 })).toThrow(/vocab size/);
  });

  it("places family special tokens like the official checkpoints", () => {
    const m = buildTokenizer({ family: "mixtral", vocabSize: 512 });
    expect([m.specialIds["<unk>"], m.specialIds["<s>"], m.specialIds["</s>"]]).toEqual([0, 1, 2]);
    const l = buildTokenizer({ family: "llama4", vocabSize: 512 });
    const n = TOKENIZER_SPECS.llama4.trailingSpecials.length;
    expect(l.specialIds["<|begin_of_text|>"]).toBe(512 - n);
    expect(l.specialIds["<|eot|>"]).toBe(l.specialIds["<|begin_of_text|>"] + 8);
    expect(l.eosTokenIds).toEqual([
      l.specialIds["<|end_of_text|>"],
      l.specialIds["<|eom|>"],
      l.specialIds["<|eot|>"],
    ]);
    const q = buildTokenizer({ family: "qwen3moe", vocabSize: 512 });
    expect(q.specialIds["<|im_end|>"]).toBe(q.specialIds["<|endoftext|>"] + 2);
    expect(q.bosTokenId).toBeNull();
  });
});

describe("encode / decode", () => {
  it.each(FAMILIES)("%s: decode(encode(s)) == s for arbitrary Unicode strings", (family) => {
    const rand = mulberry32(1234);
    for (const vocabSize of [512, 4096]) {
      const t = tok(family, vocabSize);
      for (let i = 0; i < 300; i++) {
        const s = randomText(rand);
        const ids = t.encode(s, false);
        expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < vocabSize)).toBe(true);
        expect(t.decode(ids)).toBe(s);
      }
    }
  });

  it.each(FAMILIES)("%s: every special token encodes to its single id, also inside text", (family) => {
    const t = tok(family);
    const spec = TOKENIZER_SPECS[family];
    for (const s of [...spec.leadingSpecials, ...spec.trailingSpecials]) {
      const id = t.tokenToId(s.content);
      expect(id).toBeTypeOf("number");
      expect(t.encode(s.content, false)).toEqual([id]);
      const ids = t.encode(`hi${s.content}there`, false);
      expect(ids).toContain(id);
      expect(t.decode(ids)).toBe(`hi${s.content}there`);
      if (s.special) expect(t.specialTokenIds.has(id!)).toBe(true);
      else expect(t.specialTokenIds.has(id!)).toBe(false);
    }
  });

  it("adds BOS only where the family does", () => {
    const l = tok("llama4");
    expect(l.encode("hi")[0]).toBe(l.tokenToId("<|begin_of_text|>"));
    expect(l.encode("hi", false)[0]).not.toBe(l.tokenToId("<|begin_of_text|>"));
    expect(tok("mixtral").encode("hi")[0]).toBe(1);
    const q = tok("qwen3moe");
    expect(q.encode("hi")).toEqual(q.encode("hi", false));
  });

  it("skips control tokens on request", () => {
    const t = tok("llama4");
    const ids = t.encode("<|header_start|>user<|header_end|>\n\nhey<|eot|>", false);
    expect(t.decode(ids, true)).toBe("user\n\nhey");
  });
});

const CONVO = [
  { role: "system" as const, content: "  You are terse.  " },
  { role: "user" as const, content: "Hi!" },
  { role: "assistant" as const, content: "Hello." },
  { role: "user" as const, content: "2+2?" },
];

describe("chat templates", () => {
  it("llama4 renders the Llama 4 format", () => {
    expect(tok("llama4").renderChat(CONVO)).toBe(
      "<|begin_of_text|><|header_start|>system<|header_end|>\n\nYou are terse.<|eot|>" +
        "<|header_start|>user<|header_end|>\n\nHi!<|eot|>" +
        "<|header_start|>assistant<|header_end|>\n\nHello.<|eot|>" +
        "<|header_start|>user<|header_end|>\n\n2+2?<|eot|>" +
        "<|header_start|>assistant<|header_end|>\n\n",
    );
    expect(tok("llama4").renderChat([{ role: "user", content: "a" }], { addGenerationPrompt: false })).toBe(
      "<|begin_of_text|><|header_start|>user<|header_end|>\n\na<|eot|>",
    );
  });

  it("llama4 passes tool results as ipython", () => {
    const out = tok("llama4").renderChat([
      { role: "user", content: "weather?" },
      { role: "tool", content: "sunny" },
    ]);
    expect(out).toContain('<|header_start|>ipython<|header_end|>\n\n"sunny"<|eot|>');
  });

  it("mixtral renders [INST] blocks with the system message folded into the first", () => {
    expect(tok("mixtral").renderChat(CONVO)).toBe(
      "<s> [INST]   You are terse.  \n\nHi! [/INST] Hello.</s> [INST] 2+2? [/INST]",
    );
    expect(() =>
      tok("mixtral").renderChat([
        { role: "user", content: "a" },
        { role: "user", content: "b" },
      ]),
    ).toThrow(/alternate/);
  });

  it("qwen3 renders ChatML, and the no-thinking switch", () => {
    expect(tok("qwen3moe").renderChat(CONVO)).toBe(
      "<|im_start|>system\n  You are terse.  <|im_end|>\n" +
        "<|im_start|>user\nHi!<|im_end|>\n" +
        "<|im_start|>assistant\nHello.<|im_end|>\n" +
        "<|im_start|>user\n2+2?<|im_end|>\n" +
        "<|im_start|>assistant\n",
    );
    expect(
      tok("qwen3moe").renderChat([{ role: "user", content: "x" }], { extra: { enable_thinking: false } }),
    ).toBe("<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
    // A final assistant turn after the last query keeps its reasoning in a think block.
    expect(
      tok("qwen3moe").renderChat(
        [
          { role: "user", content: "q" },
          { role: "assistant", content: "<think>\nhmm\n</think>\n\nA" },
        ],
        { addGenerationPrompt: false },
      ),
    ).toBe("<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\nhmm\n</think>\n\nA<|im_end|>\n");
  });

  it("maps the developer role to system", () => {
    const a = tok("qwen3moe").renderChat([
      { role: "developer", content: "rules" },
      { role: "user", content: "x" },
    ]);
    expect(a.startsWith("<|im_start|>system\nrules<|im_end|>\n")).toBe(true);
  });

  it.each(FAMILIES)("%s: applyChatTemplate tokenizes the rendered text without a second BOS", (family) => {
    const t = tok(family);
    const ids = t.applyChatTemplate(CONVO);
    expect(ids).toEqual(t.encode(t.renderChat(CONVO), false));
    expect(t.decode(ids)).toBe(t.renderChat(CONVO));
    if (t.bosTokenId !== null) {
      expect(ids[0]).toBe(t.bosTokenId);
      expect(ids[1]).not.toBe(t.bosTokenId);
    }
  });

  it("templates parse with @huggingface/jinja as stored in tokenizer_config.json", () => {
    for (const f of FAMILIES) expect(() => new Template(TOKENIZER_SPECS[f].chatTemplate)).not.toThrow();
  });
});

describe("loadTokenizer", () => {
  it("loads a generated model folder; a chat_template.jinja sidecar takes priority", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tok-"));
    tmp.push(dir);
    makeModel({ family: "llama4", preset: "tiny", out: dir });
    const t = await loadTokenizer(dir);
    expect(t.vocabSize).toBe(512);
    const eot = t.tokenToId("<|eot|>")!;
    expect(t.eosTokenIds).toContain(eot);
    expect(t.eosTokenIds).toHaveLength(3);
    expect(t.renderChat([{ role: "user", content: "a" }])).toContain("<|header_start|>user");
    writeFileSync(
      join(dir, "chat_template.jinja"),
      "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}",
    );
    const t2 = await loadTokenizer(dir);
    expect(t2.renderChat([{ role: "user", content: "a" }])).toBe("[user]a");
  });

  it("fails clearly without tokenizer.json", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tok-"));
    tmp.push(dir);
    await expect(loadTokenizer(dir)).rejects.toThrow(/tokenizer\.json not found/);
  });
});

describe("stream decoder", () => {
  it.each(FAMILIES)("%s: deltas never hold U+FFFD and add up to the full decode", (family) => {
    const t = tok(family);
    const rand = mulberry32(99);
    let splitChars = 0;
    for (let i = 0; i < 200; i++) {
      const s = randomText(rand);
      const ids = t.encode(s, false);
      const d = createStreamDecoder(t, { skipSpecialTokens: false });
      let out = "";
      for (const id of ids) {
        if (t.decode([id]).includes("\uFFFD")) splitChars++;
        const delta = d.push(id);
        expect(delta.includes("\uFFFD")).toBe(false);
        out += delta;
      }
      out += d.flush();
      expect(out).toBe(s);
      expect(d.text).toBe(s);
    }
    // The property is only meaningful if tokens really do split characters.
    expect(splitChars).toBeGreaterThan(50);
  });

  it("uses the byte path only where the decoder is ByteLevel", () => {
    expect(tok("llama4").tokenBytes).toBeDefined();
    const b = buildTokenizer({ family: "mixtral", vocabSize: 512 });
    // A SentencePiece-style decoder (real Mixtral's) is not a byte concatenation.
    const metaspace = { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false };
    expect(
      tokenizerFromJson({ ...b.tokenizerJson, decoder: metaspace }, b.tokenizerConfig).tokenBytes,
    ).toBeUndefined();
  });

  it.each(FAMILIES)(
    "%s: the byte path gives what the window method and the full decode give, on any id stream",
    (family) => {
      const t = tok(family);
      // The same tokenizer without tokenBytes: the window method.
      const windowed = { decode: (ids: number[]) => t.decode(ids), specialTokenIds: t.specialTokenIds };
      const special = [...t.specialTokenIds];
      const rand = mulberry32(7);
      for (let i = 0; i < 300; i++) {
        // Random ids split characters, put continuation bytes where none belong and mix in
        // control tokens: every case the UTF-8 decoding must agree on.
        const ids = Array.from({ length: 1 + Math.floor(rand() * 12) }, () =>
          rand() < 0.1 ? special[Math.floor(rand() * special.length)] : Math.floor(rand() * t.vocabSize),
        );
        for (const skipSpecialTokens of [true, false]) {
          const fast = createStreamDecoder(t, { skipSpecialTokens });
          const slow = createStreamDecoder(windowed, { skipSpecialTokens });
          const a = ids.map((id) => fast.push(id)).join("") + fast.flush();
          const b = ids.map((id) => slow.push(id)).join("") + slow.flush();
          expect(a).toBe(t.decode(ids, skipSpecialTokens));
          expect(a).toBe(b);
          expect(fast.text).toBe(a);
        }
      }
    },
  );

  it("holds an emoji until its last byte arrives", () => {
    const t = tok("llama4");
    const ids = t.encode("a😀", false);
    expect(ids.length).toBeGreaterThan(2);
    const d = createStreamDecoder(t);
    const deltas = ids.map((id) => d.push(id));
    expect(deltas[0]).toBe("a");
    expect(deltas.slice(1, -1).every((x) => x === "")).toBe(true);
    expect(deltas.at(-1)).toBe("😀");
  });

  it("drops control tokens by default and flushes invalid trailing bytes", () => {
    const t = tok("qwen3moe");
    const d = createStreamDecoder(t);
    const end = t.tokenToId("<|im_end|>")!;
    expect(d.push(end)).toBe("");
    const head = t.encode("😀", false).slice(0, 1);
    expect(d.push(head[0])).toBe("");
    expect(d.flush()).toBe("\uFFFD");
  });
});
