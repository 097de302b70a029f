/**
 * The backend's HTTP API (Hono, served by @hono/node-server):
 *   GET  /health                  503 while the dense weights load, then 200 with the load report
 *   GET  /metrics                 Prometheus text format
 *   GET  /v1/models               the served model
 *   POST /v1/chat/completions     OpenAI chat, stream and non-stream
 *   POST /v1/completions          OpenAI legacy completions (prompt string)
 *   POST /internal/v1/generate    the edge's frame protocol (src/protocol), signed requests only
 * /v1/* requires a signed request from the edge (or the local-use options in AuthOptions) and
 * can be switched off (`openaiEndpoints: false`), leaving only the internal protocol.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ApiError } from "../../src/openai/errors.js";
import type { ModelList } from "../../src/openai/types.js";
import type { Engine } from "../engine/types.js";
import { type AuthOptions, backendAuth } from "./auth.js";
import { chatCompletions, completions } from "./chat.js";
import type { ServerEnv } from "./context.js";
import { handleServerError, toApiError } from "./errors.js";
import { internalGenerate } from "./internal.js";
import { introspect, loadReport } from "./introspect.js";
import { type Endpoint, ServerMetrics } from "./metrics.js";
import { ActiveCounter, KEEPALIVE_MS, type RunContext } from "./run.js";
import { parseMaxInflight, TENANT_MAX_INFLIGHT_HEADER, TenantInflight } from "./tenant-limits.js";

export interface ServerOptions extends AuthOptions {
  /** Largest request body accepted (bytes); beyond it 413. Default 4 MiB. */
  maxBodyBytes?: number;
  /** SSE comment / keep-alive frame interval while no token flows (ms). Default 10 s. */
  keepAliveMs?: number;
  /** Per-tenant in-flight cap used when the edge passes none (default: no cap). */
  tenantMaxInflight?: number;
  /** Serve the OpenAI endpoints under /v1 (default true). */
  openaiEndpoints?: boolean;
  /** Thinking templates: replies' `<think>` part answered as reasoning_content (default false). */
  reasoningParser?: boolean;
}

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

const loading = () =>
  new ApiError(503, "The model is still loading.", "server_error", "model_loading", null, {
    "retry-after": "1",
  });

const ENDPOINTS: Record<string, Endpoint> = {
  "/v1/chat/completions": "chat",
  "/v1/completions": "completion",
  "/internal/v1/generate": "internal",
};

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
  const tenants = new TenantInflight();
  const metrics = new ServerMetrics(() => introspect(ready));
  const keepAliveMs = opts.keepAliveMs ?? KEEPALIVE_MS;
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const reasoningParser = opts.reasoningParser ?? false;
  const runContext = (): RunContext => ({
    engine: current(),
    metrics,
    tenants,
    active,
    keepAliveMs,
    reasoningParser,
  });

  const app = new Hono<ServerEnv>();
  app.onError((err, c) => {
    const endpoint = ENDPOINTS[c.req.path];
    if (endpoint) metrics.rejected(endpoint, toApiError(err).status);
    return handleServerError(err, c);
  });
  app.notFound((c) => c.json(new ApiError(404, "Not found.", "not_found_error", "not_found").toBody(), 404));

  app.get("/health", (c) => {
    if (ready) {
      const stats = introspect(ready);
      const load = stats ? loadReport(stats) : null;
      if (load) c.header("x-backend-load", String(load.load));
      return c.json({
        status: "ok",
        model: ready.modelId,
        context_length: ready.contextLength,
        active_requests: active.value,
        ...(load ?? { load: 0 }),
      });
    }
    if (failed) return c.json({ status: "failed", error: (failed as Error).message }, 500);
    c.header("retry-after", "1");
    return c.json({ status: "loading" }, 503);
  });

  // Every answer to a generation request tells the edge router this backend's load (refusals too).
  const reportLoad: MiddlewareHandler<ServerEnv> = async (c, next) => {
    await next();
    const e = introspect(ready);
    if (e) c.res.headers.set("x-backend-load", String(loadReport(e).load));
  };
  for (const path of Object.keys(ENDPOINTS)) app.use(path, reportLoad);

  app.get("/metrics", async (c) => {
    const text = await metrics.render(ready?.modelId ?? null);
    return c.body(text, 200, { "content-type": metrics.contentType });
  });

  // Bodies are read whole by auth (their hash is signed): refuse oversized ones first.
  const limitBody = bodyLimit({
    maxSize: maxBodyBytes,
    onError: () => {
      throw new ApiError(
        413,
        `The request body is larger than this backend accepts (${maxBodyBytes} bytes).`,
        "invalid_request_error",
        "request_too_large",
      );
    },
  });
  /** The cap the edge passed; trusted only on signed requests (the tenant is signed too). */
  const capFrom = (signed: boolean, header: string | undefined): number | null =>
    (signed ? parseMaxInflight(header) : null) ?? opts.tenantMaxInflight ?? null;

  app.use(
    "/internal/*",
    limitBody,
    backendAuth({ secret: opts.secret, maxSkewMs: opts.maxSkewMs, now: opts.now }),
  );
  app.post("/internal/v1/generate", (c) =>
    internalGenerate(c, runContext(), { tenantMaxInflight: opts.tenantMaxInflight ?? null }),
  );

  if (opts.openaiEndpoints !== false) {
    app.use("/v1/*", limitBody, backendAuth(opts));
    app.get("/v1/models", (c) => {
      const e = current();
      return c.json({
        object: "list",
        data: [{ id: e.modelId, object: "model", created: 0, owned_by: "moe-edge" }],
      } satisfies ModelList);
    });
    const scope = (c: Parameters<typeof chatCompletions>[0], endpoint: Endpoint) => {
      const tenant = c.get("tenant");
      const signed = tenant !== undefined;
      return {
        endpoint,
        tenant: tenant ?? "",
        maxInflight: capFrom(signed, c.req.header(TENANT_MAX_INFLIGHT_HEADER)),
      };
    };
    app.post("/v1/chat/completions", (c) => chatCompletions(c, runContext(), scope(c, "chat")));
    app.post("/v1/completions", (c) => completions(c, runContext(), scope(c, "completion")));
  }
  return app;
}
