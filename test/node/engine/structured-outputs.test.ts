/**
 * Structured outputs (response_format json_schema): the schema subset we compile (and what we
 * refuse), the byte automaton against hand-written texts and against random walks checked with an
 * independent validator (zod's fromJSONSchema), and generation on the tiny model.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { SchemaState } from "../../../gpu-backend/engine/json-schema-grammar.js";
import { Rng } from "../../../gpu-backend/engine/sampler.js";
import { prepareChat } from "../../../gpu-backend/server/chat.js";
import { ApiError } from "../../../src/openai/errors.js";
import { compileJsonSchema, SchemaError } from "../../../src/openai/json-schema.js";
import { parseChatCompletionRequest } from "../../../src/openai/schema.js";
import { collect, tinyEngine } from "./fixtures.js";

const utf8 = new TextEncoder();

const WEATHER = {
  type: "object",
  properties: {
    city: { type: "string" },
    days: { type: "integer", minimum: 0, maximum: 14 },
    unit: { enum: ["C", "F"] },
    tags: { type: "array", items: { type: "string" }, minItems: 1, maxItems: 2 },
    note: { anyOf: [{ type: "string" }, { type: "null" }] },
    temps: { type: "array", items: { type: "number" } },
  },
  required: ["city", "days", "unit"],
  additionalProperties: false,
};

/** A tree: recursion through $ref, and an open object whose extra values must be booleans. */
const TREE = {
  type: "object",
  properties: {
    name: { type: "string", title: "annotations are fine" },
    kids: { type: "array", items: { $ref: "#/$defs/node" }, maxItems: 2 },
  },
  required: ["name"],
  additionalProperties: { type: "boolean" },
  $defs: {
    node: {
      type: "object",
      properties: { name: { type: "string" }, kids: { type: "array", items: { $ref: "#/$defs/node" } } },
      required: ["name", "kids"],
      additionalProperties: false,
    },
  },
};

/** A schema that leaves values open: `any` values and unlisted keys. */
const OPEN = { type: "object", properties: { x: {}, n: { type: ["integer", "null"] } }, required: ["x"] };

const status = (schema: object, text: string) => {
  const s = SchemaState.start(compileJsonSchema(schema)).feed(utf8.encode(text));
  return s === null ? "rejected" : s.done ? "complete" : "prefix";
};

describe("schema compiler", () => {
  it("refuses what it cannot enforce, naming where", () => {
    const refused: [object, RegExp][] = [
      [
        { type: "object", properties: { s: { type: "string", pattern: "^a" } } },
        /properties\.s: 'pattern' is not supported/,
      ],
      [
        { type: "object", properties: { n: { type: "number", multipleOf: 2 } } },
        /'multipleOf' is not supported/,
      ],
      [{ type: "object", allOf: [] }, /'allOf' is not supported/],
      [{ type: "array" }, /root must be an object/],
      [{ type: "object", properties: { r: { $ref: "#/$defs/missing" } } }, /does not exist/],
      [{ type: "object", properties: { r: { $ref: "http://x/y" } } }, /only '\$ref' to/],
      [{ type: "object", required: ["a"], additionalProperties: false }, /required property 'a'/],
      [{ type: "object", properties: { t: { type: "date" } } }, /unknown type 'date'/],
      [
        { type: "object", properties: { a: { type: "array", minItems: 3, maxItems: 1 } } },
        /'minItems' is above/,
      ],
    ];
    for (const [schema, message] of refused) expect(() => compileJsonSchema(schema)).toThrow(message);
    expect(() => compileJsonSchema({ type: "object", properties: { a: { enum: [] } } })).toThrow(SchemaError);
    const huge = Array.from({ length: 1001 }, (_, i) => i);
    expect(() => compileJsonSchema({ type: "object", properties: { a: { enum: huge } } })).toThrow(
      /more than 1000/,
    );
    const wide = Object.fromEntries(Array.from({ length: 2001 }, (_, i) => [`p${i}`, { type: "string" }]));
    expect(() => compileJsonSchema({ type: "object", properties: wide })).toThrow(/too large/);
    for (const ok of [WEATHER, TREE, OPEN, { type: "object" }]) expect(compileJsonSchema(ok)).toBeTruthy();
  });

  it("the API answers an unusable schema with a 400 on the schema's param", () => {
    const req = (schema: unknown, name = "w") => ({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      response_format: { type: "json_schema", json_schema: { name, schema } },
    });
    for (const [body, param] of [
      [
        req({ type: "object", properties: { s: { type: "string", pattern: "x" } } }),
        "response_format.json_schema.schema",
      ],
      [req(WEATHER, "has space"), "response_format.json_schema.name"],
    ] as const) {
      let err: unknown;
      try {
        parseChatCompletionRequest(body);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ApiError);
      expect([(err as ApiError).status, (err as ApiError).param]).toEqual([400, param]);
    }
    expect(parseChatCompletionRequest(req(WEATHER)).response_format).toBeTruthy();
  });
});

describe("schema automaton", () => {
  it("takes exactly the texts the schema allows, byte by byte", () => {
    const complete = [
      '{"city": "Paris", "days": 3, "unit": "C"}',
      '{"unit":"F","days":12,"city":"K\\u00f6ln \\"x\\"","tags":["a","b"],"note":null,"temps":[1.5e3,-0.25]}',
      ' {\n  "city": "Zürich",\n  "days": 0,\n  "unit": "C",\n  "note": "mild"\n}',
    ];
    for (const t of complete) expect(status(WEATHER, t), t).toBe("complete");
    const prefixes = [
      '{"ci',
      '{"city": "Pa',
      '{"city": "x", "days": 1',
      '{"city": "x", "days": 1, "unit": "C"',
    ];
    for (const t of prefixes) expect(status(WEATHER, t), t).toBe("prefix");
    const rejected = [
      '{"city": "x", "days": 1}', // unit is required
      '{"city": "x", "days": 1, "unit": "K"', // not in the enum
      '{"city": "x", "days": 1.5', // an integer
      '{"city": "x", "days": 15', // at most 14
      '{"city": "x", "city"', // each key once
      '{"country"', // not a property
      '{"city": 3', // a string
      '{"tags": []', // minItems 1
      '{"tags": ["a", "b", "c"', // maxItems 2
      '{"note": true', // string or null
      '{"city": "x", "days": 01', // JSON numbers have no leading zeros
      '{"city": "x"}}',
      "[",
    ];
    for (const t of rejected) expect(status(WEATHER, t), t).toBe("rejected");
  });

  it("keeps integers within their bounds, digit by digit", () => {
    const ranged = (bounds: object) => ({
      type: "object",
      properties: { n: { type: "integer", ...bounds } },
    });
    const cases: [object, string[], string[]][] = [
      [{ minimum: 10, maximum: 20 }, ["10", "15", "20"], ["9", "21", "-1", "3", "100", "010"]],
      [{ minimum: -5, exclusiveMaximum: 0 }, ["-5", "-1"], ["0", "-6", "-0", "1"]],
      [{ exclusiveMinimum: 99 }, ["100", "123456789012345678901234567890"], ["99", "-100", "5"]],
      [
        { maximum: -1e20 },
        ["-100000000000000000000", "-300000000000000000000"],
        ["-99999999999999999999", "0"],
      ],
      [
        { minimum: -9007199254740991, maximum: 9007199254740991 },
        ["0", "-9007199254740991"],
        ["9007199254740992"],
      ],
    ];
    for (const [bounds, ok, bad] of cases) {
      for (const v of ok)
        expect(status(ranged(bounds), `{"n": ${v}}`), `${JSON.stringify(bounds)} ${v}`).toBe("complete");
      for (const v of bad)
        expect(status(ranged(bounds), `{"n": ${v}}`), `${JSON.stringify(bounds)} ${v}`).toBe("rejected");
    }
    expect(() => compileJsonSchema(ranged({ minimum: 3, maximum: 2 }))).toThrow(/no integer/);
    expect(() =>
      compileJsonSchema({ type: "object", properties: { x: { type: "number", minimum: 0 } } }),
    ).toThrow(/integers only/);
  });

  it("follows $ref recursion, open objects and `any` values", () => {
    expect(
      status(
        TREE,
        '{"name": "a", "kids": [{"name": "b", "kids": [{"name": "c", "kids": []}]}], "flag": true}',
      ),
    ).toBe("complete");
    expect(status(TREE, '{"name": "a", "flag": 1')).toBe("rejected"); // extra values are booleans
    expect(status(TREE, '{"name": "a", "kids": [{"name": "b"}')).toBe("rejected"); // kids required below
    expect(
      status(TREE, '{"name": "a", "kids": [{"name": "b", "kids": []}, {"name": "c", "kids": []}, '),
    ).toBe("rejected");
    expect(status(OPEN, '{"x": {"deep": [1, "two", null, false, {"k": -0.5}]}, "n": 7, "other": "ok"}')).toBe(
      "complete",
    );
    expect(status(OPEN, '{"x": 1, "n": null}')).toBe("complete");
    expect(status(OPEN, '{"n": 2.5')).toBe("rejected");
    expect(status(OPEN, '{"n": 1}')).toBe("rejected"); // x is required
  });

  it("random walks through the automaton end in JSON the schema validates (checked by zod)", () => {
    // (no exponents: a random one overflows to Infinity, which JSON allows and JavaScript cannot hold)
    const alphabet = utf8.encode('{}[]",:-.0123456789 abcfhlnrstu\\\n');
    const closers = [0x7d, 0x5d, 0x22];
    // (a random walk seldom spells a required key among free ones: here every key is listed)
    const walks = [WEATHER, { ...TREE, additionalProperties: false }, { ...OPEN, required: [] }];
    for (const schema of walks) {
      const validator = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
      const rng = new Rng(7);
      let finished = 0;
      for (let walk = 0; walk < 120; walk++) {
        let s = SchemaState.start(compileJsonSchema(schema), 2);
        const bytes: number[] = [];
        while (!s.done && bytes.length < 1000) {
          // Any byte the state takes (it is never stuck), preferring a small alphabet so walks end.
          const next: { b: number; t: SchemaState }[] = [];
          for (let b = 0; b < 256; b++) {
            const t = s.step(b);
            if (t) next.push({ b, t });
          }
          expect(next.length, String.fromCharCode(...bytes)).toBeGreaterThan(0);
          const preferred = next.filter((n) => alphabet.includes(n.b));
          const from = preferred.length > 0 ? preferred : next;
          // Closing what is open a quarter of the time, so that walks end.
          const close = from.filter((n) => closers.includes(n.b));
          const among = close.length > 0 && rng.next() < 0.25 ? close : from;
          const pick = among[Math.floor(rng.next() * among.length)];
          bytes.push(pick.b);
          s = pick.t;
        }
        if (!s.done) continue;
        finished++;
        const text = new TextDecoder().decode(Uint8Array.from(bytes));
        const parsed = validator.safeParse(JSON.parse(text));
        expect(parsed.success, text).toBe(true);
      }
      expect(finished).toBeGreaterThan(30);
    }
  });
});

describe("structured outputs on the tiny model", () => {
  const engineOf = tinyEngine("qwen3moe");

  it("sampled replies are JSON the schema validates, or a valid prefix cut by max_tokens", async () => {
    const validator = z.fromJSONSchema(WEATHER as Parameters<typeof z.fromJSONSchema>[0]);
    let valid = 0;
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) {
      const req = parseChatCompletionRequest({
        model: engineOf().modelId,
        messages: [{ role: "user", content: "Weather?" }],
        response_format: {
          type: "json_schema",
          json_schema: { name: "weather", schema: WEATHER, strict: true },
        },
        temperature: 1,
        seed,
        max_tokens: 400,
      });
      const p = prepareChat(engineOf(), req);
      const out = await collect(engineOf().generate(p.promptIds, p.params));
      const state = SchemaState.start(compileJsonSchema(WEATHER)).feed(utf8.encode(out.text));
      expect(state, out.text).not.toBeNull();
      if (out.completionTokens < 400) {
        expect(state!.done).toBe(true);
        expect(validator.safeParse(JSON.parse(out.text)).success, out.text).toBe(true);
        valid++;
      }
    }
    expect(valid).toBeGreaterThan(0);
  });
});
