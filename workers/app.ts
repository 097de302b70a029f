/**
 * The edge worker's Hono app. Global: request id, OpenAI-style errors. Routes:
 *   GET  /health               liveness (no auth)
 *   GET  /v1/models            models this edge serves (API key)
 *   POST /v1/chat/completions  the chat pipeline (chat/pipeline.ts)
 *   /admin/*                   admin API (ADMIN_TOKEN)
 */
import { Hono } from "hono";
import type { ModelList } from "../src/openai/types.js";
import { createAdminApp } from "./admin/routes.js";
import { chatStages, type PipelineDeps } from "./chat/pipeline.js";
import type { AppEnv } from "./env.js";
import { apiKeyAuth } from "./middleware/auth.js";
import { handleError, handleNotFound } from "./middleware/errors.js";
import { requestId } from "./middleware/request-id.js";
import { modelEntries } from "./models.js";

export type AppDeps = PipelineDeps;

export function createApp(deps: AppDeps = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(handleError);
  app.notFound(handleNotFound);
  app.use("*", requestId());

  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/v1/models", apiKeyAuth(), (c) =>
    c.json({ object: "list", data: modelEntries(c.env) } satisfies ModelList),
  );
  // Registered one by one: Hono runs handlers of the same route in registration order.
  for (const stage of chatStages(deps)) app.post("/v1/chat/completions", stage.handler);
  app.route("/admin", createAdminApp());
  return app;
}
