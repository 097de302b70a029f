/**
 * Wire encoding of the internal protocol: the request is one msgpack object; the response is a
 * sequence of frames, each a 4-byte big-endian length followed by that many bytes of msgpack.
 * Plain msgpack maps (no msgpackr records), so every frame decodes on its own.
 */
import { Packr } from "msgpackr";
import { type Frame, type InternalRequest, MAX_FRAME_BYTES, PROTOCOL_VERSION } from "./types.js";

const packr = new Packr({ useRecords: false, moreTypes: false });

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

export function encodeRequest(req: InternalRequest): Uint8Array {
  return packr.pack(req);
}

/** Decode and check the envelope (the OpenAI request inside is validated by its own schema). */
export function decodeRequest(bytes: Uint8Array): InternalRequest {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch {
    throw new ProtocolError("the request body is not valid msgpack");
  }
  if (typeof value !== "object" || value === null) throw new ProtocolError("the request must be a map");
  const r = value as Record<string, unknown>;
  if (r.v !== PROTOCOL_VERSION)
    throw new ProtocolError(
      `unsupported protocol version ${String(r.v)} (this backend speaks ${PROTOCOL_VERSION})`,
    );
  if (typeof r.tenant !== "string") throw new ProtocolError("'tenant' must be a string");
  if (r.endpoint !== "chat" && r.endpoint !== "completion")
    throw new ProtocolError("'endpoint' must be 'chat' or 'completion'");
  if (typeof r.request !== "object" || r.request === null) throw new ProtocolError("'request' must be a map");
  const limits = r.limits ?? {};
  if (typeof limits !== "object" || limits === null) throw new ProtocolError("'limits' must be a map");
  const max = (limits as Record<string, unknown>).maxInflight;
  if (max != null && (!Number.isInteger(max) || (max as number) < 1))
    throw new ProtocolError("'limits.maxInflight' must be a positive integer");
  if (r.requestId !== undefined && typeof r.requestId !== "string")
    throw new ProtocolError("'requestId' must be a string");
  return { ...r, limits } as InternalRequest;
}

/** One frame with its length prefix. */
export function encodeFrame(frame: Frame): Uint8Array {
  const body = packr.pack(frame);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

function checkFrame(value: unknown): Frame {
  if (typeof value !== "object" || value === null || typeof (value as { t?: unknown }).t !== "string")
    throw new ProtocolError("a frame must be a map with a type 't'");
  const t = (value as { t: string }).t;
  if (t !== "start" && t !== "token" && t !== "ping" && t !== "finish" && t !== "end" && t !== "error")
    throw new ProtocolError(`unknown frame type '${t}'`);
  return value as Frame;
}

/** Incremental decoder: feed byte chunks as they arrive, get the whole frames they complete. */
export class FrameDecoder {
  private buf: Uint8Array = new Uint8Array(0);

  push(chunk: Uint8Array): Frame[] {
    if (this.buf.length === 0) this.buf = chunk;
    else {
      const joined = new Uint8Array(this.buf.length + chunk.length);
      joined.set(this.buf);
      joined.set(chunk, this.buf.length);
      this.buf = joined;
    }
    const frames: Frame[] = [];
    let at = 0;
    while (this.buf.length - at >= 4) {
      const len = new DataView(this.buf.buffer, this.buf.byteOffset + at, 4).getUint32(0);
      if (len > MAX_FRAME_BYTES) throw new ProtocolError(`frame of ${len} bytes exceeds ${MAX_FRAME_BYTES}`);
      if (this.buf.length - at - 4 < len) break;
      let value: unknown;
      try {
        value = packr.unpack(this.buf.subarray(at + 4, at + 4 + len));
      } catch {
        throw new ProtocolError("a frame is not valid msgpack");
      }
      frames.push(checkFrame(value));
      at += 4 + len;
    }
    // Keep only the incomplete tail, copied (the caller may reuse its chunk).
    this.buf = this.buf.slice(at);
    return frames;
  }

  /** Bytes of an incomplete frame still held (non-zero at end of stream = truncated). */
  get pending(): number {
    return this.buf.length;
  }
}

/** Frames of a byte stream, in order; throws ProtocolError if it ends inside a frame. */
export async function* readFrames(body: ReadableStream<Uint8Array>): AsyncGenerator<Frame> {
  const reader = body.getReader();
  const dec = new FrameDecoder();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield* dec.push(value);
    }
    finished = true;
    if (dec.pending > 0) throw new ProtocolError(`the stream ended inside a frame (${dec.pending} bytes)`);
  } finally {
    // The consumer stopped early (client left): cancel the body so the backend sees the close.
    if (!finished) await reader.cancel().catch(() => {});
    else reader.releaseLock();
  }
}
