import { describe, expect, it } from "vitest";
import { ApiError } from "../../../src/openai/errors.js";
import { messageText, parseChatCompletionRequest, stopList } from "../../../src/openai/schema.js";

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

  it("rejects n > 1, out-of-range sampling values and non-object bodies", () => {
    expect(rejection({ ...ok, n: 2 }).code).toBe("unsupported_value");
    expect(rejection({ ...ok, temperature: 3 }).param).toBe("temperature");
    expect(rejection({ ...ok, top_logprobs: 2 }).param).toBe("top_logprobs");
    expect(rejection([ok]).status).toBe(400);
    expect(rejection(null).status).toBe(400);
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
