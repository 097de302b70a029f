/**
 * Grammar masks per generated token (JSON mode, structured outputs, a forced tool call) on a
 * 131,072-token byte-level vocabulary, in typical states: the mask as served (block of plain tokens
 * inside strings + token trie) against feeding every token's bytes from the state (the naive mask).
 * Milliseconds per mask, median of 30.
 */
import { JsonConstraint } from "../gpu-backend/engine/json-constraint.js";
import { type ByteAutomaton, JsonState } from "../gpu-backend/engine/json-grammar.js";
import { SchemaState } from "../gpu-backend/engine/json-schema-grammar.js";
import { forcedCallGrammar } from "../gpu-backend/engine/tool-call-grammar.js";
import { buildTokenizer } from "../gpu-backend/tokenizer/build.js";
import { tokenizerFromJson } from "../gpu-backend/tokenizer/load.js";
import { tokenBytes } from "../gpu-backend/tokenizer/token-text.js";
import { compileJsonSchema } from "../src/openai/json-schema.js";

const VOCAB = 131_072;
const REPS = 30;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run() {
  const built = buildTokenizer({ family: "llama4", vocabSize: VOCAB });
  const tok = tokenizerFromJson(built.tokenizerJson, built.tokenizerConfig);
  const utf8 = new TextEncoder();
  const special = tok.specialTokenIds;
  const usable: Uint8Array[] = [];
  for (let id = 0; id < tok.vocabSize; id++)
    if (!special.has(id) && !tok.eosTokenIds.includes(id)) usable.push(tokenBytes(tok, id));

  const weather = compileJsonSchema({
    type: "object",
    properties: {
      city: { type: "string" },
      days: { type: "integer", minimum: 0, maximum: 14 },
      unit: { enum: ["C", "F"] },
      temps: { type: "array", items: { type: "number" } },
      extra: {},
    },
    required: ["city", "days", "unit"],
    additionalProperties: false,
  });
  const grammars: [string, () => ByteAutomaton, string[]][] = [
    ["json_object", () => JsonState.start(), ["", '{"', '{"a": ', '{"a": 1', '{"a": "x']],
    [
      "json_schema",
      () => SchemaState.start(weather),
      ["", '{"', '{"city": ', '{"city": "Par', '{"days": 1', '{"extra": '],
    ],
    [
      "forced call",
      () => forcedCallGrammar("hermes", [{ name: "get_weather", parameters: weather }]),
      [
        '{"name": "',
        '{"name": "get_weather", "arguments": {"',
        '{"name": "get_weather", "arguments": {"days": ',
      ],
    ],
  ];
  const rows: Record<string, unknown>[] = [];
  const logits = new Float32Array(tok.vocabSize);
  new JsonConstraint(tok, tok.vocabSize).mask(logits); // vocabulary tables, once per tokenizer
  for (const [grammar, start, prefixes] of grammars) {
    for (const prefix of prefixes) {
      const state = start().feed(utf8.encode(prefix));
      if (!state) throw new Error(`${grammar}: ${JSON.stringify(prefix)} is not a prefix`);
      const c = new JsonConstraint(tok, tok.vocabSize, state);
      const served: number[] = [];
      const naive: number[] = [];
      let allowed = 0;
      for (let r = 0; r < REPS; r++) {
        let t = performance.now();
        const m = c.mask(logits);
        served.push(performance.now() - t);
        t = performance.now();
        let n = 0;
        for (const b of usable) if (state.feed(b)) n++;
        naive.push(performance.now() - t);
        if (r === 0) {
          for (const x of m) if (x > Number.NEGATIVE_INFINITY) allowed++;
          if (n !== allowed)
            throw new Error(`${grammar} ${prefix}: served mask allows ${allowed}, naive ${n}`);
        }
      }
      const s = median(served);
      const nv = median(naive);
      rows.push({
        grammar,
        state: prefix === "" ? "(start)" : prefix,
        allowed,
        "served ms": Number(s.toFixed(3)),
        "naive ms": Number(nv.toFixed(3)),
        speedup: Number((nv / s).toFixed(1)),
      });
    }
  }
  const served = rows.map((r) => r["served ms"] as number);
  return {
    name: "grammar",
    rows,
    summary: {
      vocab: tok.vocabSize,
      served_ms_max: Math.max(...served),
      served_ms_median: median(served),
      speedup_min: Math.min(...rows.map((r) => r.speedup as number)),
    },
    notes: [
      "served = JsonConstraint.mask (a new logits array, plain-token block inside free strings, token trie otherwise); naive = every usable token's bytes fed from the state. The two must allow the same tokens (checked).",
      "The vocabulary is the generated llama4-family byte-level BPE at 131,072 ids (buildTokenizer).",
    ],
  };
}
