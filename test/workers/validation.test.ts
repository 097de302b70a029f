/**
 * "Done when": every bad request gets the right status and an OpenAI error body, from the edge,
 * without reaching the backend. Runs against the real app (createApp, every stage in place).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { chatBody, createTenant, fakeBackend, post, request } from "./helpers.js";

const fake = fakeBackend(() => new Response("{}", { status: 500 }));
const backend = { app: fake.fullApp, calls: fake.calls };
let key = "";

beforeAll(async () => {
  key = (await createTenant(backend.app)).key;
});

async function expectError(
  res: Response,
  status: number,
  expected: { type: string; code: string | null; param?: string | null },
) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/json");
  const body = (await res.json()) as { error: Record<string, unknown> };
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(typeof body.error.message).toBe("string");
  expect((body.error.message as string).length).toBeGreaterThan(0);
  expect(body.error).toMatchObject(expected);
  expect(res.headers.get("x-request-id")).toMatch(/^req_/);
  return body.error;
}

describe("bad requests are answered at the edge", () => {
  it("malformed JSON -> 400 invalid_json", async () => {
    await expectError(await post(backend.app, key, '{"model": "test-model", '), 400, {
      type: "invalid_request_error",
      code: "invalid_json",
      param: null,
    });
  });

  it("unknown model -> 404 model_not_found", async () => {
    const err = await expectError(await post(backend.app, key, chatBody({ model: "gpt-9" })), 404, {
      type: "invalid_request_error",
      code: "model_not_found",
      param: "model",
    });
    expect(err.message).toContain("gpt-9");
  });

  it("missing key -> 401 missing_api_key", async () => {
    await expectError(await post(backend.app, null, chatBody()), 401, {
      type: "authentication_error",
      code: "missing_api_key",
    });
  });

  it("wrong key -> 401 invalid_api_key (unknown prefix, wrong secret, garbage, wrong scheme)", async () => {
    const wrongSecret = `${key.slice(0, -4)}${key.endsWith("AAAA") ? "BBBB" : "AAAA"}`;
    const unknownPrefix = `sk-moe-0000000000_${"a".repeat(32)}`;
    for (const k of [wrongSecret, unknownPrefix, "not-a-key"]) {
      const err = await expectError(await post(backend.app, k, chatBody()), 401, {
        type: "authentication_error",
        code: "invalid_api_key",
      });
      // Never echo the secret part of a presented key.
      if (k.startsWith("sk-moe-")) expect(err.message).not.toContain(k.slice(18, -4));
    }
    await expectError(await post(backend.app, null, chatBody(), { authorization: `Basic ${key}` }), 401, {
      type: "authentication_error",
      code: "invalid_api_key",
    });
  });

  it("messages not an array -> 400 invalid_type on 'messages'", async () => {
    await expectError(await post(backend.app, key, { model: "test-model", messages: "hello" }), 400, {
      type: "invalid_request_error",
      code: "invalid_type",
      param: "messages",
    });
  });

  it("negative max_tokens -> 400 on 'max_tokens'", async () => {
    await expectError(await post(backend.app, key, chatBody({ max_tokens: -5 })), 400, {
      type: "invalid_request_error",
      code: "below_min_value",
      param: "max_tokens",
    });
  });

  it("other invalid bodies: missing messages, bad role, n > 16, non-object, too large", async () => {
    await expectError(await post(backend.app, key, { model: "test-model" }), 400, {
      type: "invalid_request_error",
      code: "missing_required_parameter",
      param: "messages",
    });
    await expectError(
      await post(backend.app, key, { model: "test-model", messages: [{ role: "wizard", content: "x" }] }),
      400,
      { type: "invalid_request_error", code: "invalid_value", param: "messages[0].role" },
    );
    await expectError(await post(backend.app, key, chatBody({ n: 17 })), 400, {
      type: "invalid_request_error",
      code: "above_max_value",
      param: "n",
    });
    await expectError(await post(backend.app, key, "[1,2]"), 400, {
      type: "invalid_request_error",
      code: "invalid_type",
    });
    const huge = chatBody({ messages: [{ role: "user", content: "x".repeat(1_100_000) }] });
    await expectError(await post(backend.app, key, huge), 413, {
      type: "invalid_request_error",
      code: "request_too_large",
    });
  });

  it("none of them reached the backend", () => {
    expect(backend.calls).toHaveLength(0);
  });
});

describe("other routes", () => {
  it("GET /v1/models needs a key and answers an OpenAI model list", async () => {
    expect((await request(backend.app, "/v1/models")).status).toBe(401);
    const res = await request(backend.app, "/v1/models", { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { object: string; data: { id: string; object: string }[] };
    expect(body.object).toBe("list");
    for (const m of body.data) expect(m.object).toBe("model");
  });

  it("unknown routes answer an OpenAI-style 404", async () => {
    const res = await request(backend.app, "/v1/nope");
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe("not_found_error");
  });

  it("a known route with another method is a 405 naming the allowed one", async () => {
    for (const [method, path, allow] of [
      ["GET", "/v1/chat/completions", "POST"],
      ["PUT", "/v1/completions", "POST"],
      ["POST", "/v1/models", "GET"],
      ["DELETE", "/v1/models/some/model", "GET"],
    ]) {
      const res = await request(backend.app, path, { method });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get("allow")).toBe(allow);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe("method_not_allowed");
      expect(error.message).toContain(allow);
    }
  });

  it("echoes a sane client request id", async () => {
    const res = await request(backend.app, "/health", { headers: { "x-request-id": "abc-123" } });
    expect(res.headers.get("x-request-id")).toBe("abc-123");
  });
});
