import type { MiddlewareHandler } from "hono";
import { invalidJson, modelNotFound, payloadTooLarge } from "../../src/openai/errors.js";
import { parseChatCompletionRequest } from "../../src/openai/schema.js";
import type { AppEnv } from "../env.js";
import { configuredModels } from "../models.js";

export const DEFAULT_MAX_BODY_BYTES = 1 << 20;

function bodyLimit(env: AppEnv["Bindings"]): number {
  const n = Number(env.MAX_BODY_BYTES);
  return Number.isFinite(n) && n > 0 ? n : DEFAULT_MAX_BODY_BYTES;
}

/** Read the body (bounded), parse JSON and validate it as an OpenAI chat request for a served model. */
export function validateChatRequest(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const limit = bodyLimit(c.env);
    const declared = Number(c.req.header("content-length"));
    if (Number.isFinite(declared) && declared > limit) throw payloadTooLarge(limit);
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.byteLength > limit) throw payloadTooLarge(limit);
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
    } catch {
      throw invalidJson();
    }
    const req = parseChatCompletionRequest(body);
    // A tenant's registered alias (gateway settings) names a served model too; the policy stage resolves it.
    const alias = c.get("tenant")?.gateway?.aliases?.[req.model];
    if (!configuredModels(c.env).includes(req.model) && alias === undefined) throw modelNotFound(req.model);
    c.set("chatRequest", req);
    await next();
  };
}
