/**
 * The serving surface on the real tiny model: /health (loading, then load report), /metrics
 * (exact counters), engine admission errors mapped to HTTP (503 + Retry-After before any
 * stream), per-tenant in-flight caps (429 + Retry-After), oversized bodies and absurd max_tokens.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { MoeEngine } from "../../../gpu-backend/engine/engine.js";
import { loadEngine } from "../../../gpu-backend/engine/load-engine.js";
import { createServerApp } from "../../../gpu-backend/server/app.js";
import { signRequest } from "../../../src/signing.js";
import { idle, makeTinyModel, metric, type RealServer, startServer, until } from "./real-server.js";
import { jsonEvents } from "./sse.js";

let model: ReturnType<typeof makeTinyModel>;
beforeAll(() => {
  model = makeTinyModel();
});
afterAll(() => model.cleanup());

const chat = (content: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    model: "tiny",
    messages: [{ role: "user", content }],
    temperature: 0,
    max_tokens: 8,
    ignore_eos: true,
    ...extra,
  });

const post = (s: RealServer, body: string, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(`${s.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
    signal,
  });

it("/health answers 503 while the weights load, then 200 with the load report", async () => {
  let resolve!: (e: MoeEngine) => void;
  const pending = new Promise<MoeEngine>((r) => (resolve = r));
  const app = createServerApp(pending, { allowUnsigned: true });
  const before = await app.request("/health");
  expect(before.status).toBe(503);
  expect(before.headers.get("retry-after")).toBe("1");
  const engine = await loadEngine(model.dir, {
    threads: 1,
    device: "cpu",
    modelId: "tiny",
    engine: { scheduler: { maxRunning: 3, maxQueued: 5 } },
  });
  resolve(engine);
  await pending;
  const res = await app.request("/health");
  expect(res.status).toBe(200);
  const h = (await res.json()) as Record<string, number | string>;
  expect(h).toMatchObject({
    status: "ok",
    model: "tiny",
    load: 0,
    queued: 0,
    running: 0,
    max_running: 3,
    max_queued: 5,
    kv_bytes: 0,
    expert_cache_warmth: 1, // eager provider: every expert resident
  });
  expect(res.headers.get("x-backend-load")).toBe("0");
  engine.close();
});

it("/metrics counts tokens, requests and prefix-cache hits exactly", async () => {
  const s = await startServer(model.dir, { engine: { prefixBlockTokens: 16 } });
  try {
    // A prompt long enough for whole prefix-cache blocks; the second identical request reuses them.
    const prompt = "the quick brown fox jumps over the lazy dog ".repeat(6);
    const usages: {
      prompt_tokens: number;
      completion_tokens: number;
      prompt_tokens_details: { cached_tokens: number };
    }[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await post(s, chat(prompt, { stream: true, stream_options: { include_usage: true } }));
      const events = jsonEvents(await res.text());
      usages.push(events.at(-1)!.usage as (typeof usages)[number]);
    }
    expect(usages[0].prompt_tokens_details.cached_tokens).toBe(0);
    expect(usages[1].prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
    const res = await fetch(`${s.url}/metrics`);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    const sum = (k: "prompt_tokens" | "completion_tokens") => usages.reduce((a, u) => a + u[k], 0);
    expect(metric(text, "moe_generated_tokens_total", { endpoint: "chat" })).toBe(sum("completion_tokens"));
    expect(metric(text, "moe_prompt_tokens_total", { endpoint: "chat" })).toBe(sum("prompt_tokens"));
    expect(metric(text, "moe_cached_prompt_tokens_total", { endpoint: "chat" })).toBe(
      usages[1].prompt_tokens_details.cached_tokens,
    );
    expect(
      metric(text, "moe_requests_total", {
        endpoint: "chat",
        outcome: "ok",
        status: "200",
        finish_reason: "length",
      }),
    ).toBe(2);
    expect(metric(text, "moe_time_to_first_token_seconds_count", { endpoint: "chat" })).toBe(2);
    expect(metric(text, "moe_inter_token_latency_seconds_count", { endpoint: "chat" })).toBe(
      sum("completion_tokens") - 2,
    );
    const pc = s.engine.prefixCache!.stats();
    expect(metric(text, "moe_prefix_cache_hit_tokens_total")).toBe(pc.hitTokens);
    expect(pc.hitTokens).toBe(usages[1].prompt_tokens_details.cached_tokens);
    expect(metric(text, "moe_prefix_cache_blocks")).toBe(pc.blocks);
    expect(metric(text, "moe_prefix_cache_bytes")).toBe(pc.bytes);
    expect(metric(text, "moe_scheduler_running")).toBe(0);
    expect(metric(text, "moe_scheduler_queued")).toBe(0);
    expect(metric(text, "moe_kv_bytes")).toBe(0);
    expect(metric(text, "moe_scheduler_steps_total")).toBe(s.engine.scheduler.stats().steps);
    expect(metric(text, "moe_batch_sequences")).toBe(1);
    expect(metric(text, "moe_expert_hits_total")).toBe(s.engine.experts.stats().hits);
  } finally {
    await s.close();
  }
});

it("the lazy expert store's metrics are part of /metrics", async () => {
  const s = await startServer(model.dir, { expertBudget: "50%" });
  try {
    await (await post(s, chat("hello there"))).text();
    const text = await (await fetch(`${s.url}/metrics`)).text();
    const st = s.engine.experts.stats();
    expect(metric(text, "moe_expert_misses_total", { model: "tiny" })).toBe(st.misses);
    expect(metric(text, "moe_expert_budget_bytes", { model: "tiny" })).toBe(st.budget_bytes);
    expect(text).toContain('moe_expert_layer_hits_total{model="tiny",layer="0"}');
    const h = (await (await fetch(`${s.url}/health`)).json()) as Record<string, number>;
    expect(h.expert_budget_bytes).toBe(st.budget_bytes);
    expect(h.expert_cache_warmth).toBeCloseTo(st.resident_bytes / st.budget_bytes, 10);
    expect(h.expert_cache_warmth).toBeGreaterThan(0);
  } finally {
    await s.close();
  }
});

it("a full engine answers 503 with Retry-After before any stream; the server recovers", async () => {
  const s = await startServer(model.dir, { engine: { scheduler: { maxRunning: 1, maxQueued: 0 } } });
  try {
    const ac = new AbortController();
    const long = await post(s, chat("a long one", { max_tokens: 2000, stream: true }), {}, ac.signal);
    expect(long.status).toBe(200);
    const reader = long.body!.getReader();
    await reader.read();
    const busy = await post(s, chat("second", { stream: true }));
    expect(busy.status).toBe(503);
    expect(busy.headers.get("retry-after")).toBe("1");
    expect(busy.headers.get("content-type")).toContain("application/json");
    const body = (await busy.json()) as { error: { type: string; code: string } };
    expect(body.error).toMatchObject({ type: "server_error", code: "server_busy" });
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(
      metric(metrics, "moe_requests_total", { endpoint: "chat", outcome: "rejected", status: "503" }),
    ).toBe(1);
    ac.abort();
    await until(() => idle(s.engine), 3000, "idle scheduler");
    const ok = await post(s, chat("third"));
    expect(ok.status).toBe(200);
  } finally {
    await s.close();
  }
});

it("per-tenant in-flight caps from the signed request: 429 with Retry-After, other tenants unaffected", async () => {
  const SECRET = "s3cret";
  const s = await startServer(model.dir, {}, { secret: SECRET });
  const signed = async (tenant: string, body: string, cap?: number) => ({
    ...(await signRequest(SECRET, { method: "POST", path: "/v1/chat/completions", body, tenant })),
    ...(cap !== undefined ? { "x-moe-tenant-max-inflight": String(cap) } : {}),
  });
  try {
    const ac = new AbortController();
    const b1 = chat("first", { max_tokens: 2000, stream: true });
    const first = await post(s, b1, await signed("acme", b1, 1), ac.signal);
    expect(first.status).toBe(200);
    await first.body!.getReader().read();
    const b2 = chat("second");
    const refused = await post(s, b2, await signed("acme", b2, 1));
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
      "tenant_concurrency_exceeded",
    );
    const b3 = chat("other tenant");
    expect((await post(s, b3, await signed("globex", b3, 1))).status).toBe(200);
    // The cap is the edge's to set: unsigned callers cannot smuggle one, and a bad value is a 400.
    const b4 = chat("bad cap");
    const bad = await post(s, b4, { ...(await signed("initech", b4)), "x-moe-tenant-max-inflight": "zero" });
    expect(bad.status).toBe(400);
    ac.abort();
    await until(() => idle(s.engine), 3000, "idle scheduler");
    const b5 = chat("after");
    expect((await post(s, b5, await signed("acme", b5, 1))).status).toBe(200);
  } finally {
    await s.close();
  }
});

it("n choices: each as a request of its own with seed + i would give, usage counting the prompt once", async () => {
  const s = await startServer(model.dir, {}, { allowUnsigned: true });
  try {
    type Reply = {
      choices: { index: number; message: { content: string }; finish_reason: string }[];
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    };
    const sampled = { temperature: 1, seed: 41, max_tokens: 6 };
    const three = (await (await post(s, chat("tell me more", { ...sampled, n: 3 }))).json()) as Reply;
    expect(three.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    let completion = 0;
    for (const [i, choice] of three.choices.entries()) {
      const alone = (await (
        await post(s, chat("tell me more", { ...sampled, seed: 41 + i }))
      ).json()) as Reply;
      expect(choice.message.content).toBe(alone.choices[0].message.content);
      expect(three.usage.prompt_tokens).toBe(alone.usage.prompt_tokens);
      completion += alone.usage.completion_tokens;
    }
    expect(three.usage.completion_tokens).toBe(completion);
    expect(three.usage.total_tokens).toBe(three.usage.prompt_tokens + completion);
    expect(new Set(three.choices.map((c) => c.message.content)).size).toBeGreaterThan(1);
    expect(idle(s.engine)).toBe(true);
    // A client leaving an n = 3 stream frees all three sequences.
    const ac = new AbortController();
    const long = await post(s, chat("long", { n: 3, max_tokens: 2000, stream: true }), {}, ac.signal);
    await long.body!.getReader().read();
    const held = s.engine.scheduler.stats();
    expect(held.running + held.queued).toBe(3); // (the later choices wait for the first's prefill)
    ac.abort();
    await until(() => idle(s.engine), 3000, "the three sequences freed");
    // Beyond what the scheduler holds, the request is refused whole (nothing left running).
    const small = await startServer(model.dir, { engine: { scheduler: { maxRunning: 1, maxQueued: 1 } } });
    try {
      const refused = await post(small, chat("too many", { n: 3 }));
      expect(refused.status).toBe(503);
      expect(idle(small.engine)).toBe(true);
    } finally {
      await small.close();
    }
  } finally {
    await s.close();
  }
});

it("oversized bodies get 413, absurd max_tokens and n > 16 get 400, all as OpenAI errors", async () => {
  const s = await startServer(model.dir, {}, { allowUnsigned: true, maxBodyBytes: 10_000 });
  try {
    const big = await post(s, chat("x".repeat(20_000)));
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe("request_too_large");
    const absurd = await post(s, chat("hi", { max_tokens: 1e12 }));
    expect(absurd.status).toBe(400);
    expect(((await absurd.json()) as { error: { code: string; param: string } }).error).toMatchObject({
      code: "context_length_exceeded",
      param: "max_tokens",
    });
    const n = await post(s, chat("hi", { n: 17 }));
    expect(n.status).toBe(400);
    const temp = await post(s, chat("hi", { temperature: 7 }));
    expect(temp.status).toBe(400);
    expect(idle(s.engine)).toBe(true);
  } finally {
    await s.close();
  }
});

it("generation responses carry x-backend-load for the edge router", async () => {
  const s = await startServer(model.dir, { engine: { scheduler: { maxRunning: 2, maxQueued: 2 } } });
  try {
    const ac = new AbortController();
    const long = await post(s, chat("long", { max_tokens: 2000, stream: true }), {}, ac.signal);
    expect(long.headers.get("x-backend-load")).toBe("0.25"); // itself: 1 of 4 slots
    await long.body!.getReader().read();
    const short = await post(s, chat("short"));
    expect(short.headers.get("x-backend-load")).toBe("0.25"); // measured after it finished
    ac.abort();
    await until(() => idle(s.engine), 3000, "idle");
  } finally {
    await s.close();
  }
});
