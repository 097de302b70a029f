/**
 * Backend CLI: `npm run backend -- --model DIR [options]`. Listens first (so /health answers
 * "loading" at once), then loads the model; /health turns 200 when it is ready.
 */

import { parseArgs } from "node:util";
import { serve } from "@hono/node-server";
import { loadEngine } from "../engine/load-engine.js";
import { createServerApp } from "./app.js";

const HELP = `npm run backend -- --model DIR|FILE [options]

The inference backend (OpenAI-compatible HTTP, signed requests from the edge).
  --model DIR|FILE     checkpoint folder (Hugging Face layout) or .gguf file (required)
  --model-id NAME      id reported in /v1/models (default: the folder name)
  --host HOST          listen address (default 127.0.0.1)
  --port N             listen port (default 8788; env MOE_BACKEND_PORT)
  --secret S           HMAC secret shared with the edge (env MOE_BACKEND_SECRET)
  --allow-unsigned     also accept unsigned requests (local development only)
  --bearer-token T     also accept unsigned requests with "Authorization: Bearer T" (env MOE_BACKEND_TOKEN)
  --expert-budget B    routed-expert memory budget: bytes (e.g. 512MiB) or N% of all experts
  --threads N          compute threads (default: all cores)`;

function main(): void {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      "model-id": { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: process.env.MOE_BACKEND_PORT ?? "8788" },
      secret: { type: "string", default: process.env.MOE_BACKEND_SECRET },
      "allow-unsigned": { type: "boolean", default: false },
      "bearer-token": { type: "string", default: process.env.MOE_BACKEND_TOKEN },
      "expert-budget": { type: "string" },
      threads: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || !values.model) {
    console.log(HELP);
    process.exit(values.help ? 0 : 2);
  }
  if (!values.secret && !values["allow-unsigned"] && !values["bearer-token"]) {
    console.error("backend: give --secret (or MOE_BACKEND_SECRET), --bearer-token or --allow-unsigned");
    process.exit(2);
  }
  const port = Number(values.port);
  const started = performance.now();
  const engine = loadEngine(values.model, {
    threads: values.threads ? Number(values.threads) : undefined,
    expertBudget: values["expert-budget"],
    modelId: values["model-id"],
  });
  const app = createServerApp(engine, {
    secret: values.secret,
    allowUnsigned: values["allow-unsigned"],
    bearerToken: values["bearer-token"],
  });
  const server = serve({ fetch: app.fetch, hostname: values.host, port }, (info) => {
    console.log(`backend: listening on http://${values.host}:${info.port} (loading ${values.model})`);
  });
  engine.then(
    (e) =>
      console.log(
        `backend: model '${e.modelId}' ready in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      ),
    (err: unknown) => {
      console.error("backend: failed to load the model:", err instanceof Error ? err.message : err);
      server.close();
      process.exit(1);
    },
  );
  const stop = () => {
    server.close();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main();
