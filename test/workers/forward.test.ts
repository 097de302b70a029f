/**
 * The edge forwards valid requests to the backend over the frame protocol (signed msgpack with the
 * tenant and the validated request) and answers the client in OpenAI form: JSON, or SSE event by
 * event as frames arrive.
 */
import { describe, expect, it } from "vitest";
import type { Frame } from "../../src/protocol/types.js";
import { answerFrames, controlledFrames, end, framesResponse, start, tokens } from "./frames.js";
import { chatBody, createTenant, fakeBackend, post, readEvents } from "./helpers.js";

const USAGE = {
  prompt_tokens: 5,
  completion_tokens: 2,
  total_tokens: 7,
  prompt_tokens_details: { cached_tokens: 3 },
};
const FRAMES = answerFrames(["Hel", "lo"], { prompt_tokens: 5, completion_tokens: 2, cached_tokens: 3 });

interface Chunk {
  object: string;
  choices: Array<{ delta: { role?: string; content?: string }; finish_reason: string | null }>;
  usage?: unknown;
}
const parse = (events: string[]) => events.filter((e) => e !== "[DONE]").map((e) => JSON.parse(e) as Chunk);
const deltas = (chunks: Chunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? null);

describe("non-stream", () => {
  it("signs the call with the tenant and answers the generation as OpenAI JSON", async () => {
    const backend = fakeBackend(() => framesResponse(FRAMES));
    const { id, key } = await createTenant(backend.app);
    const res = await post(backend.app, key, chatBody({ temperature: 0, extra_field: 1 }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      object: "chat.completion",
      model: "test-model",
      choices: [
        { index: 0, message: { role: "assistant", content: "Hello" }, logprobs: null, finish_reason: "stop" },
      ],
      usage: USAGE,
    });
    expect(backend.calls).toHaveLength(1);
    const call = backend.calls[0];
    expect(call.url).toBe("http://backend.test/internal/v1/generate");
    expect(call.headers.get("content-type")).toBe("application/vnd.moe.request.v1+msgpack");
    expect(call.signature).toEqual({ ok: true, tenant: id });
    expect(call.req).toMatchObject({ v: 1, tenant: id, endpoint: "chat" });
    expect(call.body).toEqual(chatBody({ temperature: 0, extra_field: 1 }));
    expect(call.headers.get("x-request-id")).toBe(res.headers.get("x-request-id"));
    expect(call.req.requestId).toBe(res.headers.get("x-request-id"));
  });

  it("passes backend OpenAI errors through with their status", async () => {
    const err = {
      error: {
        message: "too long",
        type: "invalid_request_error",
        param: "messages",
        code: "context_length_exceeded",
      },
    };
    const backend = fakeBackend(() => Response.json(err, { status: 400 }));
    const { key } = await createTenant(backend.app);
    const res = await post(backend.app, key, chatBody());
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual(err);
  });

  it("answers 502 when the backend is down or answers garbage", async () => {
    const down = fakeBackend(() => {
      throw new TypeError("connection refused");
    });
    const { key } = await createTenant(down.app);
    const res = await post(down.app, key, chatBody());
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("upstream_unavailable");

    const garbage = fakeBackend(() => new Response("<html>oops</html>", { status: 500 }));
    const res2 = await post(garbage.app, (await createTenant(garbage.app)).key, chatBody());
    expect(res2.status).toBe(502);
    expect(((await res2.json()) as { error: { type: string } }).error.type).toBe("server_error");
  });

  it("a generation that fails after it started is a 5xx with the backend's error", async () => {
    const backend = fakeBackend(() =>
      framesResponse([
        start(5),
        ...tokens(["a"]),
        {
          t: "error",
          status: 500,
          error: { message: "device lost", type: "server_error", param: null, code: "server_error" },
        },
      ]),
    );
    const res = await post(backend.app, (await createTenant(backend.app)).key, chatBody());
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe("device lost");
  });
});

describe("stream", () => {
  it("sends the client's request as is; usage comes from the end frame, shown only when asked", async () => {
    const backend = fakeBackend(() => framesResponse(FRAMES));
    const { key } = await createTenant(backend.app);
    const res = await post(backend.app, key, chatBody({ stream: true }));
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect(backend.calls[0].body).toEqual(chatBody({ stream: true }));
    const events = await readEvents(res);
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = parse(events);
    expect(deltas(chunks)).toEqual(["", "Hel", "lo", null]);
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    expect(chunks.at(-1)?.choices[0].finish_reason).toBe("stop");
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.usage === undefined)).toBe(true);
  });

  it("sends the usage chunk (exact, cached tokens included) when the client asked for it", async () => {
    const backend = fakeBackend(() => framesResponse(FRAMES));
    const { key } = await createTenant(backend.app);
    const res = await post(
      backend.app,
      key,
      chatBody({ stream: true, stream_options: { include_usage: true } }),
    );
    const chunks = parse(await readEvents(res));
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: USAGE });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(deltas(chunks.slice(0, -1))).toEqual(["", "Hel", "lo", null]);
  });

  it("relays each token as it arrives (no buffering); pings become keep-alive comments", async () => {
    const upstream = controlledFrames();
    const backend = fakeBackend(() => upstream.response);
    const { key } = await createTenant(backend.app);
    upstream.push(start(5), ...tokens(["first"]));
    const res = await post(backend.app, key, chatBody({ stream: true }));
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let seen = "";
    const until = async (needle: string) => {
      while (!seen.includes(needle)) {
        const r = await reader.read();
        if (r.done) throw new Error(`stream ended before ${needle}`);
        seen += dec.decode(r.value);
      }
    };
    // The backend has sent one token and keeps the stream open: the client must already see it.
    await until('"content":"first"');
    upstream.push({ t: "ping" });
    await until(": keep-alive\n\n");
    upstream.push({ t: "token", id: 2, text: "second" });
    await until('"content":"second"');
    expect(seen).not.toContain("[DONE]");
    upstream.push(end({ prompt_tokens: 5, completion_tokens: 2 }));
    upstream.close();
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      seen += dec.decode(r.value);
    }
    expect(seen.endsWith("data: [DONE]\n\n")).toBe(true);
    expect(seen).toContain('"finish_reason":"stop"');
  });

  it("an error frame becomes the final error event; a stream cut without an end frame too", async () => {
    const error: Frame = {
      t: "error",
      status: 500,
      error: { message: "boom", type: "server_error", param: null, code: "server_error" },
    };
    const backend = fakeBackend(() => framesResponse([start(5), ...tokens(["a"]), error]));
    const { key } = await createTenant(backend.app);
    const events = await readEvents(await post(backend.app, key, chatBody({ stream: true })));
    expect(deltas(parse(events.slice(0, -1)))).toEqual(["", "a"]);
    expect(JSON.parse(events.at(-1) ?? "{}")).toEqual({ error: error.error });

    const cut = fakeBackend(() => framesResponse([start(5), ...tokens(["a"])]));
    const events2 = await readEvents(
      await post(cut.app, (await createTenant(cut.app)).key, chatBody({ stream: true })),
    );
    expect(events2).not.toContain("[DONE]");
    expect(JSON.parse(events2.at(-1) ?? "{}").error.code).toBe("upstream_stream_error");
  });
});
