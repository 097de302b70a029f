/**
 * Usage views. `GET /v1/usage[?from=YYYY-MM-DD&to=YYYY-MM-DD]` for the authenticated tenant, and the
 * same report for operators under /admin/tenants/:id/usage. Numbers come from the tenant's ledger
 * in its Durable Object: exact integers, per model and per UTC day, with cached tokens and cache hits,
 * plus the live quota state.
 */
import type { Context } from "hono";
import { badRequest } from "../../src/openai/errors.js";
import type { AppEnv } from "../env.js";
import type { Tenant } from "../tenants/types.js";
import { quotaStub } from "./quota.js";

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export async function usageReport(c: Context<AppEnv>, tenant: Tenant) {
  const from = c.req.query("from");
  const to = c.req.query("to");
  if (from !== undefined && !DAY.test(from)) throw badRequest("'from' must be a date YYYY-MM-DD.", "from");
  if (to !== undefined && !DAY.test(to)) throw badRequest("'to' must be a date YYYY-MM-DD.", "to");
  const stub = quotaStub(c, tenant.id);
  const [usage, status] = await Promise.all([stub.usage(from, to), stub.status(tenant.gateway?.quota ?? {})]);
  return {
    object: "usage",
    tenant: tenant.id,
    from: from ?? null,
    to: to ?? null,
    totals: usage.totals,
    by_model: usage.byModel,
    by_day: usage.byDay,
    quota: {
      limits: tenant.gateway?.quota ?? {},
      dimensions: status.snapshot.dimensions,
      open_reservations: status.openReservations,
      open_streams: status.streams,
      expired_reservations: status.expiredReservations,
    },
  };
}

export async function tenantUsage(c: Context<AppEnv>): Promise<Response> {
  return c.json(await usageReport(c, c.get("tenant")));
}
