/** Gateway admin API: settings, key rotation and revocation, usage views, and bad input that writes nothing. */
import { describe, expect, it } from "vitest";
import { framesAnswer, harness } from "./util.js";

describe("gateway admin API", () => {
  it("refuses calls without the admin token, writing nothing", async () => {
    const h = harness(() => framesAnswer(["x"], { prompt_tokens: 1, completion_tokens: 1 }));
    const { id } = await h.tenant();
    const res = await h.send(`/admin/tenants/${id}`, {
      method: "PATCH",
      headers: { authorization: "Bearer wrong", "content-type": "application/json" },
      body: JSON.stringify({ suspended: true }),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_admin_token");
    const t = (await (await h.admin("GET", `/tenants/${id}`)).json()) as {
      tenant: { gateway?: { suspended?: boolean } };
    };
    expect(t.tenant.gateway?.suspended).toBeUndefined();
  });

  it("sets quota, domicile, attestations; rejects bad patches with 400 and no write", async () => {
    const h = harness(() => framesAnswer(["x"], { prompt_tokens: 1, completion_tokens: 1 }));
    const { id } = await h.tenant();
    const ok = await h.admin("PATCH", `/tenants/${id}`, {
      quota: { tokens_per_month: 1_000_000, max_concurrent_streams: 4 },
      domicile: "fr",
      attestations: { mau: { kind: "below-threshold" }, aup: { policy: "llama4-aup", version: "1" } },
    });
    expect(ok.status).toBe(200);
    const t = ((await ok.json()) as { tenant: { gateway: Record<string, unknown> } }).tenant.gateway;
    expect(t.quota).toEqual({ tokensPerMonth: 1_000_000, maxConcurrentStreams: 4 });
    expect(t.domicile).toBe("FR");
    for (const bad of [
      { quota: { tokens_per_minute: -1 } },
      { domicile: "France" },
      { unknown_field: 1 },
      { suspended: "yes" },
      { allowed_models: ["no-such-model"] },
    ]) {
      const r = await h.admin("PATCH", `/tenants/${id}`, bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
    }
    const bad = await h.send(`/admin/tenants/${id}`, {
      method: "PATCH",
      headers: { authorization: "Bearer test-admin-token" },
      body: "{not json",
    });
    expect(bad.status).toBe(400);
    const after = (await (await h.admin("GET", `/tenants/${id}`)).json()) as { tenant: { gateway: unknown } };
    expect(after.tenant.gateway).toEqual(t);
    expect((await h.admin("PATCH", "/tenants/nope", { suspended: true })).status).toBe(404);
  });

  it("rotates and revokes keys; a revoked key is refused with 401", async () => {
    const h = harness(() => framesAnswer(["x"], { prompt_tokens: 1, completion_tokens: 1 }));
    const { id, key } = await h.tenant();
    const prefix = key.slice("sk-moe-".length).split("_")[0];
    const rot = await h.admin("POST", `/tenants/${id}/keys/${prefix}/rotate`);
    expect(rot.status).toBe(201);
    const { api_key, revoked_prefix } = (await rot.json()) as { api_key: string; revoked_prefix: string };
    expect(revoked_prefix).toBe(prefix);
    const old = await h.chat(key, { model: "test-model", messages: [{ role: "user", content: "x" }] });
    expect(old.status).toBe(401);
    expect(((await old.json()) as { error: { code: string } }).error.code).toBe("revoked_api_key");
    expect(
      (await h.chat(api_key, { model: "test-model", messages: [{ role: "user", content: "x" }] })).status,
    ).toBe(200);
    const newPrefix = api_key.slice("sk-moe-".length).split("_")[0];
    expect((await h.admin("DELETE", `/tenants/${id}/keys/${newPrefix}`)).status).toBe(200);
    const msg = { model: "test-model", messages: [{ role: "user", content: "x" }] };
    const revoked = await h.chat(api_key, msg);
    expect(revoked.status).toBe(401);
    expect(((await revoked.json()) as { error: { code: string } }).error.code).toBe("revoked_api_key");
    // The revoked key's prefix with another secret is just a wrong key: nothing is revealed.
    const forged = await h.chat(`${api_key.slice(0, -4)}XXXX`, msg);
    expect(((await forged.json()) as { error: { code: string } }).error.code).toBe("invalid_api_key");
    // Another tenant's key prefix is not found under this tenant.
    const other = await h.tenant();
    expect((await h.admin("DELETE", `/tenants/${other.id}/keys/${newPrefix}`)).status).toBe(404);
  });

  it("usage views: per tenant and for all tenants", async () => {
    const h = harness(() => framesAnswer(["x"], { prompt_tokens: 3, completion_tokens: 2 }));
    const { id, key } = await h.tenant();
    await (await h.chat(key, { model: "test-model", messages: [{ role: "user", content: "x" }] })).text();
    await h.settled();
    const one = (await (await h.admin("GET", `/tenants/${id}/usage`)).json()) as {
      totals: Record<string, number>;
      by_model: Array<{ model: string; total_tokens: number }>;
    };
    expect(one.totals).toMatchObject({
      requests: 1,
      prompt_tokens: 3,
      completion_tokens: 2,
      total_tokens: 5,
    });
    expect(one.by_model).toEqual([expect.objectContaining({ model: "test-model", total_tokens: 5 })]);
    const all = (await (await h.admin("GET", "/usage")).json()) as { data: Array<{ tenant: string }> };
    expect(all.data.map((d) => d.tenant)).toContain(id);
    expect(
      (await h.send(`/v1/usage?from=yesterday`, { headers: { authorization: `Bearer ${key}` } })).status,
    ).toBe(400);
  });
});
