/**
 * The last stage, over the internal frame protocol (src/protocol): sign a msgpack request carrying
 * the tenant, its limits and the validated OpenAI request (chat or legacy completion), POST it to
 * the backend's /internal/v1/generate through the router's fetch (retries before the first byte),
 * and turn the frames into the client's OpenAI answer (SSE or JSON).
 *
 * Usage reaching the completion hooks is exact in every case: the end frame's (cached tokens
 * included) when the generation finished, else - stream cut by the backend or client gone - the
 * start frame's prompt tokens plus one completion token per token frame received.
 */
import type { Context, MiddlewareHandler } from "hono";
import { ApiError, upstreamError } from "../../src/openai/errors.js";
import { encodeRequest } from "../../src/protocol/codec.js";
import { collectFrames } from "../../src/protocol/collect.js";
import { FramesToOpenAI, type OpenAIView } from "../../src/protocol/openai.js";
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
import { upstreamFailure } from "./failure.js";
import { failedOutcome, hooksAtStreamEnd, runHooks } from "./hooks.js";
import { READ_AHEAD_BYTES } from "./read-ahead.js";
import { defaultTarget, type FetchLike } from "./target.js";

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
    deltas: [...state.deltas],
    notReplayable: state.hasExtras,
    deliveredChunks: state.contentChunks,
    partialUsage: state.usage ? null : state.deliveredUsage(),
  };
}

function internalRequest(c: Context<AppEnv>): InternalRequest {
  const tenant = c.get("tenant");
  const base = {
    v: PROTOCOL_VERSION,
    tenant: tenant.id,
    requestId: c.get("requestId"),
    limits: { maxInflight: tenant.gateway?.quota?.maxConcurrentStreams ?? null },
  };
  return c.get("endpoint") === "completion"
    ? { ...base, endpoint: "completion", request: c.get("completionRequest") }
    : { ...base, endpoint: "chat", request: c.get("chatRequest") };
}

/** How the client sees this generation (ids, usage chunk, logprobs, echo). */
function viewOf(internal: InternalRequest): OpenAIView {
  const { endpoint, request: req } = internal;
  return {
    endpoint,
    id: `${endpoint === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`,
    created: Math.floor(Date.now() / 1000),
    model: req.model,
    includeUsage: req.stream_options?.include_usage === true,
    logprobs:
      internal.endpoint === "chat"
        ? internal.request.logprobs === true
        : internal.request.logprobs !== null && internal.request.logprobs !== undefined,
    n: req.n ?? 1,
    echo:
      internal.endpoint === "completion" &&
      internal.request.echo === true &&
      typeof internal.request.prompt === "string"
        ? internal.request.prompt
        : undefined,
  };
}

export function forwardFrames(fetchImpl?: FetchLike): MiddlewareHandler<AppEnv> {
  const doFetch: FetchLike = fetchImpl ?? ((input, init) => fetch(input, init));
  return async (c) => {
    const internal = internalRequest(c);
    const target = c.get("upstream") ?? defaultTarget(c.env);
    const stream = internal.request.stream === true;
    const body = encodeRequest(internal);
    const signed = await signRequest(target.secret, {
      method: "POST",
      path: INTERNAL_GENERATE_PATH,
      body,
      tenant: internal.tenant,
    });
    const clientSignal = c.req.raw.signal;

    let res: Response;
    try {
      // The gateway router supplies a fetch that retries other backends before the first byte.
      res = await (c.get("upstreamFetch") ?? doFetch)(`${target.baseUrl}${INTERNAL_GENERATE_PATH}`, {
        method: "POST",
        headers: { "content-type": REQUEST_CONTENT_TYPE, "x-request-id": c.get("requestId"), ...signed },
        body,
        signal: clientSignal,
      });
    } catch (err) {
      console.error("backend unreachable:", err);
      runHooks(c, failedOutcome(stream, 0));
      throw upstreamError("The inference backend is unreachable.");
    }
    if (!res.ok || !res.body) {
      runHooks(c, failedOutcome(stream, res.status));
      if (res.ok) throw upstreamError("The inference backend sent an empty stream.", "upstream_error");
      throw await upstreamFailure(res);
    }

    const view = viewOf(internal);
    const upstreamStatus = res.status;

    if (!stream) {
      const state = new FramesToOpenAI(view);
      try {
        await collectFrames(res.body, view, state);
      } catch (err) {
        if (clientSignal.aborted) {
          // The client left: it is charged for what was generated until then, like a stream.
          runHooks(c, outcomeOf(state, "aborted", stream, upstreamStatus));
          throw err;
        }
        console.error("backend frame stream failed:", err);
        // Nothing reached the client: a failed non-stream answer charges nothing.
        runHooks(c, failedOutcome(stream, upstreamStatus));
        throw upstreamError("The inference backend failed during the request.", "upstream_stream_error");
      }
      if (state.usage === null) {
        runHooks(c, failedOutcome(stream, upstreamStatus));
        const e = state.error?.body.error;
        if (state.error && e) throw new ApiError(state.error.status, e.message, e.type, e.code, e.param);
        throw upstreamError("The inference backend ended the request early.", "upstream_stream_error");
      }
      runHooks(c, outcomeOf(state, "ok", stream, upstreamStatus));
      return c.json(state.response());
    }

    const atEnd = hooksAtStreamEnd(c);
    const { stream: sse } = framesToSse(res.body, view, {
      clientSignal,
      readAheadBytes: READ_AHEAD_BYTES,
      onEnd: (status, state) => atEnd(outcomeOf(state, status, stream, upstreamStatus)),
    });
    return new Response(sse, {
      status: 200,
      headers: { ...SSE_HEADERS, "x-request-id": c.get("requestId") },
    });
  };
}
