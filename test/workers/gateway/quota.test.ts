/**
 * Quota stage inside workerd against the real TenantQuota Durable Object: parallel admission never
 * exceeds a limit, the settled total equals the usage the backend reported, and every failure path
 * (backend error, mid-stream break, client leaving) gives back what was not used: a stream cut
 * mid-way is charged exactly what was delivered (start frame's prompt tokens + one per token frame).
 */
import { beforeEach, describe, expect, it } from "vitest";
import { encodeFrame } from "../../../src/protocol/codec.js";
import type { Frame } from "../../../src/protocol/types.js";
import { FRAMES_HEADERS, start, tokens } from "../frames.js";
import { clearOfMinuteEdge, framesAnswer, harness, sseEvents } from "./util.js";

// Reservation of {role:"user", content:"hi"}: utf8("user"+"hi") + 16 per message + 32 = 54, + max_tokens.
const body = (extra: Record<string, unknown> = {}) => ({
  model: "test-model",
  messages: [{ role: "user", content: "hi" }],
  max_tokens: 46,
  ...extra,
});

beforeEach(() => clearOfMinuteEdge());

describe("quota: exact under concurrency", () => {
  it("N parallel requests never exceed tokens-per-minute; settled total == reported usage", async () => {
    let n = 0;
    const reported: number[] = [];
    // Answers are held until every request is decided (admitted: an open reservation; refused: a
    // 429), so no settlement frees room while the requests are admitted.
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const h = harness(async () => {
      await gate;
      const i = n++;
      const usage = { prompt_tokens: 5, completion_tokens: 7 + (i % 30) };
      reported.push(usage.prompt_tokens + usage.completion_tokens);
      return framesAnswer(["a", "b"], usage);
    });
    const { id, key } = await h.tenant({ quota: { tokens_per_minute: 1000, requests_per_minute: 100 } });
    const N = 25;
    let refused = 0;
    const pending = Array.from({ length: N }, (_, i) =>
      h.chat(key, body({ stream: i % 2 === 0 })).then(async (r) => {
        if (r.status === 429) refused++;
        return { r, text: await r.text() };
      }),
    );
    const { env } = await import("cloudflare:workers");
    const ns = (env as unknown as import("../../../workers/env.js").Env).TENANT_QUOTA;
    const open = async () => (await ns.get(ns.idFromName(id)).status()).openReservations;
    while (refused + (await open()) < N) await new Promise((r) => setTimeout(r, 5));
    release();
    const results = await Promise.all(pending);
    const ok = results.filter((x) => x.r.status === 200);
    const limited = results.filter((x) => x.r.status === 429);
    expect(ok.length + limited.length).toBe(N);
    // Each reservation is 100 tokens and none settles while they are admitted: exactly 10 fit.
    expect(ok.length).toBe(10);
    expect(h.calls.length).toBe(ok.length); // refused requests never reached a backend
    for (const { r, text } of limited) {
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(r.headers.get("x-ratelimit-limit-tokens")).toBe("1000");
      expect(JSON.parse(text).error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded" });
    }
    for (const { r } of ok) {
      expect(r.headers.get("x-ratelimit-limit-requests")).toBe("100");
      expect(r.headers.get("RateLimit-Policy")).toContain('"tpm";q=1000;w=60');
      expect(r.headers.get("RateLimit")).toMatch(/"tpm";r=\d+;t=\d+/);
    }
    const u = await h.usage(key);
    const delivered = reported.reduce((a, b) => a + b, 0);
    expect(u.totals.total_tokens).toBe(delivered);
    expect(u.totals.requests).toBe(ok.length);
    expect(u.quota.open_reservations).toBe(0);
    expect(u.quota.open_streams).toBe(0);
    const tpm = u.quota.dimensions.find((d) => d.dimension === "tokens_minute");
    expect(tpm?.remaining).toBe(1000 - delivered);
  });

  it("max concurrent streams: the extra stream gets 429, a slot frees when a stream ends", async () => {
    // Backend answers held per request (by its message), so each is released for the right stream
    // whichever reaches the backend first.
    const pending = new Map<string, (r: Response) => void>();
    const h = harness(
      (_url, _init, call) =>
        new Promise<Response>((resolve) =>
          pending.set((call.body.messages as Array<{ content: string }>)[0].content, resolve),
        ),
    );
    const ask = (who: string) => body({ stream: true, messages: [{ role: "user", content: who }] });
    const answer = (who: string) =>
      pending.get(who)?.(framesAnswer([who], { prompt_tokens: 2, completion_tokens: 1 }));
    const { key } = await h.tenant({ quota: { max_concurrent_streams: 2 } });
    const a = h.chat(key, ask("a"));
    const b = h.chat(key, ask("b"));
    while (pending.size < 2) await new Promise((r) => setTimeout(r, 5));
    const c = await h.chat(key, ask("c"));
    expect(c.status).toBe(429);
    expect(JSON.parse(await c.text()).error.message).toContain("concurrency");
    answer("a");
    await (await a).text();
    await h.settled();
    const d = h.chat(key, ask("d"));
    while (pending.size < 3) await new Promise((r) => setTimeout(r, 5));
    answer("b");
    answer("d");
    expect((await b).status).toBe(200);
    expect((await d).status).toBe(200);
    await (await b).text();
    await (await d).text();
    const u = await h.usage(key);
    expect(u.quota.open_streams).toBe(0);
    expect(u.totals.total_tokens).toBe(9);
  });
});

describe("quota: refunds", () => {
  it("a backend error before output charges nothing", async () => {
    const h = harness(() =>
      Response.json(
        { error: { message: "boom", type: "server_error", param: null, code: null } },
        { status: 500 },
      ),
    );
    const { key } = await h.tenant({ quota: { tokens_per_minute: 1000 } });
    const r = await h.chat(key, body());
    expect(r.status).toBe(500);
    const u = await h.usage(key);
    expect(u.quota.dimensions.find((d) => d.dimension === "tokens_minute")?.remaining).toBe(1000);
    expect(u.totals.errors).toBe(1);
    expect(u.totals.total_tokens).toBe(0);
  });

  it("an unreachable backend gives back the tokens and the request", async () => {
    const h = harness(() => {
      throw new TypeError("connect ECONNREFUSED");
    });
    const { key } = await h.tenant({ quota: { tokens_per_minute: 1000, requests_per_minute: 5 } });
    expect((await h.chat(key, body())).status).toBe(502);
    const u = await h.usage(key);
    const dims = Object.fromEntries(u.quota.dimensions.map((d) => [d.dimension, d.remaining]));
    expect(dims).toMatchObject({ tokens_minute: 1000, requests: 5 });
  });

  it("a backend that dies mid-stream: error event, settled total == the tokens actually delivered", async () => {
    // The backend counts 7 prompt tokens (the edge's estimate is 54), streams 4 tokens - one with an
    // empty delta (bytes held back) - then its connection dies: no end frame, no usage report.
    const frames: Frame[] = [start(7), ...tokens(["par", "", "tial", " out"])];
    const h = harness(() => {
      let i = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(c) {
          if (i < frames.length) c.enqueue(encodeFrame(frames[i++]));
          else c.error(new Error("backend died"));
        },
      });
      return new Response(stream, { headers: FRAMES_HEADERS });
    });
    const { key } = await h.tenant({ quota: { tokens_per_minute: 1000, max_concurrent_streams: 1 } });
    const r = await h.chat(key, body({ stream: true }));
    const events = await sseEvents(r);
    expect(JSON.parse(events.at(-1) ?? "{}").error.code).toBe("upstream_stream_error");
    const chunks = events
      .slice(0, -1)
      .map((e) => JSON.parse(e) as { choices: Array<{ delta: { content?: string } }> });
    const text = chunks.map((c) => c.choices[0].delta.content ?? "").join("");
    expect(text).toBe("partial out");
    const u = await h.usage(key);
    // Exact: 7 prompt tokens + 4 generated tokens, not the 54-token estimate nor the reservation.
    expect(u.totals).toMatchObject({ prompt_tokens: 7, completion_tokens: 4, total_tokens: 11, errors: 1 });
    expect(u.quota.dimensions.find((d) => d.dimension === "tokens_minute")?.remaining).toBe(1000 - 11);
    expect(u.quota.open_streams).toBe(0);
    expect(u.quota.open_reservations).toBe(0);
  });

  it("a backend that dies before any token charges nothing", async () => {
    const h = harness(() => {
      let sent = false;
      const stream = new ReadableStream<Uint8Array>({
        pull(c) {
          if (!sent) {
            sent = true;
            c.enqueue(encodeFrame(start(7)));
          } else c.error(new Error("backend died"));
        },
      });
      return new Response(stream, { headers: FRAMES_HEADERS });
    });
    const { key } = await h.tenant({ quota: { tokens_per_minute: 1000 } });
    const events = await sseEvents(await h.chat(key, body({ stream: true })));
    expect(JSON.parse(events.at(-1) ?? "{}").error.code).toBe("upstream_stream_error");
    const u = await h.usage(key);
    expect(u.totals.total_tokens).toBe(0);
    expect(u.quota.dimensions.find((d) => d.dimension === "tokens_minute")?.remaining).toBe(1000);
  });

  it("a client that leaves mid-stream frees its slot and is charged exactly for what was generated", async () => {
    let cancelled = false;
    const h = harness(() => {
      let sent = false;
      const stream = new ReadableStream<Uint8Array>({
        pull(c) {
          if (!sent) {
            sent = true;
            for (const f of [start(6), ...tokens(["one", "two"])]) c.enqueue(encodeFrame(f));
          }
          return new Promise(() => {}); // then hangs, like a long generation
        },
        cancel() {
          cancelled = true;
        },
      });
      return new Response(stream, { headers: FRAMES_HEADERS });
    });
    const { key } = await h.tenant({ quota: { tokens_per_day: 5000, max_concurrent_streams: 1 } });
    const r = await h.chat(key, body({ stream: true }));
    const reader = r.body!.getReader();
    await reader.read();
    await reader.cancel("client left");
    expect(cancelled).toBe(true);
    const u = await h.usage(key);
    expect(u.quota.open_streams).toBe(0);
    expect(u.quota.open_reservations).toBe(0);
    expect(u.totals).toMatchObject({ aborted: 1, prompt_tokens: 6, completion_tokens: 2 });
    expect(u.quota.dimensions.find((d) => d.dimension === "tokens_day")?.remaining).toBe(5000 - (6 + 2));
  });

  it("a request larger than a whole window is a 400, and refusals charge nothing", async () => {
    const h = harness(() => framesAnswer(["x"], { prompt_tokens: 1, completion_tokens: 1 }));
    const { key } = await h.tenant({ quota: { tokens_per_minute: 80, requests_per_minute: 1 } });
    const big = await h.chat(key, body());
    expect(big.status).toBe(400);
    expect(JSON.parse(await big.text()).error.code).toBe("request_too_large");
    expect((await h.chat(key, body({ max_tokens: 10 }))).status).toBe(200);
    const second = await h.chat(key, body({ max_tokens: 10 }));
    expect(second.status).toBe(429);
    expect(second.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    const u = await h.usage(key);
    expect(u.totals.requests).toBe(1);
    expect(h.calls.length).toBe(1);
  });

  it("with a token limit and no max_tokens, the default bound is sent to the backend", async () => {
    const h = harness(() => framesAnswer(["x"], { prompt_tokens: 1, completion_tokens: 1 }));
    const { key } = await h.tenant({ quota: { tokens_per_month: 100_000 } });
    expect(
      (await h.chat(key, { model: "test-model", messages: [{ role: "user", content: "hi" }] })).status,
    ).toBe(200);
    expect(h.calls[0].body.max_tokens).toBe(1024);
  });
});

describe("quota: admission overlapped with the backend call", () => {
  it("a refusal that arrives after forwarding started aborts the backend call, sends nothing, charges nothing", async () => {
    let aborted = 0;
    let calls = 0;
    const h = harness((_url, init) => {
      calls++;
      init.signal?.addEventListener("abort", () => aborted++);
      return new Promise<Response>((resolve, reject) => {
        // Answer slowly, so the Durable Object's refusal comes first.
        const t = setTimeout(
          () => resolve(framesAnswer(["late"], { prompt_tokens: 1, completion_tokens: 1 })),
          300,
        );
        init.signal?.addEventListener("abort", () => {
          clearTimeout(t);
          reject(new DOMException("aborted", "AbortError"));
        });
      });
    });
    const { id, key } = await h.tenant({ quota: { tokens_per_minute: 10_000 } });
    // Warm-up: the isolate learns a snapshot with plenty of room.
    expect((await h.chat(key, body())).status).toBe(200);
    await h.settled();
    // Another edge location takes (almost) everything, unseen by this isolate's snapshot.
    const { env } = await import("cloudflare:workers");
    const ns = (env as unknown as import("../../../workers/env.js").Env).TENANT_QUOTA;
    const elsewhere = await ns.get(ns.idFromName(id)).reserve({
      id: "other-location",
      tokens: 10_000 - 2 - 50,
      stream: false,
      ttlMs: 60_000,
      limits: { tokensPerMinute: 10_000 },
    });
    expect(elsewhere.ok).toBe(true);
    const res = await h.chat(key, body());
    expect(res.status).toBe(429);
    expect(JSON.parse(await res.text()).error.code).toBe("rate_limit_exceeded");
    expect(calls).toBe(2); // it was forwarded (overlapped) ...
    expect(aborted).toBe(1); // ... and the backend call was aborted
    const u = await h.usage(key);
    expect(u.totals.requests).toBe(1);
    expect(u.totals.total_tokens).toBe(2);
    expect(u.quota.open_reservations).toBe(1); // only the other location's
  });

  it("bursts fall back to strict admission: few refused requests reach a backend; totals stay exact", async () => {
    // Burst answers are held until every request of the burst is decided (admitted: an open
    // reservation; refused: a 429), so no settlement frees room while the burst is admitted.
    let release: () => void = () => {};
    let gate: Promise<void> = Promise.resolve();
    const h = harness(
      (_url, init) =>
        new Promise<Response>((resolve, reject) => {
          init.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
          void gate.then(() => resolve(framesAnswer(["ok"], { prompt_tokens: 5, completion_tokens: 7 })));
        }),
    );
    const { id, key } = await h.tenant({ quota: { tokens_per_minute: 1000 } });
    expect((await h.chat(key, body())).status).toBe(200);
    await h.settled();
    gate = new Promise((r) => {
      release = r;
    });
    let refused = 0;
    const burst = Array.from({ length: 20 }, () =>
      h.chat(key, body()).then((r) => {
        if (r.status === 429) refused++;
        return r;
      }),
    );
    const { env } = await import("cloudflare:workers");
    const ns = (env as unknown as import("../../../workers/env.js").Env).TENANT_QUOTA;
    const open = async () => (await ns.get(ns.idFromName(id)).status()).openReservations;
    while (refused + (await open()) < 20) await new Promise((r) => setTimeout(r, 5));
    release();
    const results = await Promise.all(burst);
    const ok = results.filter((r) => r.status === 200).length;
    expect(ok).toBe(9); // (1000 - 12) / 100 reservations fit, exactly
    expect(h.calls.length - 1).toBeLessThanOrEqual(ok + 4); // at most the overlap budget was wasted
    const u = await h.usage(key);
    // Refused calls that reached a backend were aborted before any answer: only admitted ones count.
    expect(u.totals.total_tokens).toBe(12 * (1 + ok));
    expect(u.quota.dimensions.find((d) => d.dimension === "tokens_minute")?.remaining).toBe(
      1000 - u.totals.total_tokens,
    );
  });
});
