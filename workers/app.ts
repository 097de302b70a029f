/**
 * The edge worker's Hono app. Global: request id, OpenAI-style errors. Routes:
 *   GET  /health               liveness (no auth)
 *   GET  /v1/models            models the tenant may use, with license (API key)
 *   GET  /v1/usage             the tenant's usage ledger and quota state (API key)
 *   POST /v1/chat/completions  the chat pipeline (chat/pipeline.ts)
 *   POST /v1/completions       the same stages for a prompt string
 *   /admin/*                   admin API (ADMIN_TOKEN)
 */
import { Hono } from "hono";
import { createAdminApp } from "./admin/routes.js";
import { chatStages, type PipelineDeps } from "./chat/pipeline.js";
import type { AppEnv } from "./env.js";
import { listModels } from "./gateway/models.js";
import { tenantUsage } from "./gateway/usage.js";
import { apiKeyAuth } from "./middleware/auth.js";
import { handleError, handleNotFound } from "./middleware/errors.js";
import { requestId } from "./middleware/request-id.js";

export type AppDeps = PipelineDeps;

export function createApp(deps: AppDeps = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(handleError);
  app.notFound(handleNotFound);
  app.use("*", requestId());

  app.get("/health", (c) => c.json({ status: "ok" }));
  // Only the models the tenant may use, with license name and URL (gateway/models.ts).
  app.get("/v1/models", apiKeyAuth(), listModels);
  app.get("/v1/usage", apiKeyAuth(), tenantUsage);
  // Registered one by one: Hono runs handlers of the same route in registration order.
  for (const stage of chatStages(deps)) app.post("/v1/chat/completions", stage.handler);
  // The legacy completions endpoint runs the same stages with its own validation.
  for (const stage of chatStages(deps, "completion")) app.post("/v1/completions", stage.handler);
  app.route("/admin", createAdminApp());
  return app;
}
