/**
 * Routing stage over the backend fleet. Health lives in the isolate (each isolate learns it on its
 * own; no shared round trip on the hot path):
 *  - active checks: `GET {url}/health` at most every HEALTH_INTERVAL_MS per backend, started in the
 *    background (waitUntil) by requests; 200 = up; a JSON `load` (0..1) or `x-backend-load` header is
 *    the reported load;
 *  - passive tracking: every forwarded request records success / failure in the backend's circuit
 *    breaker; responses' `x-backend-load` header updates load.
 * Selection is pure (src/routing): model served, up, breaker, load, prefix affinity. The fetch given
 * to the forward stage tries the ranked backends in order while the failure happens before the
 * first byte (connection refused / reset, 502/503/504), so a dead backend costs one retry, not an error.
 */
import type { Context, MiddlewareHandler } from "hono";
import { ApiError } from "../../src/openai/errors.js";
import {
  acquire,
  type BackendConfig,
  type BackendHealth,
  type Candidate,
  newBreaker,
  prefixHash,
  type RoutingOptions,
  rankBackends,
  recordFailure,
  recordSuccess,
} from "../../src/routing/index.js";
import type { AppEnv } from "../env.js";
import type { FetchLike } from "../upstream/target.js";
import { gatewayConfig } from "./config.js";
import { setResponseHeaders } from "./headers.js";
import { currentRequest } from "./request.js";
import { mark } from "./timing.js";

const health = new Map<string, BackendHealth>();
const RETRYABLE = new Set([502, 503, 504]);
export const HEALTH_TIMEOUT_MS = 2000;

/** Health table of this isolate (exported for admin views and tests). */
export function fleetHealth(): ReadonlyMap<string, BackendHealth> {
  return health;
}

export function resetFleetHealth(): void {
  health.clear();
}

function stateOf(b: BackendConfig): BackendHealth {
  let h = health.get(b.id);
  if (!h) {
    h = { up: true, lastCheckAt: 0, load: 0, loadAt: 0, breaker: newBreaker() };
    health.set(b.id, h);
  }
  return h;
}

function noteLoad(h: BackendHealth, value: string | null | undefined | number): void {
  const n = Number(value);
  if (value !== null && value !== undefined && value !== "" && Number.isFinite(n)) {
    h.load = Math.max(0, n);
    h.loadAt = Date.now();
  }
}

async function checkOne(b: BackendConfig, h: BackendHealth, doFetch: FetchLike): Promise<void> {
  try {
    const res = await doFetch(`${b.url}/health`, {
      method: "GET",
      signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS),
    });
    h.up = res.ok;
    noteLoad(h, res.headers.get("x-backend-load"));
    const body = (await res.json().catch(() => null)) as { load?: unknown } | null;
    if (body && typeof body.load === "number") noteLoad(h, body.load);
  } catch {
    h.up = false;
  }
}

/** Start due active checks in the background. */
export function scheduleHealthChecks(
  c: Context<AppEnv>,
  pool: BackendConfig[],
  intervalMs: number,
  doFetch: FetchLike,
): void {
  const now = Date.now();
  for (const b of pool) {
    const h = stateOf(b);
    if (now - h.lastCheckAt < intervalMs) continue;
    h.lastCheckAt = now;
    const p = checkOne(b, h, doFetch);
    try {
      c.executionCtx.waitUntil(p);
    } catch {
      // no execution context (unit tests): the check still runs
    }
  }
}

/** A fetch that retries the next candidate while nothing has been received yet. */
export function fleetFetch(
  candidates: Candidate[],
  opts: RoutingOptions,
  base: FetchLike,
  onPick: (b: BackendConfig) => void,
): FetchLike {
  return async (input, init) => {
    const path = new URL(input).pathname + new URL(input).search;
    let lastError: unknown = null;
    let lastResponse: Response | null = null;
    for (const cand of candidates) {
      const h = stateOf(cand.backend);
      // In panic mode (every candidate refused by its breaker) the last candidate is tried anyway.
      if (!acquire(h.breaker, opts, Date.now()) && (cand !== candidates.at(-1) || lastResponse || lastError))
        continue;
      if (init.signal?.aborted) break;
      try {
        const res = await base(`${cand.backend.url}${path}`, init);
        noteLoad(h, res.headers.get("x-backend-load"));
        if (RETRYABLE.has(res.status)) {
          recordFailure(h.breaker, opts, Date.now());
          lastResponse?.body?.cancel().catch(() => {});
          lastResponse = res;
          continue;
        }
        // A 4xx is the request's fault, not the backend's.
        recordSuccess(h.breaker);
        onPick(cand.backend);
        return res;
      } catch (err) {
        if (init.signal?.aborted) throw err;
        recordFailure(h.breaker, opts, Date.now());
        lastError = err;
      }
    }
    if (lastResponse) return lastResponse;
    throw lastError ?? new Error("no backend accepted the request");
  };
}

export interface RouteDeps {
  /** Outbound fetch (tests inject a double). */
  fetch?: FetchLike;
  /** Fetch for active health checks (default: `fetch`). */
  healthFetch?: FetchLike;
}

export function routeBackend(deps: RouteDeps = {}): MiddlewareHandler<AppEnv> {
  const base: FetchLike = deps.fetch ?? ((input, init) => fetch(input, init));
  const healthFetch: FetchLike = deps.healthFetch ?? base;
  return async (c, next) => {
    const cfg = gatewayConfig(c.env);
    const req = currentRequest(c).req;
    // With one backend there is nothing to choose: no active checks (passive tracking still runs).
    if (cfg.pool.length > 1) scheduleHealthChecks(c, cfg.pool, cfg.healthIntervalMs, healthFetch);
    const prefix = prefixHash(req, cfg.routing.prefixChars);
    const ranked = rankBackends(cfg.pool, health, { model: req.model, prefix }, cfg.routing, Date.now());
    if (ranked.length === 0) {
      throw new ApiError(
        503,
        `No healthy backend serves the model '${req.model}' right now.`,
        "server_error",
        "no_backend_available",
        null,
        { "retry-after": String(Math.ceil(cfg.routing.openMs / 1000)) },
      );
    }
    let used: BackendConfig | null = null;
    c.set("upstream", { baseUrl: ranked[0].backend.url, secret: c.env.BACKEND_SECRET ?? "" });
    // The quota stage may run admission concurrently with this call: a refusal aborts it.
    const admission = c.get("admissionSignal");
    const routed = fleetFetch(ranked, cfg.routing, base, (b) => {
      used = b;
    });
    c.set(
      "upstreamFetch",
      admission
        ? (input, init) =>
            routed(input, {
              ...init,
              signal: init.signal ? AbortSignal.any([init.signal, admission]) : admission,
            })
        : routed,
    );
    // Passive tracking of failures after the first byte (the stream broke mid-way).
    c.get("completionHooks").push((o) => {
      if (used && o.status === "error" && o.upstreamStatus === 200) {
        recordFailure(stateOf(used).breaker, cfg.routing, Date.now());
      }
    });
    const t0 = performance.now();
    await next();
    mark(c, "upstream", t0);
    const picked = used as BackendConfig | null;
    if (picked) setResponseHeaders(c, { "x-backend-id": picked.id });
  };
}
