/**
 * The edge's forward stage over the frame protocol, inside workerd: the signed msgpack request
 * (tenant, limits, the validated request), frames turned into OpenAI SSE / JSON, exact usage for
 * the completion hooks whether or not the client asked for it, errors before and during the stream.
 */
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { decodeRequest, encodeFrame } from "../../src/protocol/codec.js";
import { type Frame, type InternalRequest, PROTOCOL_VERSION } from "../../src/protocol/types.js";
import { verifyRequest } from "../../src/signing.js";
import { createAdminApp } from "../../workers/admin/routes.js";
import type { CompletionOutcome } from "../../workers/chat/outcome.js";
import { chatStages } from "../../workers/chat/pipeline.js";
import type { AppEnv } from "../../workers/env.js";
import { handleError, handleNotFound } from "../../workers/middleware/errors.js";
import { requestId } from "../../workers/middleware/request-id.js";
import { forwardFrames } from "../../workers/upstream/forward-frames.js";
import type { FetchLike } from "../../workers/upstream/target.js";
import { controlledFrames, start, tokens } from "./frames.js";
import { chatBody, createTenant, post, readEvents, request, SECRET } from "./helpers.js";

interface Call {
  url: string;
  req: InternalRequest;
  signature: Awaited<ReturnType<typeof verifyRequest>>;
}

const frameStream = (frames: Frame[]) =>
  new Response(
    new ReadableStream<Uint8Array>({
      start(c) {
        // One frame split across two chunks, to exercise reassembly.
        for (const f of frames) {
          const b = encodeFrame(f);
          c.enqueue(b.slice(0, 3));
          c.enqueue(b.slice(3));
        }
        c.close();
      },
    }),
    { headers: { "content-type": "application/vnd.moe.frames.v1+msgpack" } },
  );

function setup(respond: (call: Call) => Response) {
  const calls: Call[] = [];
  const outcomes: CompletionOutcome[] = [];
  const fetch: FetchLike = async (url, init) => {
    const body = init.body as Uint8Array;
    const headers = new Headers(init.headers);
    const signature = await verifyRequest(SECRET, {
      method: init.method ?? "GET",
      path: new URL(url).pathname,
      body,
      header: (n) => headers.get(n),
    });
    const call = { url, req: decodeRequest(body), signature };
    calls.push(call);
    return respond(call);
  };
  const app = new Hono<AppEnv>();
  app.onError(handleError);
  app.notFound(handleNotFound);
  app.use("*", requestId());
  for (const stage of chatStages({ fetch })) {
    if (stage.name === "auth" || stage.name === "validate") app.post("/v1/chat/completions", stage.handler);
  }
  app.post("/v1/chat/completions", async (c, next) => {
    c.get("completionHooks").push((o) => {
      outcomes.push(o);
    });
    await next();
  });
  app.post("/v1/chat/completions", forwardFrames(fetch));
  app.route("/admin", createAdminApp());
  return { app, calls, outcomes };
}

const START: Frame = { t: "start", v: PROTOCOL_VERSION, model: "test-model", prompt_tokens: 5 };
const END: Frame = {
  t: "end",
  finish_reason: "stop",
  usage: { prompt_tokens: 5, completion_tokens: 2, cached_tokens: 4 },
};
const USAGE = {
  prompt_tokens: 5,
  completion_tokens: 2,
  total_tokens: 7,
  prompt_tokens_details: { cached_tokens: 4 },
};

const settle = () => new Promise((r) => setTimeout(r, 10));

describe("forward over frames", () => {
  it("signs a msgpack request with the tenant and the validated request, streams SSE, exact usage", async () => {
    const { app, calls, outcomes } = setup(() =>
      frameStream([
        START,
        { t: "ping" },
        { t: "token", id: 1, text: "Hel" },
        { t: "token", id: 2, text: "lo" },
        END,
      ]),
    );
    const { id, key } = await createTenant(app);
    const res = await post(app, key, chatBody({ stream: true, temperature: 0 }));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const text = await res.clone().text();
    expect(text).toContain(": keep-alive\n\n");
    const events = await readEvents(res);
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.map((c) => c.choices[0]?.delta)).toEqual([
      { role: "assistant", content: "" },
      { content: "Hel" },
      { content: "lo" },
      {},
    ]);
    expect(chunks.at(-1).choices[0].finish_reason).toBe("stop");
    expect(chunks.every((c) => c.usage === undefined)).toBe(true); // client did not ask for usage
    expect(calls).toHaveLength(1);
    expect(calls[0].url).toBe("http://backend.test/internal/v1/generate");
    expect(calls[0].signature).toEqual({ ok: true, tenant: id });
    expect(calls[0].req).toMatchObject({ v: 1, tenant: id, endpoint: "chat", limits: { maxInflight: null } });
    expect(calls[0].req.request).toMatchObject(chatBody({ stream: true, temperature: 0 }));
    await settle();
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ status: "ok", usage: USAGE, finishReason: "stop", text: "Hello" });
  });

  it("sends the usage chunk when asked, and answers non-stream requests as JSON", async () => {
    const { app, outcomes } = setup(() => frameStream([START, { t: "token", id: 1, text: "Hi" }, END]));
    const { key } = await createTenant(app);
    const streamed = await readEvents(
      await post(app, key, chatBody({ stream: true, stream_options: { include_usage: true } })),
    );
    const usageChunk = JSON.parse(streamed.at(-2)!);
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toEqual(USAGE);
    const res = await post(app, key, chatBody());
    const body = (await res.json()) as {
      object: string;
      choices: { message: { content: string } }[];
      usage: unknown;
    };
    expect(body.object).toBe("chat.completion");
    expect(body.choices[0].message.content).toBe("Hi");
    expect(body.usage).toEqual(USAGE);
    await settle();
    expect(outcomes.map((o) => o.status)).toEqual(["ok", "ok"]);
  });

  it("tool calls in token frames reach the client as OpenAI tool_calls, stream and not", async () => {
    const call = { id: "call_abc", name: "get_weather", arguments: '{"city":"Paris"}' };
    const frames = (): Frame[] => [
      START,
      { t: "token", id: 1, text: "On it." },
      { t: "token", id: 2, text: "", tool_calls: [call] },
      { ...END, finish_reason: "tool_calls" } as Frame,
    ];
    const { app, outcomes } = setup(() => frameStream(frames()));
    const { key } = await createTenant(app);
    const tools = [{ type: "function", function: { name: "get_weather" } }];
    const events = await readEvents(await post(app, key, chatBody({ stream: true, tools })));
    const deltas = events.slice(0, -1).map((e) => JSON.parse(e).choices[0]);
    const out = {
      id: "call_abc",
      type: "function",
      function: { name: "get_weather", arguments: '{"city":"Paris"}' },
    };
    expect(deltas.map((c) => c.delta)).toEqual([
      { role: "assistant", content: "" },
      { content: "On it." },
      { tool_calls: [{ index: 0, ...out }] },
      {},
    ]);
    expect(deltas.at(-1).finish_reason).toBe("tool_calls");
    const res = await post(app, key, chatBody({ tools }));
    const body = (await res.json()) as { choices: { message: unknown; finish_reason: string }[] };
    expect(body.choices[0]).toMatchObject({
      message: { role: "assistant", content: "On it.", tool_calls: [out] },
      finish_reason: "tool_calls",
    });
    await settle();
    expect(outcomes.map((o) => [o.status, o.finishReason])).toEqual([
      ["ok", "tool_calls"],
      ["ok", "tool_calls"],
    ]);
  });

  it("passes the backend's refusals through with status and Retry-After", async () => {
    const { app, outcomes } = setup(() =>
      Response.json(
        { error: { message: "busy", type: "server_error", param: null, code: "server_busy" } },
        { status: 503, headers: { "retry-after": "1" } },
      ),
    );
    const { key } = await createTenant(app);
    const res = await post(app, key, chatBody({ stream: true }));
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("server_busy");
    await settle();
    expect(outcomes[0]).toMatchObject({ status: "error", usage: null, upstreamStatus: 503 });
  });

  it("an error frame ends the stream with an error event; a cut stream too", async () => {
    const err: Frame = {
      t: "error",
      status: 500,
      error: {
        message: "Generation failed: device lost",
        type: "server_error",
        param: null,
        code: "server_error",
      },
    };
    const { app, outcomes } = setup(() => frameStream([START, { t: "token", id: 1, text: "a" }, err]));
    const { key } = await createTenant(app);
    const events = await readEvents(await post(app, key, chatBody({ stream: true })));
    expect(events).not.toContain("[DONE]");
    expect(JSON.parse(events.at(-1)!).error.message).toContain("device lost");
    const cut = setup(() => frameStream([START, { t: "token", id: 1, text: "a" }]));
    const { key: key2 } = await createTenant(cut.app);
    const events2 = await readEvents(await post(cut.app, key2, chatBody({ stream: true })));
    expect(JSON.parse(events2.at(-1)!).error.code).toBe("upstream_stream_error");
    await settle();
    expect(outcomes[0]).toMatchObject({ status: "error", text: "a" });
    expect(cut.outcomes[0]).toMatchObject({ status: "error", text: "a" });
  });

  it("reads ahead of a client that stopped reading: the generation finishes and settles exactly", async () => {
    // A client that vanished without the runtime cancelling the response (wrangler dev) looks like
    // one that never reads: the edge must still drain the backend and report the exact usage.
    const { app, outcomes } = setup(() =>
      frameStream([START, ...tokens(Array.from({ length: 200 }, (_, i) => `t${i} `)), END]),
    );
    const { key } = await createTenant(app);
    const res = await post(app, key, chatBody({ stream: true }));
    expect(res.status).toBe(200);
    for (let i = 0; i < 100 && outcomes.length === 0; i++) await settle();
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ status: "ok", usage: USAGE, finishReason: "stop" });
    expect(outcomes[0].text.split(" ").length - 1).toBe(200);
    await res.body?.cancel();
  });

  it("the client's request signal aborting ends the stream as aborted, with the exact usage so far", async () => {
    const upstream = controlledFrames();
    const { app, outcomes } = setup(() => upstream.response);
    const { key } = await createTenant(app);
    upstream.push(START, ...tokens(["a", "b", "c"]));
    const ac = new AbortController();
    const res = await request(app, "/v1/chat/completions", {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(chatBody({ stream: true })),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    let seen = "";
    while (!seen.includes('"content":"c"')) seen += new TextDecoder().decode((await reader.read()).value);
    ac.abort();
    for (let i = 0; i < 100 && outcomes.length === 0; i++) await settle();
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({
      status: "aborted",
      usage: null,
      text: "abc",
      partialUsage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
    });
    for (let i = 0; i < 100 && !upstream.cancelled(); i++) await settle();
    expect(upstream.cancelled()).toBe(true); // the backend's body was cancelled: generation stops
    await reader.cancel().catch(() => {});
  });

  it("a stream the backend cuts reports the exact usage delivered; a cut non-stream answer charges nothing", async () => {
    // Frames one per pull, then the connection fails (erroring at once would drop queued frames).
    const cut = () => {
      const frames = [start(9), ...tokens(["x", "", "y"])];
      let i = 0;
      return new Response(
        new ReadableStream<Uint8Array>({
          pull(c) {
            if (i < frames.length) c.enqueue(encodeFrame(frames[i++]));
            else c.error(new Error("connection reset"));
          },
        }),
      );
    };
    const { app, outcomes } = setup(cut);
    const { key } = await createTenant(app);
    const events = await readEvents(await post(app, key, chatBody({ stream: true })));
    expect(JSON.parse(events.at(-1)!).error.code).toBe("upstream_stream_error");
    const res = await post(app, key, chatBody());
    expect(res.status).toBe(502);
    await settle();
    expect(outcomes[0]).toMatchObject({
      status: "error",
      usage: null,
      text: "xy",
      partialUsage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
    });
    expect(outcomes[1]).toMatchObject({ status: "error", usage: null, text: "", upstreamStatus: 200 });
    expect(outcomes[1].partialUsage ?? null).toBeNull();
  });
});
