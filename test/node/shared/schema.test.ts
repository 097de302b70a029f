import { describe, expect, it } from "vitest";
import { ApiError } from "../../../src/openai/errors.js";
import {
  messageText,
  parseChatCompletionRequest,
  parseCompletionRequest,
  stopList,
} from "../../../src/openai/schema.js";

const ok = { model: "m", messages: [{ role: "user", content: "hi" }] };

function rejection(body: unknown): ApiError {
  try {
    parseChatCompletionRequest(body);
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error("expected a rejection");
}

describe("chat request schema", () => {
  it("accepts a minimal request and keeps unknown fields", () => {
    const req = parseChatCompletionRequest({ ...ok, metadata: { x: 1 } });
    expect(req.model).toBe("m");
    expect((req as Record<string, unknown>).metadata).toEqual({ x: 1 });
  });

  it("rejects messages that are not an array, naming the param", () => {
    const e = rejection({ model: "m", messages: "hi" });
    expect(e.status).toBe(400);
    expect(e.toBody().error).toMatchObject({
      type: "invalid_request_error",
      param: "messages",
      code: "invalid_type",
    });
  });

  it("rejects a negative or zero max_tokens", () => {
    for (const v of [-1, 0]) {
      const e = rejection({ ...ok, max_tokens: v });
      expect(e.toBody().error).toMatchObject({ param: "max_tokens", code: "below_min_value" });
    }
  });

  it("names nested params and missing fields", () => {
    expect(rejection({ model: "m", messages: [{ role: "robot", content: "x" }] }).param).toBe(
      "messages[0].role",
    );
    expect(rejection({ messages: ok.messages }).toBody().error).toMatchObject({
      param: "model",
      code: "missing_required_parameter",
    });
    expect(rejection({ model: "m", messages: [] }).code).toBe("empty_array");
  });

  it("rejects n > 16, out-of-range sampling values and non-object bodies", () => {
    expect(parseChatCompletionRequest({ ...ok, n: 16 }).n).toBe(16);
    expect([rejection({ ...ok, n: 17 }).code, rejection({ ...ok, n: 0 }).param]).toEqual([
      "above_max_value",
      "n",
    ]);
    expect(rejection({ ...ok, temperature: 3 }).param).toBe("temperature");
    expect(rejection({ ...ok, top_logprobs: 2 }).param).toBe("top_logprobs");
    expect(rejection([ok]).status).toBe(400);
    expect(rejection(null).status).toBe(400);
  });

  it("takes JSON mode (json_object, with 'json' in the messages) and json_schema; refuses other formats", () => {
    const json = { ...ok, messages: [{ role: "user", content: "Answer in JSON." }] };
    expect(parseChatCompletionRequest({ ...json, response_format: { type: "json_object" } })).toBeTruthy();
    const noWord = rejection({ ...ok, response_format: { type: "json_object" } });
    expect([noWord.status, noWord.param]).toEqual([400, "messages"]);
    expect(noWord.message).toMatch(/must contain the word 'json'/);
    const schema = { type: "object", properties: { a: { type: "string" } } };
    expect(
      parseChatCompletionRequest({
        ...ok,
        response_format: { type: "json_schema", json_schema: { name: "x", schema } },
      }),
    ).toBeTruthy();
    const noSpec = rejection({ ...ok, response_format: { type: "json_schema" } });
    expect([noSpec.status, noSpec.param]).toEqual([400, "response_format.json_schema"]);
    for (const format of ["json", { type: "xml" }]) {
      const e = rejection({ ...json, response_format: format });
      expect([e.status, e.param, e.code]).toEqual([400, "response_format", "unsupported_value"]);
    }
    expect(parseChatCompletionRequest({ ...ok, response_format: { type: "text" } })).toBeTruthy();
  });

  it("takes tools, tool_choice and the turns of a tool conversation; refuses what cannot work", () => {
    const tools = [{ type: "function", function: { name: "f", parameters: { type: "object" } } }];
    for (const tool_choice of [
      undefined,
      "auto",
      "required",
      "none",
      { type: "function", function: { name: "f" } },
    ])
      expect(parseChatCompletionRequest({ ...ok, tools, tool_choice }).tools).toHaveLength(1);
    expect(parseChatCompletionRequest({ ...ok, tools: [] })).toBeTruthy();
    const turns = [
      { role: "user", content: "weather?" },
      {
        role: "assistant",
        tool_calls: [{ id: "call_1", type: "function", function: { name: "f", arguments: "{}" } }],
      },
      { role: "tool", tool_call_id: "call_1", content: "sunny" },
    ];
    expect(parseChatCompletionRequest({ ...ok, tools, messages: turns }).messages).toHaveLength(3);
    const refused: [Record<string, unknown>, string | null, string][] = [
      [{ tools, tool_choice: { type: "function", function: { name: "g" } } }, "tool_choice", "invalid_value"],
      [{ tool_choice: "required" }, "tool_choice", "invalid_value"],
      [{ tools: [...tools, ...tools] }, "tools[1].function.name", "invalid_value"],
      [
        { tools: [{ type: "function", function: { name: "has space" } }] },
        "tools[0].function.name",
        "invalid_value",
      ],
      [{ tools: [{ type: "retrieval" }] }, "tools[0].type", "invalid_value"],
      [{ tools, tool_choice: "sometimes" }, "tool_choice", "invalid_value"],
      [{ tools, response_format: { type: "json_object" } }, "response_format", "unsupported_value"],
      [{ messages: [{ role: "assistant" }] }, "messages[0].content", "missing_required_parameter"],
      [
        { messages: [turns[0], { role: "tool", content: "x" }] },
        "messages[1].tool_call_id",
        "missing_required_parameter",
      ],
    ];
    for (const [extra, param, code] of refused) {
      const e = rejection({ ...ok, ...extra });
      expect([e.status, e.param, e.code], JSON.stringify(extra)).toEqual([400, param, code]);
    }
  });

  it("takes one completion prompt: text or token ids, a batch of one unwrapped", () => {
    const comp = (prompt: unknown, extra: Record<string, unknown> = {}) =>
      parseCompletionRequest({ model: "m", prompt, ...extra }).prompt;
    const refusal = (prompt: unknown, extra: Record<string, unknown> = {}) => {
      try {
        comp(prompt, extra);
      } catch (e) {
        if (e instanceof ApiError) return [e.status, e.param, e.code];
      }
      throw new Error("expected a rejection");
    };
    expect(comp("hi")).toBe("hi");
    expect(comp(["hi"])).toBe("hi");
    expect(comp([1, 2, 3])).toEqual([1, 2, 3]);
    expect(comp([[4, 5]])).toEqual([4, 5]);
    expect(refusal(["a", "b"])).toEqual([400, "prompt", "unsupported_value"]);
    expect(refusal([[1], [2]])).toEqual([400, "prompt", "unsupported_value"]);
    expect(refusal([])).toEqual([400, "prompt", "empty_array"]);
    expect(refusal([[]])[1]).toBe("prompt[0]");
    expect(refusal([1, "a"])[1]).toBe("prompt");
    expect(refusal([-1])[1]).toBe("prompt[0]");
    expect(comp([1, 2], { echo: true })).toEqual([1, 2]);
    // max_tokens 0 scores the prompt: only with echo (and never on chat).
    expect(comp([1, 2], { echo: true, max_tokens: 0, logprobs: 1 })).toEqual([1, 2]);
    expect(refusal([1, 2], { max_tokens: 0 })).toEqual([400, "max_tokens", "below_min_value"]);
    const badSchema = { type: "json_schema", json_schema: { name: "x", schema: { type: "array" } } };
    expect(refusal("hi", { response_format: badSchema })).toEqual([
      400,
      "response_format.json_schema.schema",
      "invalid_value",
    ]);
    expect(rejection({ ...ok, max_tokens: 0 }).param).toBe("max_tokens");
    expect(comp("hi", { echo: true })).toBe("hi");
  });

  it("takes logit_bias keyed by token id, with values in [-100, 100], at most 300 entries", () => {
    expect(parseChatCompletionRequest({ ...ok, logit_bias: { "0": -100, "50256": 5.5 } }).logit_bias).toEqual(
      {
        "0": -100,
        "50256": 5.5,
      },
    );
    for (const key of ["AI", "-1", "1.5", "01", " 7", "99999999999999999999"]) {
      const e = rejection({ ...ok, logit_bias: { [key]: 1 } });
      expect([e.status, e.param, e.message]).toEqual([
        400,
        "logit_bias",
        `Invalid key in 'logit_bias': ${key}. You should only be submitting non-negative integers.`,
      ]);
    }
    expect(rejection({ ...ok, logit_bias: { "5": 101 } }).code).toBe("above_max_value");
    expect(rejection({ ...ok, logit_bias: { "5": "high" } }).param).toBe("logit_bias.5");
    const many = Object.fromEntries(Array.from({ length: 301 }, (_, i) => [String(i), 1]));
    expect(rejection({ ...ok, logit_bias: many }).message).toMatch(/Too many entries in 'logit_bias': 301/);
    expect(parseChatCompletionRequest({ ...ok, logit_bias: null }).logit_bias).toBeNull();
  });

  it("flattens text parts and stop fields", () => {
    expect(
      messageText([
        { type: "text", text: "a" },
        { type: "text", text: "b" },
      ]),
    ).toBe("ab");
    expect(messageText(null)).toBe("");
    expect(stopList("x")).toEqual(["x"]);
    expect(stopList(["a", ""])).toEqual(["a"]);
    expect(stopList(undefined)).toEqual([]);
  });
});
