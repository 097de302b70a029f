import type { MiddlewareHandler } from "hono";
import { ApiError } from "../../src/openai/errors.js";
import { sha256Hex } from "../../src/signing.js";
import type { AppEnv } from "../env.js";
import { timingSafeEqualHex } from "../tenants/keys.js";

/** Admin API guard: `Authorization: Bearer <ADMIN_TOKEN>`. With no ADMIN_TOKEN set the admin API is off. */
export function adminAuth(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const token = c.env.ADMIN_TOKEN;
    if (!token)
      throw new ApiError(
        403,
        "The admin API is disabled (no ADMIN_TOKEN).",
        "permission_error",
        "admin_disabled",
      );
    const m = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
    // Compare hashes so the comparison time does not depend on where the strings differ.
    if (!m || !timingSafeEqualHex(await sha256Hex(m[1]), await sha256Hex(token))) {
      throw new ApiError(
        401,
        "Invalid or missing admin token.",
        "authentication_error",
        "invalid_admin_token",
      );
    }
    await next();
  };
}
