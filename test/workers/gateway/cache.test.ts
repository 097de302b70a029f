/** Prompt cache in the chain: MISS then HIT with the same content, per-tenant isolation, BYPASS rules, quota/usage rules. */
import { beforeEach, describe, expect, it } from "vitest";
import { end, framesResponse, start } from "../frames.js";
import { clearOfMinuteEdge, framesAnswer, harness, sseEvents, streamedText } from "./util.js";

const det = (extra: Record<string, unknown> = {}) => ({
  model: "test-model",
  messages: [{ role: "user", content: "What is MoE?" }],
  temperature: 0,
  max_tokens: 20,
  ...extra,
});

function backend() {
  let n = 0;
  return {
    count: () => n,
    // The same frames answer streamed and non-streamed requests: the edge renders them either way.
    fn: () => {
      n++;
      return framesAnswer(["Mix", "ture ", "of ", "experts"], { prompt_tokens: 9, completion_tokens: 4 });
    },
  };
}

beforeEach(() => clearOfMinuteEdge());

describe("prompt cache", () => {
  it("MISS fills, HIT replays the same content as SSE without calling the backend", async () => {
    const b = backend();
    const h = harness(b.fn);
    const { key } = await h.tenant();
    const first = await h.chat(key, det({ stream: true }));
    expect(first.headers.get("x-prompt-cache")).toBe("MISS");
    const firstText = streamedText(await sseEvents(first));
    expect(firstText).toBe("Mixture of experts");
    await h.settled();
    const second = await h.chat(key, det({ stream: true, stream_options: { include_usage: true } }));
    expect(second.headers.get("x-prompt-cache")).toBe("HIT");
    expect(second.headers.get("content-type")).toContain("text/event-stream");
    const events = await sseEvents(second);
    expect(events.at(-1)).toBe("[DONE]");
    expect(streamedText(events)).toBe(firstText);
    const usageChunk = JSON.parse(events.at(-2) ?? "{}");
    expect(usageChunk.usage).toMatchObject({
      prompt_tokens: 9,
      completion_tokens: 4,
      prompt_tokens_details: { cached_tokens: 9 },
    });
    expect(b.count()).toBe(1);
    // A non-streamed request with the same content hits too (stream is not in the key).
    const third = await h.chat(key, det());
    expect(third.headers.get("x-prompt-cache")).toBe("HIT");
    expect(
      ((await third.json()) as { choices: Array<{ message: { content: string } }> }).choices[0].message
        .content,
    ).toBe(firstText);
  });

  it("is never shared across tenants", async () => {
    const b = backend();
    const h = harness(b.fn);
    const A = await h.tenant();
    const B = await h.tenant();
    await (await h.chat(A.key, det())).text();
    await h.settled();
    expect((await h.chat(A.key, det())).headers.get("x-prompt-cache")).toBe("HIT");
    const other = await h.chat(B.key, det());
    expect(other.headers.get("x-prompt-cache")).toBe("MISS");
    await other.text();
    expect(b.count()).toBe(2);
  });

  it("BYPASS: sampled requests, the request header, a tenant that turned it off", async () => {
    const b = backend();
    const h = harness(b.fn);
    const { key } = await h.tenant();
    const off = await h.tenant({ cache: { enabled: false } });
    for (let i = 0; i < 2; i++) {
      expect((await h.chat(key, det({ temperature: 0.8 }))).headers.get("x-prompt-cache")).toBe("BYPASS");
      expect((await h.chat(key, det(), { "x-prompt-cache": "bypass" })).headers.get("x-prompt-cache")).toBe(
        "BYPASS",
      );
      expect((await h.chat(off.key, det())).headers.get("x-prompt-cache")).toBe("BYPASS");
      await h.settled();
    }
    expect(b.count()).toBe(6);
    // A seeded request is deterministic: cached.
    await (await h.chat(key, det({ temperature: 0.8, seed: 7 }))).text();
    await h.settled();
    expect((await h.chat(key, det({ temperature: 0.8, seed: 7 }))).headers.get("x-prompt-cache")).toBe("HIT");
  });

  it("hits cost no quota tokens and show in usage as cached", async () => {
    const b = backend();
    const h = harness(b.fn);
    const { key } = await h.tenant({ quota: { tokens_per_minute: 10_000 } });
    await (await h.chat(key, det())).text();
    await h.settled();
    const before = await h.usage(key);
    const tpm = (u: typeof before) =>
      u.quota.dimensions.find((d) => d.dimension === "tokens_minute")?.remaining;
    expect(tpm(before)).toBe(10_000 - 13);
    for (let i = 0; i < 3; i++) expect((await h.chat(key, det())).headers.get("x-prompt-cache")).toBe("HIT");
    const after = await h.usage(key);
    expect(tpm(after)).toBe(10_000 - 13);
    expect(after.totals).toMatchObject({
      requests: 4,
      cache_hits: 3,
      cached_tokens: 3 * 13,
      total_tokens: 13,
    });
  });

  it("does not store answers with parts an entry cannot replay (reasoning)", async () => {
    let n = 0;
    const h = harness(() => {
      n++;
      return framesResponse([
        start(9),
        { t: "token", id: 1, text: "", reasoning: "thinking" },
        { t: "token", id: 2, text: "answer" },
        end({ prompt_tokens: 9, completion_tokens: 2 }),
      ]);
    });
    const { key } = await h.tenant();
    const first = (await (await h.chat(key, det())).json()) as { choices: { message: unknown }[] };
    expect(first.choices[0].message).toMatchObject({ content: "answer", reasoning_content: "thinking" });
    await h.settled();
    expect((await h.chat(key, det())).headers.get("x-prompt-cache")).toBe("MISS");
    expect(n).toBe(2);
  });

  it("does not store failed or unfinished answers", async () => {
    let n = 0;
    const h = harness(() => {
      n++;
      return Response.json(
        { error: { message: "x", type: "server_error", param: null, code: null } },
        { status: 500 },
      );
    });
    const { key } = await h.tenant();
    await (await h.chat(key, det())).text();
    await h.settled();
    expect((await h.chat(key, det())).headers.get("x-prompt-cache")).toBe("MISS");
    expect(n).toBe(2);
  });
});
