/**
 * Quota stage: reserve at admission in the tenant's Durable Object (prompt-token upper bound +
 * max_tokens; zero tokens for a prompt-cache hit), then settle exactly once with the exact usage:
 *  - completed: charge = usage.prompt_tokens + usage.completion_tokens from the backend;
 *  - failed before any output (backend error status / unreachable / no backend): charge 0 (and the
 *    request itself is given back when no backend ever saw it);
 *  - ended mid-stream (backend failure or client left) without a final usage report: the usage so
 *    far (over frames exact: the start frame's prompt tokens + one per token frame received), else
 *    the prompt estimate + completion chunks delivered (an upper bound, never an undercharge);
 *    a backend failure before any completion token charges 0;
 *  - cache hit: no reservation at all (no tokens, no request); the ledger records it as cached.
 * Every response carries x-ratelimit-* and RateLimit / RateLimit-Policy; a refusal is 429 with
 * Retry-After (or 400 when the request could never fit the limit), charging nothing.
 */
import type { Context, MiddlewareHandler } from "hono";
import { ApiError, badRequest } from "../../src/openai/errors.js";
import {
  type QuotaLimits,
  type QuotaSnapshot,
  type ReserveResult,
  rateLimitHeaders,
  retryAfterSeconds,
} from "../../src/quota/index.js";
import type { CompletionOutcome } from "../chat/outcome.js";
import type { LedgerEntry } from "../durable/ledger.js";
import type { AppEnv } from "../env.js";
import { gatewayConfig } from "./config.js";
import { setResponseHeaders } from "./headers.js";
import { currentRequest, promptTokenBound, replaceRequest, requestedMaxTokens } from "./request.js";
import { mark } from "./timing.js";

export interface ReservationInfo {
  id: string;
  tokens: number;
  promptEstimate: number;
  /** Settle once; later calls are ignored (the DO is idempotent too). */
  settle: (charge: number, usage: LedgerEntry | undefined, refundRequest?: boolean) => Promise<void>;
  settled: () => boolean;
}

/** Last quota headers seen per tenant in this isolate (for answers that do not ask the DO). */
const lastHeaders = new Map<string, Record<string, string>>();
const LAST_HEADERS_MAX = 10_000;

export function quotaStub(c: Context<AppEnv>, tenantId: string) {
  return c.env.TENANT_QUOTA.get(c.env.TENANT_QUOTA.idFromName(tenantId));
}

/** Charge and ledger entry for a forwarded request's outcome. Exported for tests. */
export function chargeFor(
  o: CompletionOutcome,
  model: string,
  promptEstimate: number,
): { charge: number; usage: LedgerEntry; refundRequest: boolean } {
  const entry = (promptTokens: number, completionTokens: number): LedgerEntry => ({
    model,
    promptTokens,
    completionTokens,
    cachedTokens: 0,
    cacheHit: false,
    outcome: o.status,
  });
  if (o.usage) {
    return {
      charge: o.usage.prompt_tokens + o.usage.completion_tokens,
      usage: entry(o.usage.prompt_tokens, o.usage.completion_tokens),
      refundRequest: false,
    };
  }
  const partial = o.partialUsage ?? null;
  const delivered = o.deliveredChunks ?? 0;
  const nothingGenerated = partial ? partial.completion_tokens === 0 : delivered === 0 && o.text === "";
  if (o.upstreamStatus !== 200 || (o.status === "error" && nothingGenerated)) {
    return { charge: 0, usage: entry(0, 0), refundRequest: o.upstreamStatus === 0 };
  }
  if (partial) {
    return {
      charge: partial.prompt_tokens + partial.completion_tokens,
      usage: entry(partial.prompt_tokens, partial.completion_tokens),
      refundRequest: false,
    };
  }
  return {
    charge: promptEstimate + delivered,
    usage: entry(promptEstimate, delivered),
    refundRequest: false,
  };
}

/** Last quota snapshot per tenant in this isolate, and tokens of its admissions still in flight. */
const lastSnapshot = new Map<string, { snap: QuotaSnapshot; at: number }>();
const inflight = new Map<string, number>();
/** How fresh a snapshot must be to overlap admission with the backend call. */
export const OVERLAP_SNAPSHOT_MS = 2000;

function remember(tenantId: string, snap: QuotaSnapshot): void {
  if (lastSnapshot.size >= LAST_HEADERS_MAX) lastSnapshot.clear();
  lastSnapshot.set(tenantId, { snap, at: Date.now() });
  if (lastHeaders.size >= LAST_HEADERS_MAX) lastHeaders.clear();
  lastHeaders.set(tenantId, rateLimitHeaders(snap));
}

/**
 * Overlap admission with the backend call only when refusal is very unlikely: no limits at all, or a
 * fresh snapshot (this isolate's last answer from the DO) shows at least twice this request's need
 * left in every dimension, after what this isolate already has in flight. Bursts therefore fall back
 * to strict admission after a few requests, so a refused burst does not load the backends.
 */
export function mayOverlap(
  tenantId: string,
  limits: QuotaLimits,
  tokens: number,
  stream: boolean,
  now: number,
): boolean {
  if (Object.keys(limits).length === 0) return true;
  const last = lastSnapshot.get(tenantId);
  if (!last || now - last.at > OVERLAP_SNAPSHOT_MS) return false;
  const pending = inflight.get(tenantId) ?? 0;
  for (const d of last.snap.dimensions) {
    const need =
      d.dimension === "requests" ? 1 : d.dimension === "concurrency" ? (stream ? 1 : 0) : tokens + pending;
    if (
      need > 0 &&
      d.remaining < 2 * need + (d.dimension === "concurrency" || d.dimension === "requests" ? 1 : 0)
    ) {
      return false;
    }
  }
  return true;
}

function refusal(r: Extract<ReserveResult, { ok: false }>): ApiError {
  const headers = rateLimitHeaders(r.snapshot);
  if (r.kind === "too_large") {
    const e = badRequest(
      `This request needs up to ${r.requested} tokens (prompt + max_tokens), more than the tenant's ${r.dimension} limit of ${r.limit}. Lower max_tokens or shorten the prompt.`,
      "max_tokens",
      "request_too_large",
    );
    return new ApiError(e.status, e.message, e.type, e.code, e.param, headers);
  }
  return new ApiError(
    429,
    `Rate limit reached for ${r.dimension}: limit ${r.limit}, remaining ${r.remaining}, requested ${r.requested}. Retry after the time in Retry-After.`,
    "rate_limit_error",
    "rate_limit_exceeded",
    null,
    { ...headers, "retry-after": retryAfterSeconds(r.retryAfterMs) },
  );
}

export function quotaReservation(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const cfg = gatewayConfig(c.env);
    const tenant = c.get("tenant");
    const view = currentRequest(c);
    const req = view.req;
    const limits = tenant.gateway?.quota ?? {};
    // A prompt-cache hit costs no quota (no tokens, no request) and so waits for no Durable Object:
    // its first byte goes out after the KV read. It carries the tenant's last known quota headers.
    if (c.get("promptCache")?.status === "HIT") {
      await next();
      setResponseHeaders(c, lastHeaders.get(tenant.id) ?? {});
      return;
    }

    // The reservation must bound usage, so under a token limit the backend must get an explicit
    // max_tokens (DEFAULT_MAX_TOKENS when the client set none).
    const requested = requestedMaxTokens(req);
    const maxTokens = requested ?? cfg.defaultMaxTokens;
    const tokenLimited =
      limits.tokensPerMinute !== undefined ||
      limits.tokensPerDay !== undefined ||
      limits.tokensPerMonth !== undefined;
    if (tokenLimited && requested === null) replaceRequest(c, view, { max_tokens: maxTokens });
    const promptEstimate = promptTokenBound(req);
    // Each of the n choices may use max_tokens; the prompt is counted once.
    const tokens = promptEstimate + (req.n ?? 1) * maxTokens;
    const stream = req.stream === true;
    const id = c.get("requestId");
    const stub = quotaStub(c, tenant.id);

    const call = { id, tokens, stream, ttlMs: cfg.reservationTtlMs, limits };
    const t0 = performance.now();
    const overlap = mayOverlap(tenant.id, limits, tokens, stream, Date.now());
    if (overlap) inflight.set(tenant.id, (inflight.get(tenant.id) ?? 0) + tokens);
    const decided = stub.reserve(call).then(
      (r) => {
        if (overlap) inflight.set(tenant.id, (inflight.get(tenant.id) ?? tokens) - tokens);
        remember(tenant.id, r.snapshot);
        return r;
      },
      (err: unknown) => {
        if (overlap) inflight.set(tenant.id, (inflight.get(tenant.id) ?? tokens) - tokens);
        throw err;
      },
    );

    let done = false;
    let hookFired = false;
    const info: ReservationInfo = {
      id,
      tokens,
      promptEstimate,
      settled: () => done,
      settle: async (charge, usage, refundRequest) => {
        if (done) return;
        done = true;
        await stub.settle({ id, charge, usage, refundRequest });
      },
    };
    c.set("reservation", info);
    const model = req.model;
    // Registered before anything is forwarded, so no outcome can be missed; a refused reservation
    // has nothing to settle.
    c.get("completionHooks").push(async (o) => {
      hookFired = true;
      const r = await decided.catch(() => null);
      if (!r?.ok) return;
      const s = chargeFor(o, model, promptEstimate);
      await info.settle(s.charge, s.usage, s.refundRequest);
    });

    let r: ReserveResult;
    if (!overlap) {
      r = await decided;
      mark(c, "quota", t0);
      if (!r.ok) throw refusal(r);
      await next();
    } else {
      // Admission overlaps the backend call (its connection and prefill): the chain runs now, but
      // nothing reaches the client before the Durable Object admits; a refusal aborts the backend
      // call and answers 429 as usual, charging nothing.
      const gate = new AbortController();
      c.set("admissionSignal", gate.signal);
      const downstream = next();
      try {
        r = await decided;
      } catch (err) {
        gate.abort();
        await downstream;
        await c.res.body?.cancel().catch(() => {});
        throw err;
      }
      mark(c, "quota", t0);
      if (!r.ok) {
        gate.abort();
        await downstream;
        await c.res.body?.cancel().catch(() => {});
        throw refusal(r);
      }
      await downstream;
    }
    const headers = rateLimitHeaders(r.snapshot);

    // A later stage refused the request before any hook ran (e.g. no backend available): nothing
    // was generated, so give everything back.
    if (!hookFired && !done && c.error) {
      const p = info.settle(0, undefined, true);
      try {
        c.executionCtx.waitUntil(p);
      } catch {
        await p;
      }
    }
    setResponseHeaders(c, headers);
  };
}
