/** Shared helpers for the edge tests: a recording backend double and tenant/key setup. */
import { env } from "cloudflare:workers";
import { Hono } from "hono";
import type { InternalRequest } from "../../src/protocol/types.js";
import { verifyRequest } from "../../src/signing.js";
import { createAdminApp } from "../../workers/admin/routes.js";
import { createApp } from "../../workers/app.js";
import { chatStages } from "../../workers/chat/pipeline.js";
import type { AppEnv } from "../../workers/env.js";
import { handleError, handleNotFound } from "../../workers/middleware/errors.js";
import { requestId } from "../../workers/middleware/request-id.js";
import type { FetchLike } from "../../workers/upstream/target.js";
import { decodeCall } from "./frames.js";

export const ADMIN = "test-admin-token";
export const SECRET = "test-backend-secret";

export interface BackendCall {
  url: string;
  headers: Headers;
  /** The OpenAI request inside the frame protocol's envelope. */
  body: Record<string, unknown>;
  /** The whole envelope (version, tenant, endpoint, limits). */
  req: InternalRequest;
  signature: Awaited<ReturnType<typeof verifyRequest>>;
}

/** The stages this layer owns; the gateway's stages (policy, quota, cache, routing) sit between them. */
const FOUNDATION_STAGES = new Set(["auth", "validate", "forward"]);

/**
 * The edge with only the foundation stages (auth -> validate -> forward), so these tests pin down
 * forwarding and relaying on their own; the gateway's tests cover the full chain. `forward`
 * replaces the pipeline's forward stage (e.g. the SSE passthrough).
 */
export function foundationApp(fetch: FetchLike): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(handleError);
  app.notFound(handleNotFound);
  app.use("*", requestId());
  for (const stage of chatStages({ fetch })) {
    if (!FOUNDATION_STAGES.has(stage.name)) continue;
    app.post("/v1/chat/completions", stage.handler);
  }
  app.route("/admin", createAdminApp());
  return app;
}

/**
 * A backend double speaking the frame protocol: records every generate call (decoded from msgpack,
 * with its signature check) and answers with `respond` (frames, or a JSON refusal); health checks
 * get a plain 200. `app` is the foundation-only edge, `fullApp` the real one.
 */
export function fakeBackend(respond: (call: BackendCall) => Response | Promise<Response>) {
  const calls: BackendCall[] = [];
  const fetch: FetchLike = async (url, init) => {
    if ((init.method ?? "GET") === "GET") return Response.json({ status: "ok" });
    const headers = new Headers(init.headers);
    const bytes = init.body as Uint8Array;
    const signature = await verifyRequest(SECRET, {
      method: init.method ?? "GET",
      path: new URL(url).pathname,
      body: bytes,
      header: (n) => headers.get(n),
    });
    const req = decodeCall(init);
    const call = { url, headers, body: req.request as Record<string, unknown>, req, signature };
    calls.push(call);
    return respond(call);
  };
  return { calls, app: foundationApp(fetch), fullApp: createApp({ fetch }) };
}

export type TestApp = Hono<AppEnv>;

export function request(app: TestApp, path: string, init: RequestInit = {}): Promise<Response> {
  return Promise.resolve(app.request(`http://edge.test${path}`, init, env));
}

export async function createTenant(app: TestApp, name = "acme"): Promise<{ id: string; key: string }> {
  const res = await request(app, "/admin/tenants", {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  if (res.status !== 201) throw new Error(`admin create failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { tenant: { id: string }; api_key: string };
  return { id: body.tenant.id, key: body.api_key };
}

export function chatBody(extra: Record<string, unknown> = {}) {
  return { model: "test-model", messages: [{ role: "user", content: "hi" }], ...extra };
}

export function post(app: TestApp, key: string | null, body: unknown, headers: Record<string, string> = {}) {
  return request(app, "/v1/chat/completions", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(key === null ? {} : { authorization: `Bearer ${key}` }),
      ...headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Read a whole SSE body into its data payloads. */
export async function readEvents(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((block) => block.startsWith("data: "))
    .map((block) => block.slice("data: ".length));
}
