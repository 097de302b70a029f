import type { MiddlewareHandler } from "hono";
import { ApiError, invalidApiKey, missingApiKey } from "../../src/openai/errors.js";
import type { AppEnv } from "../env.js";
import { redactKey } from "../tenants/keys.js";
import { TenantStore } from "../tenants/store.js";

/** Bearer API key -> tenant. 401 with a message that says which credential is wrong. */
export function apiKeyAuth(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header("authorization");
    if (!header || header.trim() === "") throw missingApiKey();
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw invalidApiKey("the Authorization header must be 'Bearer <key>'");
    const key = m[1];
    const store = new TenantStore(c.env.TENANTS);
    const found = await store.authenticate(key);
    if (!found) {
      // Only the holder of the exact key learns that it was revoked (the hash must match).
      if (await store.isRevokedKey(key)) {
        throw new ApiError(
          401,
          `The API key ${redactKey(key)} has been revoked. Ask the operator for a new key.`,
          "authentication_error",
          "revoked_api_key",
        );
      }
      throw invalidApiKey(redactKey(key));
    }
    c.set("tenant", found.tenant);
    await next();
  };
}
