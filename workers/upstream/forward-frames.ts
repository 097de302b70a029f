/**
 * The last stage over the internal frame protocol (src/protocol): sign a msgpack request
 * carrying the tenant, its limits and the validated OpenAI request, POST it to the backend's
 * /internal/v1/generate, and turn the frames into the client's OpenAI answer (SSE or JSON).
 * A drop-in for forwardChat (same variables, same completion hooks and outcome), with exact
 * usage from the end frame whether or not the client asked for the usage chunk.
 */
import type { Context, MiddlewareHandler } from "hono";
import { ApiError, isOpenAIErrorBody, upstreamError } from "../../src/openai/errors.js";
import { encodeRequest } from "../../src/protocol/codec.js";
import { collectFrames } from "../../src/protocol/collect.js";
import type { FramesToOpenAI, OpenAIView } from "../../src/protocol/openai.js";
import { framesToSse } from "../../src/protocol/sse.js";
import {
  INTERNAL_GENERATE_PATH,
  type InternalRequest,
  PROTOCOL_VERSION,
  REQUEST_CONTENT_TYPE,
} from "../../src/protocol/types.js";
import { signRequest } from "../../src/signing.js";
import { SSE_HEADERS } from "../../src/sse.js";
import type { CompletionOutcome } from "../chat/outcome.js";
import type { AppEnv } from "../env.js";
import { defaultTarget, type FetchLike } from "./target.js";

function runHooks(c: Context<AppEnv>, outcome: CompletionOutcome): void {
  const hooks = c.get("completionHooks") ?? [];
  if (hooks.length === 0) return;
  const done = Promise.allSettled(hooks.map(async (h) => h(outcome))).then((results) => {
    for (const r of results) if (r.status === "rejected") console.error("completion hook failed:", r.reason);
  });
  try {
    c.executionCtx.waitUntil(done);
  } catch {
    // No execution context (app.request() in unit tests): the promise still runs.
  }
}

async function upstreamFailure(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const body: unknown = JSON.parse(text);
    if (isOpenAIErrorBody(body)) {
      const e = body.error;
      const headers: Record<string, string> = {};
      const retry = res.headers.get("retry-after");
      if (retry) headers["retry-after"] = retry;
      return new ApiError(res.status >= 400 ? res.status : 502, e.message, e.type, e.code, e.param, headers);
    }
  } catch {
    // not JSON: fall through
  }
  return upstreamError(`The inference backend answered ${res.status}.`, "upstream_error");
}

function outcomeOf(
  state: FramesToOpenAI,
  status: CompletionOutcome["status"],
  stream: boolean,
  upstreamStatus: number,
): CompletionOutcome {
  return {
    status,
    stream,
    usage: state.usage,
    finishReason: state.finishReason,
    text: state.text,
    upstreamStatus,
    deltas: state.deltas,
    deliveredChunks: state.contentChunks,
    lastUsage: null,
  };
}

export function forwardFrames(fetchImpl?: FetchLike): MiddlewareHandler<AppEnv> {
  const doFetch: FetchLike = fetchImpl ?? ((input, init) => fetch(input, init));
  return async (c) => {
    const endpoint = c.get("endpoint") === "completion" ? "completion" : "chat";
    const tenant = c.get("tenant");
    const target = c.get("upstream") ?? defaultTarget(c.env);
    const maxInflight = tenant.gateway?.quota?.maxConcurrentStreams ?? null;
    const base = {
      v: PROTOCOL_VERSION,
      tenant: tenant.id,
      requestId: c.get("requestId"),
      limits: { maxInflight },
    };
    const internal: InternalRequest =
      endpoint === "completion"
        ? { ...base, endpoint, request: c.get("completionRequest") }
        : { ...base, endpoint, request: c.get("chatRequest") };
    const req = internal.request;
    const stream = req.stream === true;
    const body = encodeRequest(internal);
    const signed = await signRequest(target.secret, {
      method: "POST",
      path: INTERNAL_GENERATE_PATH,
      body,
      tenant: tenant.id,
    });

    let res: Response;
    try {
      res = await (c.get("upstreamFetch") ?? doFetch)(`${target.baseUrl}${INTERNAL_GENERATE_PATH}`, {
        method: "POST",
        headers: { "content-type": REQUEST_CONTENT_TYPE, "x-request-id": c.get("requestId"), ...signed },
        body,
        signal: c.req.raw.signal,
      });
    } catch (err) {
      console.error("backend unreachable:", err);
      runHooks(c, { status: "error", stream, usage: null, finishReason: null, text: "", upstreamStatus: 0 });
      throw upstreamError("The inference backend is unreachable.");
    }
    if (!res.ok || !res.body) {
      runHooks(c, {
        status: "error",
        stream,
        usage: null,
        finishReason: null,
        text: "",
        upstreamStatus: res.status,
      });
      if (res.ok) throw upstreamError("The inference backend sent an empty stream.", "upstream_error");
      throw await upstreamFailure(res);
    }

    const view: OpenAIView = {
      endpoint,
      id: `${endpoint === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`,
      created: Math.floor(Date.now() / 1000),
      model: req.model,
      includeUsage: req.stream_options?.include_usage === true,
      logprobs:
        endpoint === "chat"
          ? (req as { logprobs?: boolean | null }).logprobs === true
          : (req as { logprobs?: number | null }).logprobs != null,
      echo:
        endpoint === "completion" && (req as { echo?: boolean | null }).echo === true
          ? (req as { prompt: string }).prompt
          : undefined,
    };
    const upstreamStatus = res.status;

    if (!stream) {
      let state: FramesToOpenAI;
      try {
        state = await collectFrames(res.body, view);
      } catch (err) {
        console.error("backend frame stream failed:", err);
        runHooks(c, { status: "error", stream, usage: null, finishReason: null, text: "", upstreamStatus });
        throw upstreamError("The inference backend failed during the request.", "upstream_stream_error");
      }
      if (!state.finishReason) {
        runHooks(c, outcomeOf(state, "error", stream, upstreamStatus));
        const e = state.error?.body.error;
        if (e) throw new ApiError(state.error!.status, e.message, e.type, e.code, e.param);
        throw upstreamError("The inference backend ended the request early.", "upstream_stream_error");
      }
      runHooks(c, outcomeOf(state, "ok", stream, upstreamStatus));
      return c.json(state.response());
    }

    const { stream: sse } = framesToSse(res.body, view, {
      clientSignal: c.req.raw.signal,
      onEnd: (status, state) => runHooks(c, outcomeOf(state, status, stream, upstreamStatus)),
    });
    return new Response(sse, {
      status: 200,
      headers: { ...SSE_HEADERS, "x-request-id": c.get("requestId") },
    });
  };
}
