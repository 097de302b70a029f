/**
 * The edge worker's Hono app. Global: request id, OpenAI-style errors. Routes:
 *   GET  /health               liveness (no auth)
 *   GET  /v1/models            models the tenant may use, with license (API key)
 *   GET  /v1/models/{model}    one of them (API key)
 *   GET  /v1/usage             the tenant's usage ledger and quota state (API key)
 *   POST /v1/chat/completions  the chat pipeline (chat/pipeline.ts)
 *   POST /v1/completions       the same stages for a prompt (text or token ids)
 *   /admin/*                   admin API (ADMIN_TOKEN)
 * /v1/* answers CORS preflights and carries CORS headers (any origin: keys are bearer tokens, not
 * cookies), so browser apps can call it as they call OpenAI's API.
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { methodNotAllowed } from "../src/openai/errors.js";
import { createAdminApp } from "./admin/routes.js";
import { chatStages, type PipelineDeps } from "./chat/pipeline.js";
import type { AppEnv } from "./env.js";
import { getModel, listModels } from "./gateway/models.js";
import { tenantUsage } from "./gateway/usage.js";
import { apiKeyAuth } from "./middleware/auth.js";
import { handleError, handleNotFound } from "./middleware/errors.js";
import { requestId } from "./middleware/request-id.js";

export type AppDeps = PipelineDeps;

/** Response headers a browser client may read (rate limits, cache, license, request id). */
const EXPOSED_HEADERS = [
  "x-request-id",
  "retry-after",
  "x-ratelimit-limit-requests",
  "x-ratelimit-limit-tokens",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-remaining-tokens",
  "x-ratelimit-reset-requests",
  "x-ratelimit-reset-tokens",
  "x-prompt-cache",
  "x-prompt-cache-ttl",
  "x-model-license",
  "x-model-license-url",
  "x-attribution",
];

export function createApp(deps: AppDeps = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(handleError);
  app.notFound(handleNotFound);
  app.use("*", requestId());

  app.get("/health", (c) => c.json({ status: "ok" }));
  app.use(
    "/v1/*",
    cors({
      origin: "*",
      allowMethods: ["GET", "POST", "OPTIONS"],
      exposeHeaders: EXPOSED_HEADERS,
      maxAge: 86400,
    }),
  );
  // Only the models the tenant may use, with license name and URL (gateway/models.ts).
  app.get("/v1/models", apiKeyAuth(), listModels);
  // Model ids may hold a slash (org/name).
  app.get("/v1/models/:model{.+}", apiKeyAuth(), getModel);
  app.get("/v1/usage", apiKeyAuth(), tenantUsage);
  // Registered one by one: Hono runs handlers of the same route in registration order.
  for (const stage of chatStages(deps)) app.post("/v1/chat/completions", stage.handler);
  // The legacy completions endpoint runs the same stages with its own validation.
  for (const stage of chatStages(deps, "completion")) app.post("/v1/completions", stage.handler);
  // The API's own routes with another method: 405 naming the allowed one, not "unknown route".
  for (const [path, allow] of [
    ["/v1/chat/completions", "POST"],
    ["/v1/completions", "POST"],
    ["/v1/models", "GET"],
    ["/v1/models/:model{.+}", "GET"],
    ["/v1/usage", "GET"],
  ] as const) {
    app.all(path, (c) => {
      throw methodNotAllowed(c.req.method, new URL(c.req.url).pathname, allow);
    });
  }
  app.route("/admin", createAdminApp());
  return app;
}
