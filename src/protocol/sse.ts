/**
 * A frame stream from the backend as the client's OpenAI SSE stream, pulled (so the client's
 * reading pace reaches the backend's socket: backpressure end to end). Pings become SSE comments,
 * the end frame the finish (and usage) chunks plus [DONE], an error frame a final error event.
 * A stream that breaks or ends without an end frame ends with an error event, never silently.
 * Cancelling the returned stream (client left) cancels the backend's body, which stops generation;
 * so does the client's request signal aborting (runtimes that never cancel a response's stream).
 */
import { SSE_DONE, sseComment, sseData } from "../sse.js";
import { FrameDecoder } from "./codec.js";
import { FramesToOpenAI, type OpenAIView } from "./openai.js";

export type StreamEnd = "ok" | "error" | "aborted";

export interface FramesToSseOptions {
  /** Called once when the stream ends, fails or is cancelled, with the converter's final state. */
  onEnd?: (status: StreamEnd, state: FramesToOpenAI) => void;
  /**
   * The client's request signal: its abort ends the stream as "aborted" and cancels the backend's
   * body, and a read failing after it aborted is the client leaving, not a backend fault.
   */
  clientSignal?: AbortSignal;
  /**
   * Bytes of SSE the stream may hold ahead of the client (default: one pull at a time). Reading
   * ahead lets a generation finish, and settle, although its client vanished without the runtime
   * cancelling this stream; a slow client still bounds the buffer.
   */
  readAheadBytes?: number;
}

export const STREAM_BROKEN = {
  error: {
    message: "The inference backend failed during the stream.",
    type: "server_error",
    param: null,
    code: "upstream_stream_error",
  },
} as const;

/** Close, unless the stream is already closed or cancelled (the client left while a read was pending). */
function quietClose(controller: ReadableStreamDefaultController<Uint8Array>): void {
  try {
    controller.close();
  } catch {
    // already closed or cancelled
  }
}

export function framesToSse(
  body: ReadableStream<Uint8Array>,
  view: OpenAIView,
  opts: FramesToSseOptions = {},
): { stream: ReadableStream<Uint8Array>; state: FramesToOpenAI } {
  const state = new FramesToOpenAI(view);
  const reader = body.getReader();
  const decoder = new FrameDecoder();
  const enc = new TextEncoder();
  let ended = false;
  const end = (status: StreamEnd) => {
    if (ended) return;
    ended = true;
    opts.onEnd?.(status, state);
  };
  opts.clientSignal?.addEventListener(
    "abort",
    () => {
      end("aborted");
      reader.cancel("client disconnected").catch(() => {});
    },
    { once: true },
  );

  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const out: string[] = [];
        const fail = (err: unknown) => {
          if (ended) return quietClose(controller);
          console.error("backend frame stream failed:", err);
          out.push(sseData(JSON.stringify(STREAM_BROKEN)));
          controller.enqueue(enc.encode(out.join("")));
          controller.close();
          end("error");
          void reader.cancel().catch(() => {});
        };
        // Read until at least one event is ready, so each pull forwards something.
        while (out.length === 0) {
          // The client already left (its signal aborted and cancelled the body): nobody to tell.
          if (ended) return quietClose(controller);
          let r: Awaited<ReturnType<typeof reader.read>>;
          try {
            r = await reader.read();
          } catch (err) {
            if (opts.clientSignal?.aborted || ended) {
              end("aborted");
              controller.error(err);
              return;
            }
            return fail(err);
          }
          if (r.done) {
            if (!state.done) return fail(new Error("the backend closed the stream before its end frame"));
            controller.close();
            return;
          }
          try {
            for (const frame of decoder.push(r.value)) {
              if (frame.t === "ping") out.push(sseComment("keep-alive"));
              for (const obj of state.chunks(frame)) out.push(sseData(JSON.stringify(obj)));
              if (frame.t === "end") out.push(sseData(SSE_DONE));
            }
          } catch (err) {
            return fail(err);
          }
          if (state.done) {
            controller.enqueue(enc.encode(out.join("")));
            controller.close();
            end(state.error ? "error" : "ok");
            await reader.cancel().catch(() => {});
            return;
          }
        }
        controller.enqueue(enc.encode(out.join("")));
      },
      async cancel(reason) {
        end("aborted");
        await reader.cancel(reason).catch(() => {});
      },
    },
    opts.readAheadBytes ? new ByteLengthQueuingStrategy({ highWaterMark: opts.readAheadBytes }) : undefined,
  );
  return { stream, state };
}
