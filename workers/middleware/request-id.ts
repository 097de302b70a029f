import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env.js";

const SAFE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Give every request an id (the client's x-request-id if sane), echo it, and set up per-request state. */
export function requestId(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const incoming = c.req.header("x-request-id");
    const id =
      incoming && SAFE_ID.test(incoming) ? incoming : `req_${crypto.randomUUID().replaceAll("-", "")}`;
    c.set("requestId", id);
    c.set("completionHooks", []);
    await next();
    c.res.headers.set("x-request-id", id);
  };
}
