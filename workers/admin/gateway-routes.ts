/**
 * Admin API, gateway part (mounted by routes.ts under /admin, behind the admin token):
 *   GET    /admin/tenants                          -> {data: [tenant...]}
 *   PATCH  /admin/tenants/:id                      settings (quota, allowed models, attestations,
 *                                                  domicile, use cases, aliases, suspension, cache) -> {tenant}
 *   POST   /admin/tenants/:id/keys/:prefix/rotate  -> 201 {api_key, key_prefix, revoked_prefix}
 *   DELETE /admin/tenants/:id/keys/:prefix         -> {key_prefix, revoked_at}
 *   GET    /admin/tenants/:id/usage[?from&to]      -> the tenant's usage report (same as /v1/usage)
 *   GET    /admin/usage                            -> totals of every tenant
 *   GET    /admin/fleet                            -> backends and this isolate's view of their health
 * Field names are snake_case, like the rest of the API. A null removes a setting.
 * Changes reach every isolate within the tenant cache's 5 s TTL.
 */
import type { Hono } from "hono";
import { z } from "zod";
import { badRequest, invalidJson, notFound } from "../../src/openai/errors.js";
import { zodToApiError } from "../../src/openai/schema.js";
import { checkDerivativeName, resolveModel } from "../../src/policy/index.js";
import type { QuotaLimits } from "../../src/quota/index.js";
import type { AppEnv } from "../env.js";
import { gatewayConfig } from "../gateway/config.js";
import { fleetHealth } from "../gateway/fleet.js";
import type { TenantGatewaySettings } from "../gateway/settings.js";
import { usageReport } from "../gateway/usage.js";
import { TenantStore } from "../tenants/store.js";
import type { Tenant } from "../tenants/types.js";

const count = z.number().int().min(0).nullable().optional();
const isoDate = z.string().datetime({ offset: true });

export const patchTenantSchema = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  quota: z
    .strictObject({
      requests_per_minute: count,
      tokens_per_minute: count,
      tokens_per_day: count,
      tokens_per_month: count,
      max_concurrent_streams: count,
    })
    .nullable()
    .optional(),
  allowed_models: z.array(z.string().min(1)).nullable().optional(),
  domicile: z
    .string()
    .regex(/^[A-Za-z]{2}$/, "an ISO 3166-1 alpha-2 country code")
    .nullable()
    .optional(),
  attestations: z
    .strictObject({
      mau: z
        .strictObject({
          kind: z.enum(["below-threshold", "meta-license"]),
          at: isoDate.optional(),
          by: z.string().max(200).optional(),
        })
        .nullable()
        .optional(),
      aup: z
        .strictObject({ policy: z.string().min(1), version: z.string().min(1), at: isoDate.optional() })
        .optional(),
    })
    .optional(),
  use_cases: z.array(z.string().min(1)).nullable().optional(),
  aliases: z.record(z.string().min(1).max(200), z.string().min(1)).nullable().optional(),
  suspended: z.boolean().optional(),
  trade_restricted: z.boolean().optional(),
  cache: z
    .strictObject({
      enabled: z.boolean().optional(),
      ttl_seconds: z.number().int().min(60).max(2_592_000).optional(),
    })
    .nullable()
    .optional(),
});

type Patch = z.infer<typeof patchTenantSchema>;

async function readJson(req: Request): Promise<unknown> {
  const text = await req.text();
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    throw invalidJson();
  }
}

function setOrDelete<T extends object, K extends keyof T>(
  obj: T,
  key: K,
  value: T[K] | null | undefined,
): void {
  if (value === undefined) return;
  if (value === null) delete obj[key];
  else obj[key] = value;
}

function quotaFrom(q: NonNullable<Patch["quota"]>, prev: QuotaLimits): QuotaLimits {
  const next: QuotaLimits = { ...prev };
  setOrDelete(next, "requestsPerMinute", q.requests_per_minute);
  setOrDelete(next, "tokensPerMinute", q.tokens_per_minute);
  setOrDelete(next, "tokensPerDay", q.tokens_per_day);
  setOrDelete(next, "tokensPerMonth", q.tokens_per_month);
  setOrDelete(next, "maxConcurrentStreams", q.max_concurrent_streams);
  return next;
}

/** Apply a patch to settings; throws 400 for names the license forbids or models that do not exist. */
export function applyPatch(tenant: Tenant, patch: Patch, env: AppEnv["Bindings"], now: string): Tenant {
  const s: TenantGatewaySettings = structuredClone(tenant.gateway ?? {});
  const policy = gatewayConfig(env).policy;
  if (patch.quota === null) delete s.quota;
  else if (patch.quota) s.quota = quotaFrom(patch.quota, s.quota ?? {});
  setOrDelete(s, "allowedModels", patch.allowed_models);
  setOrDelete(s, "domicile", patch.domicile?.toUpperCase() ?? patch.domicile);
  setOrDelete(s, "useCases", patch.use_cases);
  if (patch.suspended !== undefined) s.suspended = patch.suspended;
  if (patch.trade_restricted !== undefined) s.tradeRestricted = patch.trade_restricted;
  if (patch.cache === null) delete s.cache;
  else if (patch.cache) {
    s.cache = { ...s.cache };
    if (patch.cache.enabled !== undefined) s.cache.enabled = patch.cache.enabled;
    if (patch.cache.ttl_seconds !== undefined) s.cache.ttlSeconds = patch.cache.ttl_seconds;
  }
  if (patch.attestations) {
    const a = { ...s.attestations };
    if (patch.attestations.mau === null) delete a.mau;
    else if (patch.attestations.mau)
      a.mau = { ...patch.attestations.mau, at: patch.attestations.mau.at ?? now };
    if (patch.attestations.aup)
      a.aup = [...(a.aup ?? []), { ...patch.attestations.aup, at: patch.attestations.aup.at ?? now }];
    s.attestations = a;
  }
  if (patch.aliases === null) delete s.aliases;
  else if (patch.aliases) {
    for (const [alias, base] of Object.entries(patch.aliases)) {
      const resolved = resolveModel(policy, { tenantId: tenant.id }, base);
      if (!resolved)
        throw badRequest(
          `Alias '${alias}' points at an unknown model '${base}'.`,
          "aliases",
          "model_not_found",
        );
      const rules = policy.rules[resolved.model.family];
      const bad = rules ? checkDerivativeName(rules, alias) : null;
      if (bad) throw badRequest(bad.message, "aliases", bad.code);
    }
    s.aliases = { ...s.aliases, ...patch.aliases };
  }
  // An allow-list entry that names no model would silently allow nothing under that name.
  for (const name of s.allowedModels ?? []) {
    if (!resolveModel(policy, { tenantId: tenant.id, aliases: s.aliases }, name))
      throw badRequest(
        `allowed_models names an unknown model '${name}' (not in the catalog, not an alias of this tenant).`,
        "allowed_models",
        "model_not_found",
      );
  }
  return { ...tenant, ...(patch.name ? { name: patch.name } : {}), gateway: s };
}

async function saveTenant(kv: KVNamespace, tenant: Tenant): Promise<void> {
  await kv.put(`tenant:${tenant.id}`, JSON.stringify(tenant));
  TenantStore.clearCache();
}

async function listTenants(kv: KVNamespace): Promise<Tenant[]> {
  const out: Tenant[] = [];
  let cursor: string | undefined;
  do {
    const page = await kv.list({ prefix: "tenant:", cursor });
    const got = await Promise.all(page.keys.map((k) => kv.get<Tenant>(k.name, "json")));
    for (const t of got) if (t) out.push(t);
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return out;
}

export function gatewayAdminRoutes(admin: Hono<AppEnv>): void {
  const tenantOr404 = async (store: TenantStore, id: string): Promise<Tenant> => {
    const tenant = await store.getTenant(id);
    if (!tenant) throw notFound(`No tenant '${id}'.`);
    return tenant;
  };

  admin.get("/tenants", async (c) => c.json({ object: "list", data: await listTenants(c.env.TENANTS) }));

  admin.patch("/tenants/:id", async (c) => {
    const parsed = patchTenantSchema.safeParse(await readJson(c.req.raw));
    if (!parsed.success) throw zodToApiError(parsed.error);
    TenantStore.clearCache();
    const store = new TenantStore(c.env.TENANTS);
    const tenant = await tenantOr404(store, c.req.param("id"));
    const next = applyPatch(tenant, parsed.data, c.env, new Date().toISOString());
    await saveTenant(c.env.TENANTS, next);
    return c.json({ tenant: next });
  });

  const revoke = async (store: TenantStore, tenantId: string, prefix: string) => {
    const record = await store.getKeyRecord(prefix);
    if (!record || record.tenantId !== tenantId)
      throw notFound(`Tenant '${tenantId}' has no key '${prefix}'.`);
    if (!record.revokedAt) {
      record.revokedAt = new Date().toISOString();
      await store.saveKeyRecord(record);
    }
    TenantStore.clearCache();
    return record;
  };

  admin.delete("/tenants/:id/keys/:prefix", async (c) => {
    const store = new TenantStore(c.env.TENANTS);
    const tenant = await tenantOr404(store, c.req.param("id"));
    const record = await revoke(store, tenant.id, c.req.param("prefix"));
    return c.json({ key_prefix: record.prefix, revoked_at: record.revokedAt });
  });

  admin.post("/tenants/:id/keys/:prefix/rotate", async (c) => {
    const store = new TenantStore(c.env.TENANTS);
    const tenant = await tenantOr404(store, c.req.param("id"));
    const old = await revoke(store, tenant.id, c.req.param("prefix"));
    const { key, record } = await store.issueKey(tenant.id);
    return c.json({ api_key: key, key_prefix: record.prefix, revoked_prefix: old.prefix }, 201);
  });

  admin.get("/tenants/:id/usage", async (c) => {
    const tenant = await tenantOr404(new TenantStore(c.env.TENANTS), c.req.param("id"));
    return c.json(await usageReport(c, tenant));
  });

  admin.get("/usage", async (c) => {
    const tenants = await listTenants(c.env.TENANTS);
    const reports = await Promise.all(tenants.map((t) => usageReport(c, t)));
    return c.json({
      object: "list",
      data: reports.map((r) => ({
        tenant: r.tenant,
        totals: r.totals,
        by_model: r.by_model,
        quota: r.quota,
      })),
    });
  });

  admin.get("/fleet", (c) => {
    const cfg = gatewayConfig(c.env);
    const h = fleetHealth();
    return c.json({
      object: "list",
      data: cfg.pool.map((b) => ({ ...b, health: h.get(b.id) ?? null })),
    });
  });
}
