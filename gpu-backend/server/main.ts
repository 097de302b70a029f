/**
 * Backend CLI: `npm run backend -- --model DIR [options]`. Listens first (so /health answers
 * "loading" at once), then loads the model; /health turns 200 when it is ready.
 */

import { parseArgs } from "node:util";
import { serve } from "@hono/node-server";
import { isKvDtype, KV_DTYPES } from "../engine/kv-cache.js";
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
  --policy lru|lfu     expert eviction policy in lazy mode (default lfu)
  --no-prefetch        lazy mode: do not prefetch guessed experts
  --threads N          compute threads (default: all cores)
  --device KIND        auto | cpu | cuda (default auto: CUDA when a GPU and the addon are present)
  --max-running N      sequences decoding together in one batch (default 16)
  --max-queued N       sequences waiting for a slot; beyond it new requests get 503 (default 64)
  --prefix-cache-bytes B  prefix (prompt) KV cache size, e.g. 256MiB; 0 disables (default 256MiB)
  --kv-dtype f16|f32   KV cache element type (default f16: half the memory and KV reads)
  --tenant-max-inflight N  per-tenant stream cap when the edge passes none (default: none)
  --max-body-bytes B   largest request body accepted, e.g. 4MiB (default 4MiB; beyond it 413)
  --no-openai          switch off the OpenAI endpoints (/v1/*): only the edge's frame protocol
  --reasoning-parser   thinking templates (Qwen3): a reply's <think>...</think> becomes reasoning_content`;

/** "512MiB", "1GB", "1048576" -> bytes. */
function parseBytes(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?$/i.exec(text.trim());
  if (!m) fail(`${flag} must be a byte count such as 268435456, 256MiB or 1GB`);
  const unit = (m[2] ?? "b").toLowerCase();
  const mult: Record<string, number> = {
    b: 1,
    kb: 1e3,
    kib: 1024,
    mb: 1e6,
    mib: 1024 ** 2,
    gb: 1e9,
    gib: 1024 ** 3,
  };
  return Math.floor(Number(m[1]) * mult[unit]);
}

function parseCount(flag: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min) fail(`${flag} must be an integer >= ${min}`);
  return Number(text);
}

function fail(message: string): never {
  console.error(`backend: ${message}`);
  process.exit(2);
}

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
      policy: { type: "string" },
      "no-prefetch": { type: "boolean", default: false },
      threads: { type: "string" },
      device: { type: "string", default: "auto" },
      "max-running": { type: "string" },
      "max-queued": { type: "string" },
      "prefix-cache-bytes": { type: "string" },
      "kv-dtype": { type: "string" },
      "tenant-max-inflight": { type: "string" },
      "max-body-bytes": { type: "string" },
      "no-openai": { type: "boolean", default: false },
      "reasoning-parser": { type: "boolean", default: false },
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
  const device = values.device;
  if (device !== "auto" && device !== "cpu" && device !== "cuda") fail("--device must be auto, cpu or cuda");
  const maxRunning = parseCount("--max-running", values["max-running"], 1);
  const maxQueued = parseCount("--max-queued", values["max-queued"], 0);
  const scheduler = {
    ...(maxRunning !== undefined ? { maxRunning } : {}),
    ...(maxQueued !== undefined ? { maxQueued } : {}),
  };
  const prefixCacheBytes =
    values["prefix-cache-bytes"] !== undefined
      ? parseBytes("--prefix-cache-bytes", values["prefix-cache-bytes"])
      : undefined;
  const kvDtype = values["kv-dtype"] ?? "f16";
  if (!isKvDtype(kvDtype)) fail(`--kv-dtype must be ${KV_DTYPES.join(" or ")}`);
  const port = Number(values.port);
  const started = performance.now();
  const engine = loadEngine(values.model, {
    threads: parseCount("--threads", values.threads, 1),
    expertBudget: values["expert-budget"],
    policy: values.policy,
    prefetch: !values["no-prefetch"],
    modelId: values["model-id"],
    device,
    engine: { scheduler, kvDtype, ...(prefixCacheBytes !== undefined ? { prefixCacheBytes } : {}) },
  });
  const app = createServerApp(engine, {
    secret: values.secret,
    allowUnsigned: values["allow-unsigned"],
    bearerToken: values["bearer-token"],
    tenantMaxInflight: parseCount("--tenant-max-inflight", values["tenant-max-inflight"], 1),
    maxBodyBytes:
      values["max-body-bytes"] !== undefined
        ? parseBytes("--max-body-bytes", values["max-body-bytes"])
        : undefined,
    openaiEndpoints: !values["no-openai"],
    reasoningParser: values["reasoning-parser"],
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
