/**
 * The last stage: sign the validated request, send it to the chosen backend and relay the answer.
 * Streams always ask the backend for the usage chunk, so the edge knows exact usage; the chunk is
 * stripped again if the client did not ask for it.
 */
import type { MiddlewareHandler } from "hono";
import { upstreamError } from "../../src/openai/errors.js";
import type { ChatCompletion } from "../../src/openai/types.js";
import { signRequest } from "../../src/signing.js";
import { SSE_HEADERS } from "../../src/sse.js";
import type { AppEnv } from "../env.js";
import { upstreamFailure } from "./failure.js";
import { failedOutcome, hooksAtStreamEnd, runHooks } from "./hooks.js";
import { watchSse } from "./sse-usage.js";
import { defaultTarget, type FetchLike } from "./target.js";

const CHAT_PATH = "/v1/chat/completions";
const COMPLETIONS_PATH = "/v1/completions";

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
      runHooks(c, failedOutcome(stream, 0));
      throw upstreamError("The inference backend is unreachable.");
    }

    if (!res.ok) {
      runHooks(c, failedOutcome(stream, res.status));
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
    const atEnd = hooksAtStreamEnd(c);
    const body$ = watchSse(res.body, {
      keepUsageChunk: clientWantsUsage,
      clientSignal: c.req.raw.signal,
      onEnd: (o) => atEnd({ ...o, stream, upstreamStatus }),
    });
    return new Response(body$, {
      status: 200,
      headers: { ...SSE_HEADERS, "x-request-id": c.get("requestId") },
    });
  };
}
