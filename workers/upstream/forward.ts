/**
 * The last stage: sign the validated request, send it to the chosen backend and relay the answer.
 * Streams always ask the backend for the usage chunk, so the edge knows exact usage; the chunk is
 * stripped again if the client did not ask for it.
 */
import type { Context, MiddlewareHandler } from "hono";
import { ApiError, isOpenAIErrorBody, upstreamError } from "../../src/openai/errors.js";
import type { ChatCompletion } from "../../src/openai/types.js";
import { signRequest } from "../../src/signing.js";
import { SSE_HEADERS } from "../../src/sse.js";
import type { CompletionOutcome } from "../chat/outcome.js";
import type { AppEnv } from "../env.js";
import { watchSse } from "./sse-usage.js";
import { defaultTarget, type FetchLike } from "./target.js";

const CHAT_PATH = "/v1/chat/completions";
const COMPLETIONS_PATH = "/v1/completions";

function runHooks(c: Context<AppEnv>, outcome: CompletionOutcome): Promise<void> {
  const hooks = c.get("completionHooks") ?? [];
  if (hooks.length === 0) return Promise.resolve();
  const done = Promise.allSettled(hooks.map(async (h) => h(outcome))).then((results) => {
    for (const r of results) if (r.status === "rejected") console.error("completion hook failed:", r.reason);
  });
  try {
    c.executionCtx.waitUntil(done);
  } catch {
    // No execution context (app.request() in unit tests): the promise still runs.
  }
  return done;
}

async function upstreamFailure(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const body: unknown = JSON.parse(text);
    if (isOpenAIErrorBody(body)) {
      const e = body.error;
      const status = res.status >= 400 ? res.status : 502;
      return new ApiError(status, e.message, e.type, e.code, e.param);
    }
  } catch {
    // not JSON: fall through
  }
  return upstreamError(`The inference backend answered ${res.status}.`, "upstream_error");
}

export function forwardChat(fetchImpl?: FetchLike): MiddlewareHandler<AppEnv> {
  const doFetch: FetchLike = fetchImpl ?? ((input, init) => fetch(input, init));
  return async (c) => {
    const completion = c.get("endpoint") === "completion";
    const req = completion ? c.get("completionRequest") : c.get("chatRequest");
    const path = completion ? COMPLETIONS_PATH : CHAT_PATH;
    const tenant = c.get("tenant");
    const target = c.get("upstream") ?? defaultTarget(c.env);
    const stream = req.stream === true;
    const clientWantsUsage = req.stream_options?.include_usage === true;
    const upstreamBody = stream
      ? { ...req, stream_options: { ...req.stream_options, include_usage: true } }
      : req;
    const body = JSON.stringify(upstreamBody);
    const signed = await signRequest(target.secret, {
      method: "POST",
      path,
      body,
      tenant: tenant.id,
    });

    let res: Response;
    try {
      // The gateway router supplies a fetch that retries other backends before the first byte.
      res = await (c.get("upstreamFetch") ?? doFetch)(`${target.baseUrl}${path}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: stream ? "text/event-stream" : "application/json",
          "x-request-id": c.get("requestId"),
          ...signed,
        },
        body,
        signal: c.req.raw.signal,
      });
    } catch (err) {
      console.error("backend unreachable:", err);
      runHooks(c, { status: "error", stream, usage: null, finishReason: null, text: "", upstreamStatus: 0 });
      throw upstreamError("The inference backend is unreachable.");
    }

    if (!res.ok) {
      runHooks(c, {
        status: "error",
        stream,
        usage: null,
        finishReason: null,
        text: "",
        upstreamStatus: res.status,
      });
      throw await upstreamFailure(res);
    }

    if (!stream) {
      const answer = (await res.json()) as ChatCompletion;
      // Chat answers carry message.content; legacy completions carry text.
      const choice = answer.choices?.[0] as
        | (ChatCompletion["choices"][number] & { text?: string })
        | undefined;
      runHooks(c, {
        status: "ok",
        stream,
        usage: answer.usage ?? null,
        finishReason: choice?.finish_reason ?? null,
        text: choice?.message?.content ?? choice?.text ?? "",
        upstreamStatus: res.status,
      });
      return c.json(answer);
    }

    if (!res.body) throw upstreamError("The inference backend sent an empty stream.", "upstream_error");
    const upstreamStatus = res.status;
    // Registered now, while the request is alive: if the client disconnects, the runtime may tear
    // the response down without cancelling its stream, but background work already registered
    // keeps running, so the abort (request.signal) still reaches the hooks and settles usage.
    let hooksDone!: (p: Promise<void>) => void;
    const settled = new Promise<void>((resolve) => {
      hooksDone = (p) => void p.finally(resolve);
    });
    try {
      c.executionCtx.waitUntil(settled);
    } catch {
      // no execution context in unit tests
    }
    const body$ = watchSse(res.body, {
      keepUsageChunk: clientWantsUsage,
      clientSignal: c.req.raw.signal,
      onEnd: (o) => hooksDone(runHooks(c, { ...o, stream, upstreamStatus })),
    });
    return new Response(body$, {
      status: 200,
      headers: { ...SSE_HEADERS, "x-request-id": c.get("requestId") },
    });
  };
}
