/** Admin API: tenant + key creation behind ADMIN_TOKEN; keys stored only as hashes. */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, createTenant, fakeBackend, request } from "./helpers.js";

const { app } = fakeBackend(() => new Response(null, { status: 500 }));

describe("admin API", () => {
  it("refuses a missing or wrong admin token", async () => {
    const body = JSON.stringify({ name: "x" });
    expect((await request(app, "/admin/tenants", { method: "POST", body })).status).toBe(401);
    const wrong = await request(app, "/admin/tenants", {
      method: "POST",
      body,
      headers: { authorization: "Bearer nope" },
    });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe("invalid_admin_token");
  });

  it("creates a tenant and a key of the documented form, storing only its hash", async () => {
    const { id, key } = await createTenant(app, "Acme");
    expect(key).toMatch(/^sk-moe-[0-9a-f]{10}_[0-9A-Za-z]{32}$/);
    const prefix = key.slice(7, 17);
    const stored = await env.TENANTS.get(`apikey:${prefix}`, "text");
    expect(stored).not.toBeNull();
    expect(stored).not.toContain(key.slice(18));
    const record = JSON.parse(stored!) as { hash: string; tenantId: string };
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
    expect(record.hash).toBe(Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""));
    expect(record.tenantId).toBe(id);
    const all = await env.TENANTS.list();
    for (const k of all.keys) expect(await env.TENANTS.get(k.name, "text")).not.toContain(key.slice(18));
  });

  it("issues further keys, lists prefixes, validates input, refuses duplicate ids", async () => {
    const auth = { authorization: `Bearer ${ADMIN}` };
    const created = await request(app, "/admin/tenants", {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ name: "Fixed", id: "fixed-id" }),
    });
    expect(created.status).toBe(201);
    const dup = await request(app, "/admin/tenants", {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ name: "Again", id: "fixed-id" }),
    });
    expect(dup.status).toBe(400);
    const second = await request(app, "/admin/tenants/fixed-id/keys", { method: "POST", headers: auth });
    expect(second.status).toBe(201);
    const info = (await (await request(app, "/admin/tenants/fixed-id", { headers: auth })).json()) as {
      key_prefixes: string[];
    };
    expect(info.key_prefixes).toHaveLength(2);
    const bad = await request(app, "/admin/tenants", {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ name: "" }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe("name");
    expect((await request(app, "/admin/tenants/none/keys", { method: "POST", headers: auth })).status).toBe(
      404,
    );
  });
});

describe("module entry (workers/index.ts) with the wrangler.toml bindings", () => {
  it("serves health and answers bad requests with OpenAI errors", async () => {
    expect((await exports.default.fetch("http://edge.test/health")).status).toBe(200);
    const res = await exports.default.fetch("http://edge.test/v1/chat/completions", {
      method: "POST",
      body: "{}",
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("missing_api_key");
  });
});
