import type { ErrorHandler } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ApiError, type OpenAIErrorType, serverError } from "../../src/openai/errors.js";
import type { ServerEnv } from "./context.js";

function typeFor(status: number): OpenAIErrorType {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  return status >= 500 ? "server_error" : "invalid_request_error";
}

/**
 * ApiError as is; engine errors that carry an HTTP status and code (EngineError, admission
 * errors) keep them, and a `retryAfterSeconds` becomes a Retry-After header (429 / 503).
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof Error) {
    const { status, code, retryAfterSeconds } = err as Error & {
      status?: unknown;
      code?: unknown;
      retryAfterSeconds?: unknown;
    };
    if (typeof status === "number" && status >= 400 && status < 600) {
      const headers: Record<string, string> = {};
      if (typeof retryAfterSeconds === "number" && retryAfterSeconds >= 0)
        headers["retry-after"] = String(Math.ceil(retryAfterSeconds));
      else if (status === 503 || status === 429) headers["retry-after"] = "1";
      return new ApiError(
        status,
        err.message,
        typeFor(status),
        typeof code === "string" ? code : null,
        null,
        headers,
      );
    }
  }
  return serverError(err instanceof Error ? `Generation failed: ${err.message}` : undefined);
}

/** The JSON error response of an ApiError, its headers (Retry-After) included. */
export function errorResponse(api: ApiError): Response {
  return new Response(JSON.stringify(api.toBody()), {
    status: api.status,
    headers: { "content-type": "application/json", ...api.headers },
  });
}

export const handleServerError: ErrorHandler<ServerEnv> = (err, c) => {
  const api = toApiError(err);
  if (api.status >= 500 && api.status !== 503) console.error("backend error:", err);
  for (const [k, v] of Object.entries(api.headers)) c.header(k, v);
  return c.json(api.toBody(), api.status as ContentfulStatusCode);
};
