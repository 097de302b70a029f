/**
 * The backend side of the internal frame protocol, for the edge tests' backend doubles: decode the
 * signed msgpack request the edge sends, answer with length-prefixed msgpack frames.
 */
import { decodeRequest, encodeFrame } from "../../src/protocol/codec.js";
import {
  FRAMES_CONTENT_TYPE,
  type Frame,
  type FrameUsage,
  type InternalRequest,
  PROTOCOL_VERSION,
} from "../../src/protocol/types.js";

export const FRAMES_HEADERS = { "content-type": FRAMES_CONTENT_TYPE };

/** The request a backend received (the envelope) from a fetch init the edge built. */
export function decodeCall(init: RequestInit): InternalRequest {
  if (!(init.body instanceof Uint8Array)) throw new Error("the edge must send a msgpack body");
  return decodeRequest(init.body);
}

/** A frame stream answer with all frames at once. */
export function framesResponse(frames: Frame[], init: ResponseInit = {}): Response {
  const bytes = frames.map(encodeFrame);
  const body = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of bytes) {
    body.set(b, at);
    at += b.length;
  }
  return new Response(body, { ...init, headers: { ...FRAMES_HEADERS, ...init.headers } });
}

export const start = (prompt_tokens: number, model = "test-model"): Frame => ({
  t: "start",
  v: PROTOCOL_VERSION,
  model,
  prompt_tokens,
});

/** Token frames for these text deltas, ids counting from 1. */
export const tokens = (deltas: string[]): Frame[] =>
  deltas.map((text, i) => ({ t: "token", id: i + 1, text }));

export const end = (
  usage: { prompt_tokens: number; completion_tokens: number; cached_tokens?: number },
  finish_reason: "stop" | "length" = "stop",
): Frame => ({
  t: "end",
  finish_reason,
  usage: { cached_tokens: 0, ...usage } satisfies FrameUsage,
});

/** A complete generation: start, one token frame per delta, end with this usage. */
export function answerFrames(
  deltas: string[],
  usage: { prompt_tokens: number; completion_tokens: number; cached_tokens?: number },
  finish: "stop" | "length" = "stop",
): Frame[] {
  return [start(usage.prompt_tokens), ...tokens(deltas), end(usage, finish)];
}

/** A complete generation as a response. */
export const framesAnswer = (...args: Parameters<typeof answerFrames>): Response =>
  framesResponse(answerFrames(...args));

/** A frame stream whose frames are released one by one by the returned `push`. */
export function controlledFrames() {
  let ctrl!: ReadableStreamDefaultController<Uint8Array>;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    start: (c) => {
      ctrl = c;
    },
    cancel: () => {
      cancelled = true;
    },
  });
  return {
    response: new Response(stream, { headers: FRAMES_HEADERS }),
    push: (...frames: Frame[]) => {
      for (const f of frames) ctrl.enqueue(encodeFrame(f));
    },
    close: () => ctrl.close(),
    fail: (err: Error) => ctrl.error(err),
    cancelled: () => cancelled,
  };
}
