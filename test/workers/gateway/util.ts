/** Helpers for the gateway tests: an app over a (possibly customised) env, with an execution context. */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { InternalRequest } from "../../../src/protocol/types.js";
import { createApp } from "../../../workers/app.js";
import type { Env } from "../../../workers/env.js";
import type { FetchLike } from "../../../workers/upstream/target.js";
import { decodeCall } from "../frames.js";

export { framesAnswer } from "../frames.js";

export const ADMIN = "test-admin-token";

/** What a backend double received: the frame protocol's envelope and the OpenAI request inside. */
export interface BackendCall {
  url: string;
  /** The OpenAI request (empty for health checks). */
  body: Record<string, unknown>;
  /** The envelope (null for health checks). */
  req: InternalRequest | null;
}

/** A backend double: gets each call decoded; answers frames (or a JSON refusal, or health). */
export type Backend = (url: string, init: RequestInit, call: BackendCall) => Response | Promise<Response>;

export interface Harness {
  env: Env;
  calls: BackendCall[];
  /** Send a request; `settled()` waits for background work (settlement, cache fill). */
  send(path: string, init?: RequestInit): Promise<Response>;
  settled(): Promise<void>;
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  tenant(settings?: Record<string, unknown>): Promise<{ id: string; key: string }>;
  chat(key: string, body: Record<string, unknown>, headers?: Record<string, string>): Promise<Response>;
  usage(key: string): Promise<UsageBody>;
}

export interface UsageBody {
  totals: Record<string, number>;
  by_model: Array<Record<string, number | string>>;
  quota: {
    dimensions: Array<{ dimension: string; limit: number; remaining: number }>;
    open_reservations: number;
    open_streams: number;
  };
}

export function harness(backend: Backend, vars: Partial<Env> = {}): Harness {
  const e = { ...(env as unknown as Env), ...vars } as Env;
  const calls: Harness["calls"] = [];
  const fetch: FetchLike = async (url, init) => {
    const req = init.body instanceof Uint8Array ? decodeCall(init) : null;
    const call: BackendCall = { url, body: (req?.request as Record<string, unknown>) ?? {}, req };
    calls.push(call);
    return backend(url, init, call);
  };
  const app = createApp({ fetch });
  const ctxs: ExecutionContext[] = [];
  const h: Harness = {
    env: e,
    calls,
    async send(path, init = {}) {
      const ctx = createExecutionContext();
      ctxs.push(ctx);
      return app.request(`http://edge.test${path}`, init, e, ctx);
    },
    async settled() {
      // Settlements may schedule more work (a cache fill after a settle): drain until quiet.
      for (let i = 0; i < 3; i++) {
        const all = ctxs.splice(0);
        await Promise.all(all.map((c) => waitOnExecutionContext(c)));
      }
    },
    admin(method, path, body) {
      return h.send(`/admin${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    },
    async tenant(settings) {
      const id = `t${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;
      const res = await h.admin("POST", "/tenants", { name: id, id });
      if (res.status !== 201) throw new Error(`create tenant: ${res.status} ${await res.text()}`);
      const { api_key } = (await res.json()) as { api_key: string };
      if (settings) {
        const p = await h.admin("PATCH", `/tenants/${id}`, settings);
        if (p.status !== 200) throw new Error(`patch tenant: ${p.status} ${await p.text()}`);
      }
      return { id, key: api_key };
    },
    chat(key, body, headers = {}) {
      return h.send("/v1/chat/completions", {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      });
    },
    async usage(key) {
      await h.settled();
      const res = await h.send("/v1/usage", { headers: { authorization: `Bearer ${key}` } });
      if (res.status !== 200) throw new Error(`usage: ${res.status} ${await res.text()}`);
      return (await res.json()) as UsageBody;
    },
  };
  return h;
}

/** SSE events (data payloads) of a response body. */
export async function sseEvents(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((b) => b.startsWith("data: "))
    .map((b) => b.slice(6));
}

export function streamedText(events: string[]): string {
  return events
    .filter((e) => e !== "[DONE]")
    .map((e) => JSON.parse(e) as { choices?: Array<{ delta?: { content?: string } }> })
    .map((c) => c.choices?.[0]?.delta?.content ?? "")
    .join("");
}

/**
 * Quota windows are fixed UTC minutes: a test that asserts exact per-minute counters must not run
 * across a minute boundary. Wait for the next minute when fewer than `marginMs` remain.
 */
export async function clearOfMinuteEdge(marginMs = 4000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + 50));
}
