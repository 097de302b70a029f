/**
 * Who may call the backend: requests signed by the edge (HMAC, see src/signing.ts) always; unsigned
 * ones only with a matching bearer token or when explicitly allowed (local use). Reads the body
 * once (its hash is signed) and leaves it in `rawBody` for the handlers.
 */
import type { MiddlewareHandler } from "hono";
import { ApiError } from "../../src/openai/errors.js";
import { DEFAULT_MAX_SKEW_MS, NonceCache, verifyRequest } from "../../src/signing.js";
import type { ServerEnv } from "./context.js";

export interface AuthOptions {
  /** HMAC secret shared with the edge. Without it only unsigned access (below) is possible. */
  secret?: string;
  /** Accept unsigned requests (local development only). */
  allowUnsigned?: boolean;
  /** Accept unsigned requests carrying `Authorization: Bearer <token>`. */
  bearerToken?: string;
  maxSkewMs?: number;
  /** How many recent nonces to remember for replay detection. */
  nonceCapacity?: number;
  now?: () => number;
}

const unauthorized = (message: string, code: string) =>
  new ApiError(401, message, "authentication_error", code);

const REASONS: Record<string, string> = {
  malformed: "The request signature headers are malformed.",
  stale: "The request timestamp is outside the allowed clock skew.",
  bad_signature: "The request signature does not match.",
  replayed: "The request nonce was already used.",
};

export function backendAuth(opts: AuthOptions): MiddlewareHandler<ServerEnv> {
  const maxSkewMs = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  const nonces = new NonceCache(opts.nonceCapacity ?? 100_000, 2 * maxSkewMs);
  const now = opts.now ?? Date.now;
  return async (c, next) => {
    const body = new Uint8Array(await c.req.arrayBuffer());
    c.set("rawBody", body);
    if (opts.secret) {
      const url = new URL(c.req.url);
      const result = await verifyRequest(
        opts.secret,
        { method: c.req.method, path: url.pathname + url.search, body, header: (n) => c.req.header(n) },
        { now: now(), maxSkewMs, nonces },
      );
      if (result.ok) {
        c.set("tenant", result.tenant);
        return next();
      }
      if (result.reason !== "unsigned")
        throw unauthorized(REASONS[result.reason], `signature_${result.reason}`);
    }
    if (opts.allowUnsigned) return next();
    if (opts.bearerToken) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
      if (m && m[1] === opts.bearerToken) return next();
    }
    throw unauthorized("This backend only accepts signed requests.", "signature_required");
  };
}
