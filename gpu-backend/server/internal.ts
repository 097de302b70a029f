/**
 * POST /internal/v1/generate: the edge's frame protocol (src/protocol). The body is a msgpack
 * InternalRequest, signed; its tenant must be the signed one. Refusals (bad envelope, invalid
 * OpenAI request, tenant cap, engine full) are JSON errors with their status before any frame;
 * after that the answer is `start`, `token`s (and `ping`s while nothing flows), then `end` or
 * `error`. The client (the edge) closing the connection aborts the generation.
 */
import type { Context } from "hono";
import { stream } from "hono/streaming";
import { ApiError, badRequest } from "../../src/openai/errors.js";
import { parseChatCompletionRequest, parseCompletionRequest } from "../../src/openai/schema.js";
import { decodeRequest, encodeFrame, ProtocolError } from "../../src/protocol/codec.js";
import {
  FRAMES_CONTENT_TYPE,
  type Frame,
  type FrameLogprob,
  PROTOCOL_VERSION,
  type TokenFrame,
} from "../../src/protocol/types.js";
import type { TokenEvent, TokenLogprob } from "../engine/types.js";
import { prepareChat, prepareCompletion } from "./chat.js";
import type { ServerEnv } from "./context.js";
import { toApiError } from "./errors.js";
import { promptLogprobs, usageOf } from "./format.js";
import { beginChoices, driveChoices, PacedWriter, type RunContext } from "./run.js";

function frameLogprob(t: TokenLogprob): FrameLogprob {
  return { id: t.tokenId, token: t.token, logprob: t.logprob, bytes: Array.from(t.bytes) };
}

export function tokenFrame(ev: TokenEvent): TokenFrame {
  const f: TokenFrame = { t: "token", id: ev.tokenId, text: ev.text };
  if (ev.logprob) {
    f.logprob = frameLogprob(ev.logprob);
    f.top = (ev.topLogprobs ?? []).map(frameLogprob);
  }
  if (ev.toolCalls) f.tool_calls = ev.toolCalls;
  if (ev.reasoning) f.reasoning = ev.reasoning;
  return f;
}

export async function internalGenerate(
  c: Context<ServerEnv>,
  ctx: RunContext,
  defaults: { tenantMaxInflight: number | null },
): Promise<Response> {
  let req: ReturnType<typeof decodeRequest>;
  try {
    req = decodeRequest(c.get("rawBody"));
  } catch (err) {
    if (err instanceof ProtocolError)
      throw badRequest(`Invalid internal request: ${err.message}.`, null, "invalid_protocol");
    throw err;
  }
  const signedTenant = c.get("tenant") ?? "";
  if (req.tenant !== signedTenant)
    throw new ApiError(
      403,
      "The request's tenant is not the signed tenant.",
      "permission_error",
      "tenant_mismatch",
    );
  const prepared =
    req.endpoint === "chat"
      ? prepareChat(ctx.engine, parseChatCompletionRequest(req.request), ctx.reasoningParser)
      : prepareCompletion(ctx.engine, parseCompletionRequest(req.request));
  const n = prepared.choices;
  const gens = beginChoices(
    c,
    ctx,
    {
      endpoint: "internal",
      tenant: req.tenant,
      maxInflight: req.limits.maxInflight ?? defaults.tenantMaxInflight,
    },
    prepared.promptIds,
    prepared.params,
    n,
  );
  const aborted = () => gens.some((g) => g.abort.signal.aborted);
  c.header("content-type", FRAMES_CONTENT_TYPE);
  c.header("cache-control", "no-cache");
  return stream(c, async (s) => {
    s.onAbort(() => {
      for (const g of gens) g.abort.abort();
    });
    const out = new PacedWriter((b) => s.write(b));
    const send = (f: Frame) => out.send(encodeFrame(f));
    out.keepAlive(ctx.keepAliveMs, () => encodeFrame({ t: "ping" }));
    try {
      await send({
        t: "start",
        v: PROTOCOL_VERSION,
        model: ctx.engine.modelId,
        prompt_tokens: prepared.promptIds.length,
        ...(prepared.echo !== null ? { echo: prepared.echo } : {}),
      });
      const results = await driveChoices(
        gens,
        async (i, ev) => {
          const f = tokenFrame(ev);
          if (n > 1) f.c = i;
          await send(f);
        },
        async (i, result) => {
          // n > 1: each choice ends with its own frame; a single one ends with the end frame.
          if (n > 1) await send({ t: "finish", c: i, finish_reason: result.finishReason });
        },
      );
      if (!results) return;
      const first = results[0];
      const usage = usageOf(results);
      await send({
        t: "end",
        finish_reason: first.finishReason,
        usage: {
          prompt_tokens: usage.prompt_tokens,
          completion_tokens: usage.completion_tokens,
          cached_tokens: first.cachedTokens,
        },
        ...(first.promptLogprobs
          ? {
              prompt_logprobs: promptLogprobs(ctx.engine.tokenizer, prepared.promptIds, first.promptLogprobs),
            }
          : {}),
        ...(first.paging ? { paging: first.paging } : {}),
      });
    } catch (err) {
      if (aborted()) return;
      for (const g of gens) g.abort.abort();
      const api = toApiError(err);
      if (api.status >= 500) console.error("generation failed mid-stream:", err);
      for (const g of gens) await g.done("error", api.status);
      await send({ t: "error", status: api.status, error: api.toBody().error }).catch(() => {});
    } finally {
      out.stop();
      for (const g of gens) await g.done("aborted", 499);
    }
  });
}
