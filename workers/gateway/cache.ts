/**
 * Prompt cache stages (exact match, per tenant, deterministic requests only; see src/cache).
 * - lookup (before quota, so a hit reserves no tokens): BYPASS when the tenant turned the cache off,
 *   the client sent `x-prompt-cache: bypass` (or `no-cache` / `skip`), or the request is not
 *   cacheable (not greedy or seeded, logprobs, n > 1); else HIT or MISS from KV. On a MISS a completion
 *   hook stores the answer when it finished normally with exact usage.
 * - replay (after quota): a HIT is answered from the entry, as SSE or JSON, with the same content,
 *   costing no quota (no tokens, no request), recorded in the ledger as cached.
 * The response header `x-prompt-cache` says HIT / MISS / BYPASS. TTL: `x-prompt-cache-ttl` request
 * header (seconds), else the tenant's setting, else PROMPT_CACHE_TTL_SECONDS; at least 60 (KV minimum).
 */
import type { MiddlewareHandler } from "hono";
import {
  type CacheEntry,
  decodeEntry,
  encodeEntry,
  promptCacheHash,
  replayJson,
  replaySse,
  storageKey,
  uncacheableReason,
} from "../../src/cache/index.js";
import { SSE_HEADERS } from "../../src/sse.js";
import type { AppEnv } from "../env.js";
import { gatewayConfig } from "./config.js";
import { setResponseHeaders } from "./headers.js";
import { quotaStub } from "./quota.js";
import { currentRequest } from "./request.js";
import { mark } from "./timing.js";

export const CACHE_STATUS_HEADER = "x-prompt-cache";
export const CACHE_TTL_HEADER = "x-prompt-cache-ttl";
export const MIN_TTL_SECONDS = 60;
export const MAX_TTL_SECONDS = 30 * 86400;

export interface PromptCacheState {
  status: "HIT" | "MISS" | "BYPASS";
  reason?: string;
  key?: string;
  entry?: CacheEntry;
}

function ttlFor(header: string | undefined, tenantTtl: number | undefined, dflt: number): number {
  const h = Number(header);
  const ttl = header !== undefined && Number.isFinite(h) && h > 0 ? h : (tenantTtl ?? dflt);
  return Math.min(MAX_TTL_SECONDS, Math.max(MIN_TTL_SECONDS, Math.round(ttl)));
}

export function promptCacheLookup(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const tenant = c.get("tenant");
    const view = currentRequest(c);
    const req = view.req;
    const settings = tenant.gateway?.cache;
    const control = (c.req.header(CACHE_STATUS_HEADER) ?? "").toLowerCase();
    let state: PromptCacheState;
    const reason =
      settings?.enabled === false
        ? "tenant_disabled"
        : ["bypass", "no-cache", "skip"].includes(control)
          ? "client_bypass"
          : uncacheableReason(req);
    if (reason) {
      state = { status: "BYPASS", reason };
    } else {
      const t0 = performance.now();
      const key = storageKey(tenant.id, await promptCacheHash(tenant.id, req.model, req));
      const bytes = await c.env.PROMPT_CACHE.get(key, "arrayBuffer");
      const entry = bytes ? decodeEntry(new Uint8Array(bytes)) : null;
      state = entry ? { status: "HIT", key, entry } : { status: "MISS", key };
      mark(c, "cache", t0);
    }
    c.set("promptCache", state);

    if (state.status === "MISS" && state.key) {
      const key = state.key;
      const ttl = ttlFor(
        c.req.header(CACHE_TTL_HEADER),
        settings?.ttlSeconds,
        gatewayConfig(c.env).cacheTtlSeconds,
      );
      const model = req.model;
      c.get("completionHooks").push(async (o) => {
        if (o.status !== "ok" || !o.usage || !o.finishReason || o.notReplayable) return;
        const entry: CacheEntry = {
          v: 1,
          kind: view.kind,
          model,
          createdAt: Date.now(),
          deltas: o.deltas && o.deltas.length > 0 ? o.deltas : [o.text],
          finishReason: o.finishReason,
          promptTokens: o.usage.prompt_tokens,
          completionTokens: o.usage.completion_tokens,
        };
        await c.env.PROMPT_CACHE.put(key, encodeEntry(entry), { expirationTtl: ttl });
      });
    }
    await next();
    setResponseHeaders(c, { [CACHE_STATUS_HEADER]: state.status });
  };
}

export function promptCacheReplay(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const state = c.get("promptCache");
    if (state?.status !== "HIT" || !state.entry) return next();
    const entry = state.entry;
    const req = currentRequest(c).req;
    // Recorded in the ledger after the answer left (the hit reserved nothing; see quota.ts).
    const record = quotaStub(c, c.get("tenant").id).record({
      model: req.model,
      promptTokens: 0,
      completionTokens: 0,
      cachedTokens: entry.promptTokens + entry.completionTokens,
      cacheHit: true,
      outcome: "ok",
    });
    try {
      c.executionCtx.waitUntil(record);
    } catch {
      await record;
    }
    const id = `${entry.kind === "chat" ? "chatcmpl" : "cmpl"}-${c.get("requestId")}`;
    const created = Math.floor(Date.now() / 1000);
    if (req.stream === true) {
      const body = replaySse(entry, {
        id,
        created,
        includeUsage: req.stream_options?.include_usage === true,
      });
      return new Response(body, {
        status: 200,
        headers: { ...SSE_HEADERS, "x-request-id": c.get("requestId") },
      });
    }
    return c.json(replayJson(entry, { id, created }));
  };
}
