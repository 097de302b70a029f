import { describe, expect, it } from "vitest";
import { greedyParams } from "../../../gpu-backend/engine/greedy.js";
import { JsonConstraint } from "../../../gpu-backend/engine/json-constraint.js";
import { JsonState, MAX_JSON_DEPTH, MAX_JSON_SPACE } from "../../../gpu-backend/engine/json-grammar.js";
import { Rng, Sampler } from "../../../gpu-backend/engine/sampler.js";
import { buildTokenizer } from "../../../gpu-backend/tokenizer/build.js";
import { type LoadedTokenizer, tokenizerFromJson } from "../../../gpu-backend/tokenizer/load.js";
import { collect, tinyEngine } from "./fixtures.js";

const utf8 = new TextEncoder();
const accepts = (text: string | Uint8Array) => {
  const s = JsonState.start().feed(typeof text === "string" ? utf8.encode(text) : text);
  return s === null ? "rejected" : s.done ? "complete" : "prefix";
};

describe("JSON automaton", () => {
  it("accepts JSON objects byte by byte, and says when one is complete", () => {
    const docs = [
      "{}",
      ' \n{ "a" : 1 }',
      '{"a":[1,-2.5e+3,0,0.25,1E9,true,false,null,"x"],"b":{"c":{}},"d":[]}',
      '{"esc":"q\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9\\uD83D"}',
      '{"utf8":"é € 😀 日本"}',
      '{"n":-0,"m":[[[]]]}',
    ];
    for (const d of docs) {
      expect(JSON.parse(d)).toBeTypeOf("object");
      expect(accepts(d), d).toBe("complete");
      // Every proper prefix is a prefix.
      for (let i = 0; i < d.length; i++) expect(accepts(d.slice(0, i)), d.slice(0, i)).not.toBe("rejected");
    }
  });

  it("rejects what is not (the start of) a JSON object", () => {
    const bad = [
      "[1]",
      '"s"',
      "1",
      "{a:1}",
      "{'a':1}",
      '{"a":01}',
      '{"a":1.}',
      '{"a":1e}',
      '{"a":+1}',
      '{"a":.5}',
      '{"a":tru}x',
      '{"a":1,}',
      '{"a" 1}',
      '{"a":1}}',
      '{"a":[1}',
      '{"a":"x\ny"}',
      '{"a":"\\x"}',
      '{"a":"\\u12g4"}',
      "{} ",
      "{}{}",
      '{"a":NaN}',
      '{"a":- 1}',
      '{"a":1. }',
      '{"a":1e }',
      '{"a":1e+ }',
    ];
    for (const d of bad) expect(accepts(d), d).toBe("rejected");
    // Malformed UTF-8 inside a string: a lone continuation byte, an overlong form, a surrogate.
    for (const b of [[0x80], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]]) {
      expect(accepts(Uint8Array.from([...utf8.encode('{"a":"'), ...b]))).toBe("rejected");
    }
    // A character cut short is a prefix, not a rejection.
    expect(accepts(Uint8Array.from([...utf8.encode('{"a":"'), 0xf0, 0x9f]))).toBe("prefix");
  });

  it("agrees with JSON.parse on random short texts (complete = parses as an object)", () => {
    const alphabet = [
      "{",
      "}",
      "[",
      "]",
      '"',
      ":",
      ",",
      " ",
      "\n",
      "0",
      "1",
      "-",
      ".",
      "e",
      "+",
      "t",
      "r",
      "u",
      "l",
      "n",
      "\\",
      "é",
      "\t",
    ];
    const rng = new Rng(123);
    let complete = 0;
    for (let i = 0; i < 30000; i++) {
      let t = "{";
      const len = 1 + Math.floor(rng.next() * 12);
      for (let j = 0; j < len; j++) t += alphabet[Math.floor(rng.next() * alphabet.length)];
      let parses = false;
      try {
        const v = JSON.parse(t);
        parses = typeof v === "object" && v !== null && !Array.isArray(v) && t === t.trimEnd();
      } catch {}
      expect(accepts(t) === "complete", t).toBe(parses);
      if (parses) complete++;
    }
    expect(complete).toBeGreaterThan(30);
  });

  it("bounds nesting and runs of whitespace", () => {
    expect(accepts(`{"a":${"[".repeat(MAX_JSON_DEPTH - 1)}`)).toBe("prefix");
    expect(accepts(`{"a":${"[".repeat(MAX_JSON_DEPTH)}`)).toBe("rejected");
    expect(accepts(`{${" ".repeat(MAX_JSON_SPACE)}"a":1}`)).toBe("complete");
    expect(accepts(`{${" ".repeat(MAX_JSON_SPACE + 1)}`)).toBe("rejected");
    expect(accepts(`{"a":"${" ".repeat(1000)}"}`)).toBe("complete"); // inside strings: text
  });
});

describe("JSON mask over a byte-level vocabulary", () => {
  const b = buildTokenizer({ family: "llama4", vocabSize: 512 });
  const tok = tokenizerFromJson(b.tokenizerJson, b.tokenizerConfig);
  const V = tok.vocabSize;
  const eos = new Set(tok.eosTokenIds);

  it("random sampling under the mask always yields a JSON object once it ends", () => {
    let completed = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const rng = new Rng(seed);
      const constraint = new JsonConstraint(tok, V);
      // Biased toward closing brackets and quotes so that objects do complete.
      const sampler = new Sampler({ ...greedyParams(1), temperature: 1, seed }, seed, constraint);
      const ids: number[] = [];
      for (let step = 0; step < 400; step++) {
        const logits = Float32Array.from({ length: V }, () => (rng.next() - 0.5) * 6);
        for (const c of ["}", "]", '"', ","]) logits[tok.tokenToId(c)!] += 3;
        const masked = constraint.mask(logits);
        const { tokenId } = sampler.sample(logits);
        expect(masked[tokenId]).toBeGreaterThan(Number.NEGATIVE_INFINITY);
        if (eos.has(tokenId)) break;
        sampler.accept(tokenId);
        ids.push(tokenId);
      }
      const text = new TextDecoder().decode(Uint8Array.from(ids.flatMap((id) => [...tok.tokenBytes!(id)])));
      expect(accepts(text)).not.toBe("rejected");
      if (constraint.done) {
        completed++;
        expect(JSON.parse(text)).toBeTypeOf("object");
        expect(Array.isArray(JSON.parse(text))).toBe(false);
      }
    }
    expect(completed).toBeGreaterThan(20);
  });

  it("allows only end-of-sequence once the object is closed, and never before", () => {
    const c = new JsonConstraint(tok, V);
    const flat = new Float32Array(V);
    expect(tok.eosTokenIds.every((id) => c.mask(flat)[id] === Number.NEGATIVE_INFINITY)).toBe(true);
    for (const ch of ["{", "}"]) c.accept(tok.tokenToId(ch)!);
    expect(c.done).toBe(true);
    const m = c.mask(flat);
    const allowed = [...m.keys()].filter((i) => m[i] > Number.NEGATIVE_INFINITY);
    expect(allowed.sort()).toEqual([...tok.eosTokenIds].sort());
  });
});

describe("JSON mode on the tiny model", () => {
  const engineOf = tinyEngine("llama4");

  it("generates a JSON object and stops right after it (EOS), or a JSON prefix when cut by max_tokens", async () => {
    const tok = engineOf().tokenizer as LoadedTokenizer;
    const bias = new Map(["}", "]", '"'].map((c) => [tok.tokenToId(c)!, 4]));
    let parsed = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const params = {
        ...greedyParams(96, { ignoreEos: false }),
        temperature: 1,
        seed,
        jsonObject: true,
        logitBias: bias,
      };
      const out = await collect(engineOf().generate([5, 17, 200, 33], params));
      expect(accepts(out.text)).not.toBe("rejected");
      if (accepts(out.text) === "complete") {
        parsed++;
        expect(JSON.parse(out.text)).toBeTypeOf("object");
        // The step after the closing bracket could only be end-of-sequence, and it ended there.
        expect(tok.eosTokenIds).toContain(out.ids.at(-1));
        expect(out.completionTokens).toBeLessThan(96);
      } else {
        expect(out.completionTokens).toBe(96);
      }
    }
    expect(parsed).toBeGreaterThan(0);
  });
});
