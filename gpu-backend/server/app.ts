/**
 * The backend's HTTP API (Hono, served by @hono/node-server):
 *   GET  /health                ready (200) once the engine is loaded, 503 while loading
 *   GET  /v1/models             the served model
 *   POST /v1/chat/completions   OpenAI chat, stream and non-stream
 *   POST /v1/completions        OpenAI legacy completions (prompt string)
 * /v1/* requires a signed request from the edge (or the local-use options in AuthOptions).
 */
import { Hono } from "hono";
import { ApiError } from "../../src/openai/errors.js";
import type { ModelList } from "../../src/openai/types.js";
import type { Engine } from "../engine/types.js";
import { type AuthOptions, backendAuth } from "./auth.js";
import { chatCompletions, completions } from "./chat.js";
import type { ServerEnv } from "./context.js";
import { handleServerError } from "./errors.js";
import { ActiveCounter } from "./run.js";

export type ServerOptions = AuthOptions;

const loading = () => new ApiError(503, "The model is still loading.", "server_error", "model_loading");

/** `engine` may be a promise: the server answers /health (503) while weights load. */
export function createServerApp(engine: Engine | Promise<Engine>, opts: ServerOptions = {}): Hono<ServerEnv> {
  let ready: Engine | null = null;
  let failed: Error | null = null;
  Promise.resolve(engine).then(
    (e) => {
      ready = e;
    },
    (err: unknown) => {
      failed = err instanceof Error ? err : new Error(String(err));
    },
  );
  const current = (): Engine => {
    if (ready) return ready;
    if (failed)
      throw new ApiError(
        500,
        `The model failed to load: ${failed.message}`,
        "server_error",
        "model_load_failed",
      );
    throw loading();
  };

  const active = new ActiveCounter();
  const app = new Hono<ServerEnv>();
  app.onError(handleServerError);
  app.notFound((c) => c.json(new ApiError(404, "Not found.", "not_found_error", "not_found").toBody(), 404));

  app.get("/health", (c) => {
    if (ready) {
      return c.json({
        status: "ok",
        model: ready.modelId,
        context_length: ready.contextLength,
        active_requests: active.value,
      });
    }
    if (failed) return c.json({ status: "failed", error: (failed as Error).message }, 500);
    return c.json({ status: "loading" }, 503);
  });

  app.use("/v1/*", backendAuth(opts));
  app.get("/v1/models", (c) => {
    const e = current();
    return c.json({
      object: "list",
      data: [{ id: e.modelId, object: "model", created: 0, owned_by: "moe-edge" }],
    } satisfies ModelList);
  });
  app.post("/v1/chat/completions", (c) => chatCompletions(c, current(), active));
  app.post("/v1/completions", (c) => completions(c, current(), active));
  return app;
}
