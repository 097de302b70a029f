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

/** ApiError as is; engine errors that carry an HTTP status and code (e.g. EngineError) keep them. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof Error) {
    const { status, code } = err as Error & { status?: unknown; code?: unknown };
    if (typeof status === "number" && status >= 400 && status < 600) {
      return new ApiError(status, err.message, typeFor(status), typeof code === "string" ? code : null);
    }
  }
  return serverError(err instanceof Error ? `Generation failed: ${err.message}` : undefined);
}

export const handleServerError: ErrorHandler<ServerEnv> = (err, c) => {
  const api = toApiError(err);
  if (api.status >= 500) console.error("backend error:", err);
  return c.json(api.toBody(), api.status as ContentfulStatusCode);
};
