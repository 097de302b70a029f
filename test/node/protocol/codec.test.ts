/** The internal protocol's wire format: request envelope, length-prefixed frames, any chunking. */
import { describe, expect, it } from "vitest";
import {
  decodeRequest,
  encodeFrame,
  encodeRequest,
  FrameDecoder,
  ProtocolError,
  readFrames,
} from "../../../src/protocol/codec.js";
import {
  type Frame,
  type InternalRequest,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
} from "../../../src/protocol/types.js";

const frames: Frame[] = [
  { t: "start", v: PROTOCOL_VERSION, model: "m", prompt_tokens: 12 },
  { t: "ping" },
  { t: "token", id: 7, text: "héllo ✓" },
  {
    t: "token",
    id: 8,
    text: "",
    logprob: { id: 8, token: "\u00e9", logprob: -0.25 },
    top: [
      { id: 8, token: "\u00e9", logprob: -0.25 },
      { id: 9, token: "x", logprob: -1.5 },
    ],
  },
  {
    t: "end",
    finish_reason: "length",
    usage: { prompt_tokens: 12, completion_tokens: 2, cached_tokens: 8 },
    paging: { hits: 3, misses: 1 },
  },
];

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(ch);
      c.close();
    },
  });
}

describe("request envelope", () => {
  const req: InternalRequest = {
    v: PROTOCOL_VERSION,
    tenant: "acme",
    requestId: "r1",
    limits: { maxInflight: 4 },
    endpoint: "chat",
    request: { model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: 5 },
  };

  it("round-trips", () => {
    expect(decodeRequest(encodeRequest(req))).toEqual(req);
  });

  it("refuses other versions, bad fields and non-msgpack bytes", () => {
    expect(() => decodeRequest(encodeRequest({ ...req, v: 2 } as unknown as InternalRequest))).toThrow(
      /unsupported protocol version 2/,
    );
    expect(() =>
      decodeRequest(encodeRequest({ ...req, endpoint: "embed" } as unknown as InternalRequest)),
    ).toThrow(ProtocolError);
    expect(() => decodeRequest(encodeRequest({ ...req, limits: { maxInflight: 0 } }))).toThrow(/maxInflight/);
    expect(() => decodeRequest(new Uint8Array([0xc1]))).toThrow(ProtocolError);
  });
});

describe("frames", () => {
  it("decode the same however the bytes are split", () => {
    const bytes = concat(frames.map(encodeFrame));
    // Every single split point, then random multi-way splits (seeded, reproducible).
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const splits: number[][] = Array.from({ length: bytes.length + 1 }, (_, i) => [i]);
    for (let k = 0; k < 200; k++)
      splits.push(Array.from({ length: 1 + rand(12) }, () => rand(bytes.length + 1)));
    for (const cuts of splits) {
      const points = [0, ...[...cuts].sort((a, b) => a - b), bytes.length];
      const dec = new FrameDecoder();
      const out: Frame[] = [];
      for (let i = 1; i < points.length; i++) out.push(...dec.push(bytes.slice(points[i - 1], points[i])));
      expect(out).toEqual(frames);
      expect(dec.pending).toBe(0);
    }
  });

  it("readFrames yields frames in order and refuses a stream cut inside a frame", async () => {
    const bytes = concat(frames.map(encodeFrame));
    const got: Frame[] = [];
    for await (const f of readFrames(streamOf([bytes.slice(0, 5), bytes.slice(5)]))) got.push(f);
    expect(got).toEqual(frames);
    const cut = async () => {
      for await (const _ of readFrames(streamOf([bytes.slice(0, bytes.length - 3)]))) {
      }
    };
    await expect(cut()).rejects.toThrow(/ended inside a frame/);
  });

  it("refuses oversized lengths and unknown frame types", () => {
    const huge = new Uint8Array(8);
    new DataView(huge.buffer).setUint32(0, MAX_FRAME_BYTES + 1);
    expect(() => new FrameDecoder().push(huge)).toThrow(/exceeds/);
    const odd = encodeFrame({ t: "nope" } as unknown as Frame);
    expect(() => new FrameDecoder().push(odd)).toThrow(/unknown frame type/);
  });

  it("a token frame is small (length prefix + plain msgpack map)", () => {
    expect(encodeFrame({ t: "token", id: 1234, text: "hello" }).length).toBeLessThanOrEqual(32);
  });
});
