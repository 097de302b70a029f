import { describe, expect, it } from "vitest";
import { createServerApp, type ServerOptions } from "../../../gpu-backend/server/app.js";
import type { ChatCompletion, ChatCompletionChunk } from "../../../src/openai/types.js";
import { SIG_HEADERS, signRequest } from "../../../src/signing.js";
import { FakeEngine, type FakeOptions } from "./fake-engine.js";
import { jsonEvents, sseEvents } from "./sse.js";

const SECRET = "backend-secret";

function setup(fake: FakeOptions = {}, opts: ServerOptions = { secret: SECRET }) {
  const engine = new FakeEngine(fake);
  const app = createServerApp(engine, opts);
  const call = async (
    path: string,
    body: unknown,
    init: { sign?: boolean; headers?: Record<string, string> } = {},
  ) => {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    const sig =
      init.sign === false
        ? {}
        : await signRequest(SECRET, { method: "POST", path, body: text, tenant: "t1" });
    return app.request(path, {
      method: "POST",
      headers: { "content-type": "application/json", ...sig, ...init.headers },
      body: text,
    });
  };
  return { engine, app, call };
}

const chat = (extra: Record<string, unknown> = {}) => ({
  model: "fake-model",
  messages: [{ role: "user", content: "hello" }],
  temperature: 0,
  ...extra,
});

describe("backend auth", () => {
  it("refuses unsigned requests by default, accepts signed ones", async () => {
    const { call } = setup();
    const res = await call("/v1/chat/completions", chat(), { sign: false });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("signature_required");
    expect((await call("/v1/chat/completions", chat())).status).toBe(200);
  });

  it("refuses a replayed request and a stale one", async () => {
    const { app } = setup();
    const body = JSON.stringify(chat());
    const sig = await signRequest(SECRET, {
      method: "POST",
      path: "/v1/chat/completions",
      body,
      tenant: "t",
    });
    const send = (h: Record<string, string>) =>
      app.request("/v1/chat/completions", { method: "POST", headers: h, body });
    expect((await send(sig)).status).toBe(200);
    const replay = await send(sig);
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: { code: string } }).error.code).toBe("signature_replayed");
    const old = await signRequest(SECRET, {
      method: "POST",
      path: "/v1/chat/completions",
      body,
      tenant: "t",
      now: Date.now() - 61_000,
    });
    const stale = await send(old);
    expect(stale.status).toBe(401);
    expect(((await stale.json()) as { error: { code: string } }).error.code).toBe("signature_stale");
  });

  it("refuses a signature over a different body", async () => {
    const { app } = setup();
    const sig = await signRequest(SECRET, {
      method: "POST",
      path: "/v1/chat/completions",
      body: "{}",
      tenant: "t",
    });
    const res = await app.request("/v1/chat/completions", {
      method: "POST",
      headers: sig,
      body: JSON.stringify(chat()),
    });
    expect(res.status).toBe(401);
  });

  it("accepts unsigned requests only when configured (allow-unsigned, bearer token)", async () => {
    expect(
      (await setup({}, { allowUnsigned: true }).call("/v1/chat/completions", chat(), { sign: false })).status,
    ).toBe(200);
    const { call } = setup({}, { bearerToken: "tok" });
    expect((await call("/v1/chat/completions", chat(), { sign: false })).status).toBe(401);
    const ok = await call("/v1/chat/completions", chat(), {
      sign: false,
      headers: { authorization: "Bearer tok" },
    });
    expect(ok.status).toBe(200);
  });
});

describe("health and models", () => {
  it("reports loading until the engine resolves", async () => {
    let resolve!: (e: FakeEngine) => void;
    const app = createServerApp(new Promise<FakeEngine>((r) => (resolve = r)), { secret: SECRET });
    expect((await app.request("/health")).status).toBe(503);
    resolve(new FakeEngine());
    await new Promise((r) => setTimeout(r, 0));
    const res = await app.request("/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", model: "fake-model" });
  });

  it("lists the model (signed)", async () => {
    const { app } = setup();
    const sig = await signRequest(SECRET, { method: "GET", path: "/v1/models", body: "", tenant: "t" });
    const res = await app.request("/v1/models", { headers: sig });
    expect(await res.json()).toEqual({
      object: "list",
      data: [{ id: "fake-model", object: "model", created: 0, owned_by: "moe-edge" }],
    });
  });
});

describe("chat completions", () => {
  it("non-stream: text, finish_reason and usage from the engine", async () => {
    const { call, engine } = setup({ reply: "abc" });
    const res = await call("/v1/chat/completions", chat());
    const body = (await res.json()) as ChatCompletion;
    expect(body.object).toBe("chat.completion");
    expect(body.choices[0].message).toEqual({ role: "assistant", content: "abc", refusal: null });
    expect(body.choices[0].finish_reason).toBe("stop");
    const promptTokens = engine.calls[0].promptIds.length;
    expect(body.usage).toEqual({
      prompt_tokens: promptTokens,
      completion_tokens: 4, // a, b, c, EOS
      total_tokens: promptTokens + 4,
      prompt_tokens_details: { cached_tokens: 0 },
    });
    expect(body.choices[0].logprobs).toBeNull();
  });

  it("stream: role chunk, deltas, finish chunk, usage chunk (when asked), [DONE]", async () => {
    const { call } = setup({ reply: "hey" });
    const res = await call(
      "/v1/chat/completions",
      chat({ stream: true, stream_options: { include_usage: true } }),
    );
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const raw = sseEvents(await res.text());
    expect(raw.at(-1)).toBe("[DONE]");
    const chunks = jsonEvents(
      await Promise.resolve(raw.map((d) => `data: ${d}\n\n`).join("")),
    ) as unknown as ChatCompletionChunk[];
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.model === "fake-model")).toBe(true);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(text).toBe("hey");
    const finish = chunks.at(-2)!;
    expect(finish.choices[0]).toMatchObject({ delta: {}, finish_reason: "stop" });
    const usage = chunks.at(-1)!;
    expect(usage.choices).toEqual([]);
    expect(usage.usage?.completion_tokens).toBe(4);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it("stream without include_usage sends no usage chunk", async () => {
    const { call } = setup({ reply: "hey" });
    const chunks = jsonEvents(await (await call("/v1/chat/completions", chat({ stream: true }))).text());
    expect(chunks.some((c) => "usage" in c)).toBe(false);
    expect(chunks.every((c) => (c.choices as unknown[]).length === 1)).toBe(true);
  });

  it("stream and non-stream give the same text and usage", async () => {
    const { call } = setup();
    const plain = (await (await call("/v1/chat/completions", chat())).json()) as ChatCompletion;
    const chunks = jsonEvents(
      await (
        await call("/v1/chat/completions", chat({ stream: true, stream_options: { include_usage: true } }))
      ).text(),
    ) as unknown as ChatCompletionChunk[];
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(
      plain.choices[0].message.content,
    );
    expect(chunks.at(-1)!.usage).toEqual(plain.usage);
  });

  it("maps OpenAI sampling fields to SamplingParams", async () => {
    const { call, engine } = setup({ reply: "x" });
    await call(
      "/v1/chat/completions",
      chat({
        temperature: 0.7,
        top_p: 0.9,
        top_k: 40,
        seed: 7,
        presence_penalty: 0.5,
        frequency_penalty: -0.5,
        stop: ["\n", "END"],
        max_tokens: 99,
        max_completion_tokens: 12,
        logprobs: true,
        top_logprobs: 3,
        logit_bias: { "97": 100, "0": -100 },
      }),
    );
    expect(engine.calls[0].params).toEqual({
      maxTokens: 12,
      temperature: 0.7,
      topP: 0.9,
      topK: 40,
      seed: 7,
      presencePenalty: 0.5,
      frequencyPenalty: -0.5,
      stop: ["\n", "END"],
      logprobs: 3,
      logitBias: new Map([
        [97, 100],
        [0, -100],
      ]),
    });
    await call("/v1/chat/completions", {
      model: "fake-model",
      messages: [{ role: "user", content: "a" }],
      stop: "S",
      ignore_eos: true,
    });
    expect(engine.calls[0].params.ignoreEos).toBeUndefined();
    expect(engine.calls[1].params.logitBias).toBeUndefined();
    expect(engine.calls[1].params.jsonObject).toBeUndefined();
    await call("/v1/chat/completions", {
      model: "fake-model",
      messages: [{ role: "user", content: "reply in json" }],
      response_format: { type: "json_object" },
    });
    expect(engine.calls[2].params.jsonObject).toBe(true);
    expect(engine.calls[1].params).toMatchObject({
      ignoreEos: true,
      temperature: 1,
      topP: 1,
      topK: 0,
      stop: ["S"],
      logprobs: null,
      maxTokens: 4096 - engine.calls[1].promptIds.length,
    });
  });

  it("returns logprobs in OpenAI shape", async () => {
    const { call } = setup({ reply: "ab" });
    const body = (await (
      await call("/v1/chat/completions", chat({ logprobs: true, top_logprobs: 2 }))
    ).json()) as ChatCompletion;
    const content = body.choices[0].logprobs!.content;
    expect(content[0]).toEqual({
      token: "a",
      logprob: -0.5,
      bytes: [97],
      top_logprobs: [
        { token: "t0", logprob: 0, bytes: [116, 48] },
        { token: "t1", logprob: -1, bytes: [116, 49] },
      ],
    });
  });

  it("rejects bad input with OpenAI errors before generating", async () => {
    const { call, engine } = setup();
    const cases: [unknown, number, string | null][] = [
      ["{not json", 400, "invalid_json"],
      [chat({ n: 17 }), 400, "above_max_value"],
      [chat({ model: "nope" }), 404, "model_not_found"],
      [{ model: "fake-model", messages: "hi" }, 400, "invalid_type"],
      [chat({ max_tokens: -3 }), 400, "below_min_value"],
      [chat({ max_tokens: 5000 }), 400, "context_length_exceeded"],
      [chat({ logit_bias: { hello: 1 } }), 400, "invalid_value"],
      // Past the model's vocabulary (the fake's ids are code points).
      [chat({ logit_bias: { "1114112": 1 } }), 400, "invalid_value"],
    ];
    for (const [body, status, code] of cases) {
      const res = await call("/v1/chat/completions", body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      const err = ((await res.json()) as { error: Record<string, unknown> }).error;
      expect(err.code).toBe(code);
      expect(typeof err.message).toBe("string");
      expect(err).toHaveProperty("type");
      expect(err).toHaveProperty("param");
    }
    expect(engine.calls).toHaveLength(0);
    const past = await call("/v1/chat/completions", chat({ logit_bias: { "1114112": 1 } }));
    expect(((await past.json()) as { error: { message: string } }).error.message).toBe(
      "Invalid key in 'logit_bias': 1114112. Maximum value is 1114111.",
    );
  });

  it("a mid-stream engine failure ends the stream with an error event and no [DONE]", async () => {
    const { call } = setup({ reply: "abcdef", failAfter: 2 });
    const events = sseEvents(await (await call("/v1/chat/completions", chat({ stream: true }))).text());
    expect(events).not.toContain("[DONE]");
    const last = JSON.parse(events.at(-1)!) as { error: { type: string; message: string } };
    expect(last.error.type).toBe("server_error");
    expect(last.error.message).toContain("device fell over");
    const text = events
      .slice(0, -1)
      .map((d) => (JSON.parse(d) as ChatCompletionChunk).choices[0].delta.content ?? "")
      .join("");
    expect(text).toBe("ab");
  });
});

describe("legacy completions", () => {
  it("non-stream and stream agree", async () => {
    const { call, engine } = setup({ reply: "xyz" });
    const body = { model: "fake-model", prompt: "Once", temperature: 0 };
    const plain = (await (await call("/v1/completions", body)).json()) as {
      object: string;
      choices: { text: string; finish_reason: string }[];
      usage: { prompt_tokens: number; completion_tokens: number };
    };
    expect(plain.object).toBe("text_completion");
    expect(plain.choices[0]).toMatchObject({ text: "xyz", finish_reason: "stop" });
    expect(plain.usage.prompt_tokens).toBe(engine.tokenizer.encode("Once", true).length);
    const chunks = jsonEvents(
      await (
        await call("/v1/completions", { ...body, stream: true, stream_options: { include_usage: true } })
      ).text(),
    );
    const text = chunks.map((c) => (c.choices as { text: string }[])[0]?.text ?? "").join("");
    expect(text).toBe("xyz");
    expect(chunks.at(-1)!.usage).toEqual(plain.usage);
  });

  it("a token-id prompt goes to the engine as it is; ids past the vocabulary are a 400", async () => {
    const { call, engine } = setup({ reply: "ok" });
    const ids = [79, 110, 99, 101];
    const res = await call("/v1/completions", { model: "fake-model", prompt: [ids], temperature: 0 });
    expect(res.status).toBe(200);
    expect(engine.calls[0].promptIds).toEqual(ids);
    expect(((await res.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBe(4);
    const past = await call("/v1/completions", { model: "fake-model", prompt: [1, 0x110000] });
    expect(past.status).toBe(400);
    expect(((await past.json()) as { error: { message: string } }).error.message).toBe(
      "Invalid token id in 'prompt': 1114112. Maximum value is 1114111.",
    );
    expect(engine.calls).toHaveLength(1);
  });
});

it("signature headers use the documented names", () => {
  expect(SIG_HEADERS).toEqual({
    timestamp: "x-moe-timestamp",
    nonce: "x-moe-nonce",
    signature: "x-moe-signature",
    tenant: "x-moe-tenant",
  });
});
