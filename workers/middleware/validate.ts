import type { Context, MiddlewareHandler } from "hono";
import { invalidJson, modelNotFound, payloadTooLarge } from "../../src/openai/errors.js";
import { parseChatCompletionRequest, parseCompletionRequest } from "../../src/openai/schema.js";
import type { AppEnv } from "../env.js";
import { configuredModels } from "../models.js";

export const DEFAULT_MAX_BODY_BYTES = 1 << 20;

function bodyLimit(env: AppEnv["Bindings"]): number {
  const n = Number(env.MAX_BODY_BYTES);
  return Number.isFinite(n) && n > 0 ? n : DEFAULT_MAX_BODY_BYTES;
}

/** Read the body (bounded) and parse it as JSON. */
async function readJsonBody(c: Context<AppEnv>): Promise<unknown> {
  const limit = bodyLimit(c.env);
  const declared = Number(c.req.header("content-length"));
  if (Number.isFinite(declared) && declared > limit) throw payloadTooLarge(limit);
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (bytes.byteLength > limit) throw payloadTooLarge(limit);
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw invalidJson();
  }
}

function checkServed(c: Context<AppEnv>, model: string): void {
  // A tenant's registered alias (gateway settings) names a served model too; the policy stage resolves it.
  const alias = c.get("tenant")?.gateway?.aliases?.[model];
  if (!configuredModels(c.env).includes(model) && alias === undefined) throw modelNotFound(model);
}

/** Read the body (bounded), parse JSON and validate it as an OpenAI chat request for a served model. */
export function validateChatRequest(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const req = parseChatCompletionRequest(await readJsonBody(c));
    checkServed(c, req.model);
    c.set("endpoint", "chat");
    c.set("chatRequest", req);
    await next();
  };
}

/** The same for the legacy `/v1/completions` (a `prompt` string instead of messages). */
export function validateCompletionRequest(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const req = parseCompletionRequest(await readJsonBody(c));
    checkServed(c, req.model);
    c.set("endpoint", "completion");
    c.set("completionRequest", req);
    await next();
  };
}
