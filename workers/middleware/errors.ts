import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ApiError, notFound, serverError } from "../../src/openai/errors.js";
import type { AppEnv } from "../env.js";

export function errorResponse(c: Context<AppEnv>, err: ApiError): Response {
  const res = c.json(err.toBody(), err.status as ContentfulStatusCode);
  for (const [k, v] of Object.entries(err.headers)) res.headers.set(k, v);
  const id = c.get("requestId");
  if (id) res.headers.set("x-request-id", id);
  return res;
}

/** Every thrown error becomes an OpenAI-style JSON error; unexpected ones are a 500 without internals. */
export const handleError: ErrorHandler<AppEnv> = (err, c) => {
  if (err instanceof ApiError) return errorResponse(c, err);
  console.error(`[${c.get("requestId") ?? "-"}] unhandled error:`, err);
  return errorResponse(c, serverError());
};

export const handleNotFound: NotFoundHandler<AppEnv> = (c) =>
  errorResponse(c, notFound(`Unknown route: ${c.req.method} ${new URL(c.req.url).pathname}`));
