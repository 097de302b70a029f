/** watchSse: what the edge learns from a stream it relays (usage, text, finish), and cancellation. */
import { describe, expect, it } from "vitest";
import type { CompletionOutcome } from "../../workers/chat/outcome.js";
import { watchSse } from "../../workers/upstream/sse-usage.js";
import { chunk, controlledSse, USAGE, usageChunk } from "./helpers.js";

type Ended = Omit<CompletionOutcome, "stream" | "upstreamStatus">;
const fields = (e: Ended) => ({
  status: e.status,
  usage: e.usage,
  finishReason: e.finishReason,
  text: e.text,
});

describe("watchSse", () => {
  it("reports exact usage, text and finish reason once the stream ends", async () => {
    const ends: Ended[] = [];
    const body = [chunk(""), chunk("ab"), chunk("c"), chunk(null, "length"), usageChunk(), "[DONE]"]
      .map((e) => `data: ${e}\n\n`)
      .join("");
    // Split the bytes at awkward places: events must be reassembled across reads.
    const bytes = new TextEncoder().encode(body);
    const parts = [bytes.slice(0, 7), bytes.slice(7, 150), bytes.slice(150)];
    const upstream = new ReadableStream<Uint8Array>({
      start(c) {
        for (const p of parts) c.enqueue(p);
        c.close();
      },
    });
    const out = await new Response(
      watchSse(upstream, { keepUsageChunk: false, onEnd: (o) => ends.push(o) }),
    ).text();
    expect(out).not.toContain('"choices":[]');
    expect(ends.map(fields)).toEqual([{ status: "ok", usage: USAGE, finishReason: "length", text: "abc" }]);
  });

  it("reports an error outcome when the stream carries an error event", async () => {
    const ends: Ended[] = [];
    const err = JSON.stringify({ error: { message: "x", type: "server_error", param: null, code: null } });
    const upstream = new Response(`data: ${chunk("a")}\n\ndata: ${err}\n\n`).body!;
    await new Response(watchSse(upstream, { keepUsageChunk: false, onEnd: (o) => ends.push(o) })).text();
    expect(ends.map(fields)).toEqual([{ status: "error", usage: null, finishReason: null, text: "a" }]);
  });

  it("cancelling (client gone) cancels the upstream and reports aborted once", async () => {
    const ends: Ended[] = [];
    let upstreamCancelled = false;
    const up = controlledSse();
    const upstream = up.response.body!.getReader();
    const wrapped = new ReadableStream<Uint8Array>({
      async pull(c) {
        const r = await upstream.read();
        if (r.done) c.close();
        else c.enqueue(r.value);
      },
      cancel() {
        upstreamCancelled = true;
      },
    });
    up.push(chunk("a"));
    const reader = watchSse(wrapped, { keepUsageChunk: false, onEnd: (o) => ends.push(o) }).getReader();
    await reader.read();
    await reader.cancel("client left");
    expect(upstreamCancelled).toBe(true);
    expect(ends.map(fields)).toEqual([{ status: "aborted", usage: null, finishReason: null, text: "a" }]);
  });
});
