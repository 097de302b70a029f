/**
 * Faults on a real server with the tiny model: cancellation mid-prefill, a client that stops
 * reading, a burst of 200 requests against a small server, keep-alives during a long prefill,
 * a generation failing mid-stream. After each, the scheduler must be idle: nothing running or
 * queued and no KV held.
 */
import { type IncomingMessage, request } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Engine } from "../../../gpu-backend/engine/types.js";
import { createServerApp } from "../../../gpu-backend/server/app.js";
import { signRequest } from "../../../src/signing.js";
import { CharTokenizer } from "./fake-engine.js";
import { idle, makeTinyModel, metric, startServer, until } from "./real-server.js";
import { jsonEvents, sseEvents } from "./sse.js";

let model: ReturnType<typeof makeTinyModel>;
beforeAll(() => {
  model = makeTinyModel();
});
afterAll(() => model.cleanup());

/** Small prefill chunks, so a long prompt takes many steps (the window the tests act in). */
const SLOW_PREFILL = { engine: { scheduler: { stepTokens: 8 } } };

/** A prompt of about `tokens` tokens for this tokenizer. */
function longPrompt(tokenize: (s: string) => number[], tokens: number): string {
  const words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu ".repeat(4);
  let text = "";
  while (tokenize(text).length < tokens) text += words;
  return text;
}

const completion = (prompt: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: "tiny", prompt, temperature: 0, max_tokens: 4, ignore_eos: true, ...extra });

it("a request cancelled mid-prefill frees its sequence and KV", async () => {
  const s = await startServer(model.dir, SLOW_PREFILL);
  try {
    const prompt = longPrompt((t) => s.engine.tokenizer.encode(t, true), 3000);
    const steps0 = s.engine.scheduler.stats().steps;
    const ac = new AbortController();
    const res = await fetch(`${s.url}/v1/completions`, {
      method: "POST",
      body: completion(prompt, { stream: true }),
      signal: ac.signal,
    });
    expect(res.status).toBe(200);
    // Prefill is under way: steps run, KV grows, and no token has come out.
    await until(() => s.engine.scheduler.stats().steps >= steps0 + 5, 5000, "prefill steps");
    const during = s.engine.scheduler.stats();
    expect(during.running).toBe(1);
    expect(during.kvBytes).toBeGreaterThan(0);
    expect(during.steps - steps0).toBeLessThan(3000 / 8 - 10); // far from the end of the prompt
    ac.abort();
    await until(() => idle(s.engine), 3000, "idle after abort");
    const stepsAfter = s.engine.scheduler.stats().steps;
    await new Promise((r) => setTimeout(r, 50));
    expect(s.engine.scheduler.stats().steps).toBe(stepsAfter); // nothing kept computing
    const text = await (await fetch(`${s.url}/metrics`)).text();
    // A labelled counter never incremented has no sample: no token was generated.
    expect(metric(text, "moe_generated_tokens_total", { endpoint: "completion" }) ?? 0).toBe(0);
    expect(metric(text, "moe_requests_total", { endpoint: "completion", outcome: "aborted" })).toBe(1);
    // And the server still serves.
    const ok = await fetch(`${s.url}/v1/completions`, { method: "POST", body: completion("hello") });
    expect(ok.status).toBe(200);
    expect(idle(s.engine)).toBe(true);
  } finally {
    await s.close();
  }
});

it("a client that stops reading: the server's writes wait for the socket (bounded buffering)", async () => {
  // An engine that never ends and counts what the server took from it: with a stalled client the
  // server must stop pulling once the socket buffers are full, not keep buffering in memory.
  let pulled = 0;
  let aborted = false;
  const chunk = "x".repeat(4096);
  const engine: Engine = {
    modelId: "endless",
    contextLength: 1 << 30,
    vocabSize: 0x110000,
    tokenizer: new CharTokenizer(),
    async *generate(_ids, _params, signal) {
      while (!signal?.aborted) {
        pulled++;
        yield { tokenId: 120, text: chunk };
      }
      aborted = true;
      return { finishReason: "length", promptTokens: 1, completionTokens: pulled, cachedTokens: 0 };
    },
  };
  const app = createServerApp(engine, { allowUnsigned: true });
  const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 });
  await new Promise((r) => server.once("listening", r));
  const { port } = server.address() as AddressInfo;
  try {
    const req = request({ host: "127.0.0.1", port, path: "/v1/completions", method: "POST" });
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      req.on("response", resolve);
      req.on("error", reject);
      req.end(JSON.stringify({ model: "endless", prompt: "go", stream: true, max_tokens: 1 << 29 }));
    });
    expect(res.statusCode).toBe(200);
    res.pause(); // stop reading
    let last = -1;
    const deadline = Date.now() + 5000;
    while (pulled !== last && Date.now() < deadline) {
      last = pulled;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(pulled).toBe(last); // the server stopped pulling: its writes wait for the socket
    // What it took is about what the socket buffers hold (a few MB), not an ever-growing queue.
    expect(pulled * chunk.length).toBeLessThan(64 * 1024 * 1024);
    res.destroy();
    await until(() => aborted, 3000, "generation aborted after the socket closed");
  } finally {
    server.close();
  }
});

it("a stalled client closing its socket frees the real engine's sequence and KV", async () => {
  const s = await startServer(model.dir);
  try {
    const url = new URL(`${s.url}/v1/completions`);
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: "POST" });
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      req.on("response", resolve);
      req.on("error", reject);
      req.end(completion("stall", { stream: true, max_tokens: 3000 }));
    });
    expect(res.statusCode).toBe(200);
    res.pause(); // stop reading
    await until(() => s.engine.scheduler.stats().steps > 20, 3000, "decoding");
    expect(s.engine.scheduler.stats().running).toBe(1);
    res.destroy();
    await until(() => idle(s.engine), 3000, "idle after the socket closed");
    const text = await (await fetch(`${s.url}/metrics`)).text();
    expect(metric(text, "moe_requests_total", { endpoint: "completion", outcome: "aborted" })).toBe(1);
    expect(metric(text, "moe_requests_in_flight", { endpoint: "completion" })).toBe(0);
  } finally {
    await s.close();
  }
});

it("a burst of 200 requests: each gets a whole stream or a clean 503/429; the server recovers", async () => {
  const SECRET = "burst";
  const s = await startServer(
    model.dir,
    { engine: { scheduler: { maxRunning: 4, maxQueued: 8 } } },
    { secret: SECRET },
  );
  try {
    const path = "/v1/chat/completions";
    const one = async (i: number) => {
      const tenant = `t${i % 5}`;
      const body = JSON.stringify({
        model: "tiny",
        messages: [{ role: "user", content: `request ${i}` }],
        temperature: 0,
        max_tokens: 6,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      });
      const headers = {
        ...(await signRequest(SECRET, { method: "POST", path, body, tenant })),
        "x-moe-tenant-max-inflight": "3",
      };
      const res = await fetch(`${s.url}${path}`, { method: "POST", headers, body });
      if (res.status !== 200) {
        const err = (await res.json()) as { error: { type: string; code: string } };
        return { status: res.status, retryAfter: res.headers.get("retry-after"), code: err.error.code };
      }
      const text = await res.text();
      const data = sseEvents(text);
      const events = jsonEvents(text);
      const usage = events.at(-1)?.usage as { completion_tokens: number } | undefined;
      return { status: 200, complete: data.at(-1) === "[DONE]" && usage?.completion_tokens === 6 };
    };
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => one(i)));
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status !== 200);
    expect(ok.length).toBeGreaterThan(0);
    for (const r of ok) expect(r.complete).toBe(true);
    for (const r of refused) {
      expect([429, 503]).toContain(r.status);
      expect(r.retryAfter).toBe("1");
      expect(r.code).toBe(r.status === 429 ? "tenant_concurrency_exceeded" : "server_busy");
    }
    await until(() => idle(s.engine), 3000, "idle after the burst");
    const text = await (await fetch(`${s.url}/metrics`)).text();
    const count = (labels: Record<string, string>) => metric(text, "moe_requests_total", labels) ?? 0;
    expect(count({ endpoint: "chat", outcome: "ok" })).toBe(ok.length);
    expect(count({ endpoint: "chat", outcome: "rejected", status: "503" })).toBe(
      refused.filter((r) => r.status === 503).length,
    );
    expect(count({ endpoint: "chat", outcome: "rejected", status: "429" })).toBe(
      refused.filter((r) => r.status === 429).length,
    );
    // Still serving.
    const body = JSON.stringify({
      model: "tiny",
      messages: [{ role: "user", content: "after" }],
      max_tokens: 3,
    });
    const after = await fetch(`${s.url}${path}`, {
      method: "POST",
      headers: await signRequest(SECRET, { method: "POST", path, body, tenant: "t0" }),
      body,
    });
    expect(after.status).toBe(200);
    expect(idle(s.engine)).toBe(true);
  } finally {
    await s.close();
  }
});

it("keep-alive comments flow during a long prefill, before the first token", async () => {
  const s = await startServer(model.dir, SLOW_PREFILL, { allowUnsigned: true, keepAliveMs: 10 });
  try {
    const prompt = longPrompt((t) => s.engine.tokenizer.encode(t, true), 1200);
    const res = await fetch(`${s.url}/v1/completions`, {
      method: "POST",
      body: completion(prompt, { stream: true, max_tokens: 2 }),
    });
    const text = await res.text();
    const firstToken = text.indexOf('"text":');
    const firstKeepAlive = text.indexOf(": keep-alive\n\n");
    expect(firstKeepAlive).toBeGreaterThanOrEqual(0);
    expect(firstKeepAlive).toBeLessThan(firstToken);
    expect(sseEvents(text).at(-1)).toBe("[DONE]");
    expect(idle(s.engine)).toBe(true);
  } finally {
    await s.close();
  }
});

it("a generation failing mid-stream ends with an error event (no [DONE]) and frees the sequence", async () => {
  const s = await startServer(model.dir);
  try {
    const model$ = s.engine.model;
    const forward = model$.forwardBatch.bind(model$);
    let calls = 0;
    model$.forwardBatch = async (items) => {
      if (++calls === 4) throw new Error("device lost");
      return forward(items);
    };
    const res = await fetch(`${s.url}/v1/completions`, {
      method: "POST",
      body: completion("fail soon", { stream: true, max_tokens: 20 }),
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    const data = sseEvents(text);
    expect(data).not.toContain("[DONE]");
    const last = JSON.parse(data.at(-1)!) as { error?: { type: string; message: string } };
    expect(last.error?.type).toBe("server_error");
    expect(last.error?.message).toContain("device lost");
    expect(idle(s.engine)).toBe(true);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    // The prefill step and two decode steps gave tokens before the fourth step failed.
    expect(metric(metrics, "moe_generated_tokens_total", { endpoint: "completion" })).toBe(3);
    expect(
      metric(metrics, "moe_requests_total", { endpoint: "completion", outcome: "error", status: "500" }),
    ).toBe(1);
    const ok = await fetch(`${s.url}/v1/completions`, { method: "POST", body: completion("then fine") });
    expect(ok.status).toBe(200);
  } finally {
    await s.close();
  }
});
