/**
 * The gateway against the real backend under `wrangler dev`: quota exactness with parallel streams,
 * prompt-cache replay of a real answer, and a client leaving mid-stream. (Under `wrangler dev` the
 * disconnect does not reach the worker: the edge reads ahead, the generation completes and settles.)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI, { RateLimitError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeModel } from "../../gpu-backend/tools/make-model.js";
import { createTenant, type Stack, startStack } from "../../scripts/stack.js";

const ADMIN = "e2e-gw-admin";
let work = "";
let stack: Stack;

async function admin(method: string, path: string, body?: unknown) {
  const res = await fetch(`${stack.edgeUrl}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function tenant(name: string, patch: unknown) {
  const t = await createTenant(stack.edgeUrl, ADMIN, name);
  await admin("PATCH", `/tenants/${t.tenantId}`, patch);
  return { ...t, client: new OpenAI({ baseURL: `${stack.edgeUrl}/v1`, apiKey: t.apiKey, maxRetries: 0 }) };
}

interface Usage {
  totals: Record<string, number>;
  quota: {
    dimensions: Array<{ dimension: string; remaining: number }>;
    open_streams: number;
    open_reservations: number;
  };
}

async function usage(apiKey: string): Promise<Usage> {
  const res = await fetch(`${stack.edgeUrl}/v1/usage`, { headers: { authorization: `Bearer ${apiKey}` } });
  return (await res.json()) as Usage;
}

/** Settlement runs after the last byte (waitUntil): poll until nothing is open. */
async function settledUsage(apiKey: string): Promise<Usage> {
  for (let i = 0; i < 200; i++) {
    const u = await usage(apiKey);
    if (u.quota.open_reservations === 0) return u;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("reservations never settled");
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "moe-e2e-gw-"));
  const modelDir = join(work, "tiny-llama4");
  makeModel({ family: "llama4", preset: "tiny", out: modelDir, seed: 1 });
  stack = await startStack({
    modelDir,
    stateDir: join(work, "state"),
    adminToken: ADMIN,
    backendSecret: "e2e-gw-secret",
    licenseFamily: "unspecified",
    threads: 1,
    echo: false,
  });
});

afterAll(async () => {
  await stack?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const ask = (i: number) => [{ role: "user" as const, content: `Count to ${i}.` }];

describe("gateway with the real backend", () => {
  it("parallel streams never exceed tokens-per-minute; the settled total equals the usage the client saw", async () => {
    // Each reservation: utf8("user"+"Count to N.") + 16 + 32 + max_tokens 8 = 71 tokens -> at most 4 fit in 300.
    // Per-minute counters are exact within one UTC minute: do not start right before its end.
    const left = 60_000 - (Date.now() % 60_000);
    if (left < 8000) await new Promise((r) => setTimeout(r, left + 50));
    const t = await tenant("quota", { quota: { tokens_per_minute: 300 } });
    const results = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        try {
          const stream = await t.client.chat.completions.create(
            {
              model: stack.modelId,
              messages: ask(i),
              max_tokens: 8,
              stream: true,
              stream_options: { include_usage: true },
            },
            { headers: { "x-prompt-cache": "bypass" } },
          );
          let total = 0;
          for await (const chunk of stream) if (chunk.usage) total = chunk.usage.total_tokens;
          return { ok: true, total };
        } catch (err) {
          expect(err).toBeInstanceOf(RateLimitError);
          return { ok: false, total: 0 };
        }
      }),
    );
    const ok = results.filter((r) => r.ok);
    expect(ok.length).toBeGreaterThan(0);
    expect(ok.length).toBeLessThanOrEqual(4);
    expect(results.length - ok.length).toBeGreaterThan(0);
    const delivered = ok.reduce((a, r) => a + r.total, 0);
    const u = await settledUsage(t.apiKey);
    expect(u.totals.total_tokens).toBe(delivered);
    expect(u.quota.dimensions.find((d) => d.dimension === "tokens_minute")?.remaining).toBe(300 - delivered);
    expect(u.quota.open_streams).toBe(0);
  });

  it("a deterministic answer is replayed from the prompt cache with the same content, free of quota", async () => {
    const t = await tenant("cache", { quota: { tokens_per_day: 100_000 } });
    const messages = [
      { role: "system", content: "You are terse." },
      { role: "user", content: "Tell me about mixtures of experts." },
    ];
    const body = { model: stack.modelId, messages, max_tokens: 10, temperature: 0, stream: true };
    const call = () =>
      fetch(`${stack.edgeUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const text = async (res: Response) =>
      (await res.text())
        .split("\n\n")
        .filter((l) => l.startsWith("data: {"))
        .map(
          (l) =>
            (JSON.parse(l.slice(6)) as { choices: Array<{ delta?: { content?: string } }> }).choices[0]?.delta
              ?.content ?? "",
        )
        .join("");
    const first = await call();
    expect(first.headers.get("x-prompt-cache")).toBe("MISS");
    const firstText = await text(first);
    expect(firstText.length).toBeGreaterThan(0);
    const before = await settledUsage(t.apiKey);
    let second: Response | null = null;
    for (let i = 0; i < 50; i++) {
      second = await call(); // the fill is written after the first answer ended
      if (second.headers.get("x-prompt-cache") === "HIT") break;
      await second.text();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(second?.headers.get("x-prompt-cache")).toBe("HIT");
    expect(await text(second as Response)).toBe(firstText);
    const after = await settledUsage(t.apiKey);
    const tpd = (u: Usage) => u.quota.dimensions.find((d) => d.dimension === "tokens_day")?.remaining;
    expect(after.totals.cache_hits).toBe(1);
    expect(after.totals.cached_tokens).toBeGreaterThan(0);
    expect(after.totals.total_tokens).toBe(before.totals.total_tokens);
    expect(tpd(after)).toBe(tpd(before));
  });

  it("a client that leaves mid-stream does not hold its stream slot; it is charged at most its reservation", async () => {
    const t = await tenant("abort", { quota: { tokens_per_day: 100_000, max_concurrent_streams: 1 } });
    const ac = new AbortController();
    const content = "Tell me about mixtures of experts.";
    const res = await fetch(`${stack.edgeUrl}/v1/chat/completions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${t.apiKey}`,
        "content-type": "application/json",
        "x-prompt-cache": "bypass",
      },
      body: JSON.stringify({
        model: stack.modelId,
        messages: [{ role: "user", content }],
        max_tokens: 200,
        stream: true,
      }),
      signal: ac.signal,
    });
    await res.body!.getReader().read();
    ac.abort();
    const u = await settledUsage(t.apiKey);
    expect(u.quota.open_streams).toBe(0);
    const used = 100_000 - (u.quota.dimensions.find((d) => d.dimension === "tokens_day")?.remaining ?? 0);
    const reservation = new TextEncoder().encode(`user${content}`).length + 16 + 32 + 200;
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThanOrEqual(reservation);
    expect(used).toBe(u.totals.total_tokens);
    // The slot is free again: the next stream is admitted.
    const next = await t.client.chat.completions.create({
      model: stack.modelId,
      messages: ask(8),
      max_tokens: 2,
      stream: true,
    });
    for await (const _ of next) {
    }
  });
});
