/**
 * The SSE passthrough forward (forwardChat, for OpenAI-compatible upstreams; the pipeline uses the
 * frame protocol): valid requests go out signed, answers come back JSON as is, SSE event by event.
 */
import { describe, expect, it } from "vitest";
import { forwardChat } from "../../workers/upstream/forward.js";
import {
  chatBody,
  chunk,
  controlledSse,
  createTenant,
  fakeSseBackend,
  post,
  readEvents,
  USAGE,
  usageChunk,
} from "./helpers.js";

const completion = {
  id: "chatcmpl-1",
  object: "chat.completion",
  created: 1,
  model: "test-model",
  choices: [
    { index: 0, message: { role: "assistant", content: "hello" }, logprobs: null, finish_reason: "stop" },
  ],
  usage: USAGE,
};

describe("non-stream", () => {
  it("signs the call with the tenant and relays the backend's JSON", async () => {
    const backend = fakeSseBackend(forwardChat, () => Response.json(completion));
    const { id, key } = await createTenant(backend.app);
    const res = await post(backend.app, key, chatBody({ temperature: 0, extra_field: 1 }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(completion);
    expect(backend.calls).toHaveLength(1);
    const call = backend.calls[0];
    expect(call.url).toBe("http://backend.test/v1/chat/completions");
    expect(call.signature).toEqual({ ok: true, tenant: id });
    expect(call.body).toEqual(chatBody({ temperature: 0, extra_field: 1 }));
    expect(call.headers.get("x-request-id")).toBe(res.headers.get("x-request-id"));
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
    const backend = fakeSseBackend(forwardChat, () => Response.json(err, { status: 400 }));
    const { key } = await createTenant(backend.app);
    const res = await post(backend.app, key, chatBody());
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual(err);
  });

  it("answers 502 when the backend is down or answers garbage", async () => {
    const down = fakeSseBackend(forwardChat, () => {
      throw new TypeError("connection refused");
    });
    const { key } = await createTenant(down.app);
    const res = await post(down.app, key, chatBody());
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("upstream_unavailable");

    const garbage = fakeSseBackend(forwardChat, () => new Response("<html>oops</html>", { status: 500 }));
    const res2 = await post(garbage.app, (await createTenant(garbage.app)).key, chatBody());
    expect(res2.status).toBe(502);
    expect(((await res2.json()) as { error: { type: string } }).error.type).toBe("server_error");
  });
});

describe("stream", () => {
  const events = [chunk(""), chunk("Hel"), chunk("lo"), chunk(null, "stop"), usageChunk(), "[DONE]"];
  const sse = () =>
    new Response(events.map((e) => `data: ${e}\n\n`).join(""), {
      headers: { "content-type": "text/event-stream" },
    });

  it("always asks the backend for usage, and strips the usage chunk when the client did not ask", async () => {
    const backend = fakeSseBackend(forwardChat, sse);
    const { key } = await createTenant(backend.app);
    const res = await post(backend.app, key, chatBody({ stream: true }));
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect(backend.calls[0].body.stream_options).toEqual({ include_usage: true });
    const got = await readEvents(res);
    expect(got).toEqual([chunk(""), chunk("Hel"), chunk("lo"), chunk(null, "stop"), "[DONE]"]);
  });

  it("keeps the usage chunk when the client asked for it", async () => {
    const backend = fakeSseBackend(forwardChat, sse);
    const { key } = await createTenant(backend.app);
    const res = await post(
      backend.app,
      key,
      chatBody({ stream: true, stream_options: { include_usage: true } }),
    );
    expect(await readEvents(res)).toEqual(events);
  });

  it("relays each event as it arrives (no buffering)", async () => {
    const upstream = controlledSse();
    const backend = fakeSseBackend(forwardChat, () => upstream.response);
    const { key } = await createTenant(backend.app);
    upstream.push(chunk("first"));
    const res = await post(backend.app, key, chatBody({ stream: true }));
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    // The backend has sent only one event and keeps the stream open: the client must already see it.
    expect(dec.decode((await reader.read()).value)).toBe(`data: ${chunk("first")}\n\n`);
    upstream.comment("keep-alive");
    expect(dec.decode((await reader.read()).value)).toBe(": keep-alive\n\n");
    upstream.push(chunk("second", "stop"));
    expect(dec.decode((await reader.read()).value)).toBe(`data: ${chunk("second", "stop")}\n\n`);
    upstream.push(usageChunk());
    upstream.push("[DONE]");
    upstream.close();
    let rest = "";
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      rest += dec.decode(r.value);
    }
    expect(rest).toBe("data: [DONE]\n\n");
  });

  it("relays a mid-stream error event and closes", async () => {
    const err = JSON.stringify({
      error: { message: "boom", type: "server_error", param: null, code: "server_error" },
    });
    const backend = fakeSseBackend(
      forwardChat,
      () =>
        new Response(`data: ${chunk("a")}\n\ndata: ${err}\n\n`, {
          headers: { "content-type": "text/event-stream" },
        }),
    );
    const { key } = await createTenant(backend.app);
    expect(await readEvents(await post(backend.app, key, chatBody({ stream: true })))).toEqual([
      chunk("a"),
      err,
    ]);
  });
});
