/** Each gateway middleware on its own, in a minimal Hono app with the variables earlier stages would set. */
import { env } from "cloudflare:workers";
import { Hono, type MiddlewareHandler } from "hono";
import { beforeEach, describe, expect, it } from "vitest";
import type { CompletionHook } from "../../../workers/chat/outcome.js";
import type { AppEnv, Env } from "../../../workers/env.js";
import { promptCacheLookup } from "../../../workers/gateway/cache.js";
import { routeBackend } from "../../../workers/gateway/fleet.js";
import { licensePolicy } from "../../../workers/gateway/policy.js";
import { quotaReservation } from "../../../workers/gateway/quota.js";
import { handleError } from "../../../workers/middleware/errors.js";
import type { Tenant } from "../../../workers/tenants/types.js";
import { clearOfMinuteEdge } from "./util.js";

const e = { ...(env as unknown as Env), MODELS: "llama-4-scout,test-model" } as Env;

function app(stage: MiddlewareHandler<AppEnv>, tenant: Tenant, model = "test-model") {
  const hooks: CompletionHook[] = [];
  const a = new Hono<AppEnv>();
  a.onError(handleError);
  a.use("*", async (c, next) => {
    c.set("requestId", crypto.randomUUID());
    c.set("tenant", tenant);
    c.set("completionHooks", hooks);
    c.set("chatRequest", {
      model,
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 10,
      temperature: 0,
    });
    await next();
  });
  a.use("*", stage);
  a.all("*", (c) =>
    c.json({
      reached: true,
      vars: { upstream: c.get("upstream") ?? null, cache: c.get("promptCache") ?? null },
    }),
  );
  return { a, hooks, go: () => a.request("http://x/", { method: "POST" }, e) };
}

const tenant = (gateway: Tenant["gateway"] = {}): Tenant => ({
  id: `s-${crypto.randomUUID()}`,
  name: "s",
  createdAt: "",
  gateway,
});

beforeEach(() => clearOfMinuteEdge());

describe("stages on their own", () => {
  it("policy: denies before the handler, allows with headers", async () => {
    const denied = await app(licensePolicy(), tenant(), "llama-4-scout").go();
    expect(denied.status).toBe(403);
    const ok = await app(licensePolicy(), tenant(), "test-model").go();
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-policy-decision")).toBe("allow");
  });

  it("quota: reserves, adds headers and registers a settle hook", async () => {
    const t = tenant({ quota: { tokensPerMinute: 100 } });
    const s = app(quotaReservation(), t);
    const res = await s.go();
    expect(res.status).toBe(200);
    expect(res.headers.get("x-ratelimit-remaining-tokens")).toBe(String(100 - (54 + 10)));
    expect(s.hooks).toHaveLength(1);
    const second = await s.go();
    expect(second.status).toBe(429);
    expect(second.headers.get("retry-after")).not.toBeNull();
  });

  it("cache lookup: MISS for a deterministic request, sets state and header", async () => {
    const s = app(promptCacheLookup(), tenant());
    const res = await s.go();
    expect(res.headers.get("x-prompt-cache")).toBe("MISS");
    const body = (await res.json()) as { vars: { cache: { status: string; key: string } } };
    expect(body.vars.cache.key).toMatch(/^pc\/s-[0-9a-f-]+\/[0-9a-f]{64}$/);
    expect(s.hooks).toHaveLength(1); // the fill hook
  });

  it("route: picks a backend serving the model and installs the retrying fetch", async () => {
    const s = app(routeBackend({ fetch: async () => new Response("x") }), tenant());
    const body = (await (await s.go()).json()) as { vars: { upstream: { baseUrl: string } } };
    expect(body.vars.upstream.baseUrl).toBe(e.BACKEND_URL);
  });
});
