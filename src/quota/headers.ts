import type { QuotaDimension, QuotaSnapshot } from "./types.js";

/** Go-style duration as OpenAI prints it: "12ms", "1s", "6m0s", "1h2m3.5s". */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms));
  if (total < 1000) return `${total}ms`;
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / 60_000);
  const sMs = total % 60_000;
  const s = Number.isInteger(sMs / 1000) ? String(sMs / 1000) : (sMs / 1000).toFixed(3).replace(/0+$/, "");
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/** Policy names used in the IETF fields. */
export const POLICY_NAMES: Record<QuotaDimension, string> = {
  requests: "rpm",
  tokens_minute: "tpm",
  tokens_day: "tpd",
  tokens_month: "tpmo",
  concurrency: "streams",
};

/**
 * Response headers for a quota snapshot:
 * - OpenAI style `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (tokens = per-minute tokens,
 *   or the tightest token window when no per-minute limit is set);
 * - IETF draft-ietf-httpapi-ratelimit-headers (-09): `RateLimit-Policy: "tpm";q=1000;w=60, ...` and
 *   `RateLimit: "tpm";r=500;t=30, ...` (structured-field lists, one item per limited dimension).
 */
export function rateLimitHeaders(snap: QuotaSnapshot): Record<string, string> {
  const h: Record<string, string> = {};
  const req = snap.dimensions.find((d) => d.dimension === "requests");
  if (req) {
    h["x-ratelimit-limit-requests"] = String(req.limit);
    h["x-ratelimit-remaining-requests"] = String(req.remaining);
    h["x-ratelimit-reset-requests"] = formatDuration(req.resetMs);
  }
  const tokenDims = snap.dimensions.filter((d) => d.dimension.startsWith("tokens_"));
  const tok =
    tokenDims.find((d) => d.dimension === "tokens_minute") ??
    tokenDims.reduce<(typeof tokenDims)[number] | undefined>(
      (a, d) => (a === undefined || d.remaining < a.remaining ? d : a),
      undefined,
    );
  if (tok) {
    h["x-ratelimit-limit-tokens"] = String(tok.limit);
    h["x-ratelimit-remaining-tokens"] = String(tok.remaining);
    h["x-ratelimit-reset-tokens"] = formatDuration(tok.resetMs);
  }
  const windowed = snap.dimensions.filter((d) => d.windowSeconds > 0);
  if (windowed.length > 0) {
    h["RateLimit-Policy"] = windowed
      .map((d) => `"${POLICY_NAMES[d.dimension]}";q=${d.limit};w=${d.windowSeconds}`)
      .join(", ");
    h.RateLimit = windowed
      .map((d) => `"${POLICY_NAMES[d.dimension]}";r=${d.remaining};t=${Math.ceil(d.resetMs / 1000)}`)
      .join(", ");
  }
  return h;
}

/** Retry-After in whole seconds (at least 1: "0" invites an immediate hammering retry). */
export function retryAfterSeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}
