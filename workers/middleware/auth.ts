import type { MiddlewareHandler } from "hono";
import { invalidApiKey, missingApiKey } from "../../src/openai/errors.js";
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
    const found = await new TenantStore(c.env.TENANTS).authenticate(key);
    if (!found) throw invalidApiKey(redactKey(key));
    c.set("tenant", found.tenant);
    await next();
  };
}
