/**
 * Pass an upstream SSE stream to the client event by event (no buffering beyond one event),
 * watching it on the way: the usage chunk is recorded (and dropped when the client did not ask
 * for it), deltas are concatenated, finish_reason noted. Cancelling the returned stream (client
 * left) cancels the upstream body, which aborts generation on the backend.
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { ChatCompletionChunk, Usage } from "../../src/openai/types.js";
import { SSE_DONE, sseComment, sseData } from "../../src/sse.js";
import type { CompletionOutcome } from "../chat/outcome.js";
import { READ_AHEAD_BYTES } from "./read-ahead.js";

export interface WatchOptions {
  /** Forward the usage chunk to the client (it asked with stream_options.include_usage). */
  keepUsageChunk: boolean;
  /** Called exactly once, when the stream ends, fails or is cancelled. */
  onEnd: (outcome: Omit<CompletionOutcome, "stream" | "upstreamStatus">) => void;
  /** The client's request signal: a read failing because the client left is "aborted", not "error". */
  clientSignal?: AbortSignal;
}

function isUsageChunk(chunk: ChatCompletionChunk): chunk is ChatCompletionChunk & { usage: Usage } {
  return Array.isArray(chunk.choices) && chunk.choices.length === 0 && chunk.usage != null;
}

const streamError = {
  error: {
    message: "The inference backend failed during the stream.",
    type: "server_error",
    param: null,
    code: "upstream_stream_error",
  },
};

export function watchSse(
  upstream: ReadableStream<Uint8Array>,
  opts: WatchOptions,
): ReadableStream<Uint8Array> {
  const reader = upstream.getReader();
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  let usage: Usage | null = null;
  let finishReason: string | null = null;
  let text = "";
  const deltas: string[] = [];
  let deliveredChunks = 0;
  let partialUsage: Usage | null = null;
  let sawError = false;
  let ended = false;
  const out: string[] = [];

  const end = (status: CompletionOutcome["status"]) => {
    if (ended) return;
    ended = true;
    opts.onEnd({ status, usage, finishReason, text, deltas, deliveredChunks, partialUsage });
  };

  const onEvent = (ev: EventSourceMessage) => {
    if (ev.data === SSE_DONE) {
      out.push(sseData(SSE_DONE));
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(ev.data);
    } catch {
      out.push(sseData(ev.data));
      return;
    }
    if (typeof parsed === "object" && parsed !== null && "error" in parsed) {
      sawError = true;
      out.push(sseData(ev.data));
      return;
    }
    const chunk = parsed as ChatCompletionChunk;
    if (isUsageChunk(chunk)) {
      usage = chunk.usage;
      if (opts.keepUsageChunk) out.push(sseData(ev.data));
      return;
    }
    // Continuous usage (vLLM's stream_options.continuous_usage_stats): the latest one counts if the
    // stream breaks before the final usage chunk.
    if (chunk.usage) partialUsage = chunk.usage;
    for (const choice of chunk.choices ?? []) {
      // Chat chunks carry delta.content; legacy completion chunks carry text.
      const piece = choice.delta?.content ?? (choice as { text?: unknown }).text;
      if (typeof piece === "string" && piece !== "") {
        text += piece;
        deltas.push(piece);
        deliveredChunks += 1;
      }
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
    // Re-emit the upstream bytes as they were: no re-serialisation.
    out.push(sseData(ev.data));
  };
  // A client that leaves ends the stream as "aborted" even when the runtime does not cancel it.
  opts.clientSignal?.addEventListener(
    "abort",
    () => {
      end("aborted");
      reader.cancel("client disconnected").catch(() => {});
    },
    { once: true },
  );
  const parser = createParser({ onEvent, onComment: (c) => out.push(sseComment(c.trim())) });

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        // Read until at least one whole event is ready, so each pull forwards something.
        while (out.length === 0) {
          let result: ReadableStreamReadResult<Uint8Array>;
          try {
            result = await reader.read();
          } catch (err) {
            if (opts.clientSignal?.aborted) {
              // The client left (request.signal aborted the upstream fetch): nobody to tell.
              end("aborted");
              controller.error(err);
              return;
            }
            // Mid-stream failure: end the client's stream with an OpenAI error event (not a torn
            // connection), then settle for what was delivered.
            console.error("upstream stream failed:", err);
            out.push(sseData(JSON.stringify(streamError)));
            controller.enqueue(encoder.encode(out.splice(0).join("")));
            end("error");
            controller.close();
            return;
          }
          if (result.done) {
            parser.feed(decoder.decode());
            // The backend closed without finishing (and without saying why): tell the client.
            if (finishReason === null && !sawError) out.push(sseData(JSON.stringify(streamError)));
            if (out.length > 0) controller.enqueue(encoder.encode(out.splice(0).join("")));
            end(sawError || finishReason === null ? "error" : "ok");
            controller.close();
            return;
          }
          parser.feed(decoder.decode(result.value, { stream: true }));
        }
        controller.enqueue(encoder.encode(out.splice(0).join("")));
      },
      async cancel(reason) {
        end("aborted");
        await reader.cancel(reason);
      },
      // Read ahead of the client (see read-ahead.ts).
    },
    new ByteLengthQueuingStrategy({ highWaterMark: READ_AHEAD_BYTES }),
  );
}
