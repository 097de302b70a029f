/**
 * Minimal admin API (the gateway extends it: rotate/revoke keys, quotas, license terms):
 *   POST /admin/tenants            {name, id?}  -> 201 {tenant, api_key, key_prefix}
 *   GET  /admin/tenants/:id                     -> {tenant, key_prefixes}
 *   POST /admin/tenants/:id/keys                -> 201 {api_key, key_prefix}
 * The full API key appears only in the creating response. Gateway routes: see gateway-routes.ts.
 */
import { Hono } from "hono";
import { z } from "zod";
import { badRequest, invalidJson, notFound } from "../../src/openai/errors.js";
import { zodToApiError } from "../../src/openai/schema.js";
import type { AppEnv } from "../env.js";
import { TenantStore } from "../tenants/store.js";
import { adminAuth } from "./auth.js";
import { gatewayAdminRoutes } from "./gateway-routes.js";

const createTenantSchema = z.object({
  name: z.string().min(1).max(200),
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/)
    .optional(),
});

async function readJson(req: Request): Promise<unknown> {
  const text = await req.text();
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    throw invalidJson();
  }
}

export function createAdminApp(): Hono<AppEnv> {
  const admin = new Hono<AppEnv>();
  admin.use("*", adminAuth());

  admin.post("/tenants", async (c) => {
    const parsed = createTenantSchema.safeParse(await readJson(c.req.raw), { reportInput: true });
    if (!parsed.success) throw zodToApiError(parsed.error);
    const store = new TenantStore(c.env.TENANTS);
    if (parsed.data.id && (await store.getTenant(parsed.data.id))) {
      throw badRequest(`Tenant '${parsed.data.id}' already exists.`, "id", "tenant_exists");
    }
    const tenant = await store.createTenant(parsed.data.name, parsed.data.id);
    const { key, record } = await store.issueKey(tenant.id);
    return c.json({ tenant, api_key: key, key_prefix: record.prefix }, 201);
  });

  admin.get("/tenants/:id", async (c) => {
    const store = new TenantStore(c.env.TENANTS);
    const tenant = await store.getTenant(c.req.param("id"));
    if (!tenant) throw notFound(`No tenant '${c.req.param("id")}'.`);
    return c.json({ tenant, key_prefixes: await store.listKeyPrefixes(tenant.id) });
  });

  admin.post("/tenants/:id/keys", async (c) => {
    const store = new TenantStore(c.env.TENANTS);
    const tenant = await store.getTenant(c.req.param("id"));
    if (!tenant) throw notFound(`No tenant '${c.req.param("id")}'.`);
    const { key, record } = await store.issueKey(tenant.id);
    return c.json({ api_key: key, key_prefix: record.prefix }, 201);
  });

  // Gateway: settings, key rotation / revocation, usage and fleet views (gateway-routes.ts).
  gatewayAdminRoutes(admin);
  return admin;
}
