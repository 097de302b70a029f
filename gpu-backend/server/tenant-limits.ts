/**
 * Per-tenant in-flight caps on the backend. The edge knows each tenant's plan and passes its cap
 * with the signed request; the backend enforces it because only the backend sees every stream
 * the tenant holds on it (the edge may run in many places at once). Beyond the cap: 429 with
 * Retry-After, before anything is generated.
 */
import { ApiError } from "../../src/openai/errors.js";

/** Header the edge sets on signed OpenAI-endpoint calls (the frame protocol carries it in its body). */
export const TENANT_MAX_INFLIGHT_HEADER = "x-moe-tenant-max-inflight";

export function tenantBusy(tenant: string, max: number, retryAfterSeconds = 1): ApiError {
  return new ApiError(
    429,
    `Tenant '${tenant}' already has ${max} request${max === 1 ? "" : "s"} in flight on this backend; retry when one finishes.`,
    "rate_limit_error",
    "tenant_concurrency_exceeded",
    null,
    { "retry-after": String(retryAfterSeconds) },
  );
}

export class TenantInflight {
  private readonly counts = new Map<string, number>();

  /**
   * Take a slot for `tenant` (null max = no cap). Returns the release function (idempotent).
   * Throws 429 when the tenant is at its cap.
   */
  acquire(tenant: string, max: number | null): () => void {
    const n = this.counts.get(tenant) ?? 0;
    if (max !== null && n >= max) throw tenantBusy(tenant || "(local)", max);
    this.counts.set(tenant, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.counts.get(tenant) ?? 1) - 1;
      if (left <= 0) this.counts.delete(tenant);
      else this.counts.set(tenant, left);
    };
  }

  get(tenant: string): number {
    return this.counts.get(tenant) ?? 0;
  }

  /** All tenants' streams together. */
  get total(): number {
    let s = 0;
    for (const n of this.counts.values()) s += n;
    return s;
  }
}

/** Parse the cap: a positive integer, or null when absent. Malformed values are a 400 (the edge sent them). */
export function parseMaxInflight(value: string | undefined | null): number | null {
  if (value == null || value === "") return null;
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new ApiError(
      400,
      `${TENANT_MAX_INFLIGHT_HEADER} must be a positive integer.`,
      "invalid_request_error",
      "invalid_value",
    );
  }
  return Number(value);
}
