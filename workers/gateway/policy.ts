/**
 * License policy stage: decide with the pure engine (src/policy) from the tenant's recorded facts;
 * a denial is a 403 / 404 / 451 before anything is reserved or forwarded. An allowed request carries
 * its obligations (attribution headers) onto the response, and a tenant alias is rewritten to the
 * base model the backend serves.
 */
import type { MiddlewareHandler } from "hono";
import { ApiError } from "../../src/openai/errors.js";
import { evaluatePolicy } from "../../src/policy/index.js";
import type { AppEnv } from "../env.js";
import { gatewayConfig } from "./config.js";
import { setResponseHeaders } from "./headers.js";
import { currentRequest, isChat, replaceRequest } from "./request.js";
import { toPolicySubject } from "./settings.js";
import { timingHeader } from "./timing.js";

/** Image parts in any message (OpenAI `image_url` / `input_image` content parts). */
export function hasImageInput(messages: ReadonlyArray<{ content?: unknown }>): boolean {
  return messages.some(
    (m) =>
      Array.isArray(m.content) &&
      m.content.some(
        (p) => typeof p === "object" && p !== null && /image/.test(String((p as { type?: unknown }).type)),
      ),
  );
}

export function licensePolicy(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const tenant = c.get("tenant");
    const view = currentRequest(c);
    const req = view.req;
    const d = evaluatePolicy(gatewayConfig(c.env).policy, toPolicySubject(tenant.id, tenant.gateway), {
      model: req.model,
      hasImageInput: isChat(req) && hasImageInput(req.messages),
    });
    if (!d.allow) {
      const notFound = d.status === 404;
      throw new ApiError(
        d.status,
        d.message,
        notFound ? "invalid_request_error" : "permission_error",
        notFound ? "model_not_found" : d.code,
        notFound ? "model" : null,
        { "x-policy-decision": `deny; reason=${d.code}` },
      );
    }
    c.set("policy", d);
    if (d.model.id !== req.model) replaceRequest(c, view, { model: d.model.id });
    await next();
    setResponseHeaders(c, { ...d.headers, "x-policy-decision": "allow", ...timingHeader(c) });
  };
}
