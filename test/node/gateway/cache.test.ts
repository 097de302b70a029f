import { createParser } from "eventsource-parser";
import { describe, expect, it } from "vitest";
import {
  type CacheEntry,
  canonicalRequest,
  decodeEntry,
  encodeEntry,
  isDeterministic,
  promptCacheHash,
  replayEvents,
  replayJson,
  replaySse,
  stableStringify,
  storageKey,
  uncacheableReason,
} from "../../../src/cache/index.js";

const req = {
  model: "qwen3-30b-a3b",
  messages: [{ role: "user", content: "Hello" }],
  temperature: 0,
  max_tokens: 16,
};

const entry: CacheEntry = {
  v: 1,
  kind: "chat",
  model: "qwen3-30b-a3b",
  createdAt: 1,
  deltas: ["Hel", "lo", " wörld ✓"],
  finishReason: "stop",
  promptTokens: 7,
  completionTokens: 3,
};

describe("prompt cache key", () => {
  it("ignores transport fields, key order and nulls; folds max_completion_tokens and stop", async () => {
    const a = await promptCacheHash("t1", "m", req);
    const b = await promptCacheHash("t1", "m", {
      max_tokens: 16,
      stream: true,
      stream_options: { include_usage: true },
      user: "u-42",
      temperature: 0,
      top_p: null,
      messages: [{ content: "Hello", role: "user" }],
    });
    expect(b).toBe(a);
    expect(canonicalRequest({ max_completion_tokens: 5, stop: "x" })).toEqual({ max_tokens: 5, stop: ["x"] });
    expect(stableStringify({ b: 1, a: [2, { d: 1, c: 0 }] })).toBe('{"a":[2,{"c":0,"d":1}],"b":1}');
  });

  it("changes with tenant, model, any content or sampling field, and unknown fields", async () => {
    const base = await promptCacheHash("t1", "m", req);
    const variants = await Promise.all([
      promptCacheHash("t2", "m", req),
      promptCacheHash("t1", "m2", req),
      promptCacheHash("t1", "m", { ...req, messages: [{ role: "user", content: "Hello!" }] }),
      promptCacheHash("t1", "m", { ...req, max_tokens: 17 }),
      promptCacheHash("t1", "m", { ...req, seed: 1 }),
      promptCacheHash("t1", "m", { ...req, response_format: { type: "json_object" } }),
    ]);
    expect(new Set([base, ...variants]).size).toBe(variants.length + 1);
    expect(storageKey("t/1", base)).toBe(`pc/t%2F1/${base}`);
  });

  it("only deterministic requests without logprobs are cacheable", () => {
    expect(isDeterministic({ temperature: 0 })).toBe(true);
    expect(isDeterministic({ temperature: 0.7, seed: 3 })).toBe(true);
    expect(isDeterministic({ temperature: 0.7 })).toBe(false);
    expect(isDeterministic({})).toBe(false);
    expect(uncacheableReason({ temperature: 0, logprobs: true })).toBe("logprobs");
    expect(uncacheableReason({ seed: 1 })).toBeNull();
    // Entries replay text only: a reply that may hold tool calls is computed every time.
    const tools = [{ type: "function", function: { name: "f" } }];
    expect(uncacheableReason({ temperature: 0, tools })).toBe("tools");
    expect(uncacheableReason({ temperature: 0, tools, tool_choice: "none" })).toBeNull();
  });
});

describe("cache entries", () => {
  it("round-trip through msgpack, smaller than JSON; garbage decodes to null", () => {
    const bytes = encodeEntry(entry);
    expect(decodeEntry(bytes)).toEqual(entry);
    expect(bytes.length).toBeLessThan(JSON.stringify(entry).length);
    expect(decodeEntry(new Uint8Array([0xc1, 0x00]))).toBeNull();
    expect(decodeEntry(encodeEntry({ ...entry, v: 2 } as unknown as CacheEntry))).toBeNull();
  });

  it("replays as SSE with the same content and a cached usage chunk", async () => {
    const text = await new Response(replaySse(entry, { id: "c1", created: 5, includeUsage: true })).text();
    const events: string[] = [];
    const p = createParser({ onEvent: (e) => events.push(e.data) });
    p.feed(text);
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    const content = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    expect(content).toBe("Hello wörld ✓");
    expect(chunks.at(-2).choices[0].finish_reason).toBe("stop");
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: {
        prompt_tokens: 7,
        completion_tokens: 3,
        total_tokens: 10,
        prompt_tokens_details: { cached_tokens: 7 },
      },
    });
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === "c1")).toBe(true);
  });

  it("replays without the usage chunk when not asked, and as a whole completion", () => {
    const ev = replayEvents(entry, { id: "c", created: 1, includeUsage: false });
    expect(ev.length).toBe(1 + 3 + 1 + 1);
    expect(ev.some((e) => e.includes('"usage"'))).toBe(false);
    const json = replayJson(entry, { id: "c", created: 1 }) as {
      choices: Array<{ message: { content: string } }>;
    };
    expect(json.choices[0].message.content).toBe("Hello wörld ✓");
    const comp = replayJson({ ...entry, kind: "completion" }, { id: "c", created: 1 }) as { object: string };
    expect(comp.object).toBe("text_completion");
  });
});
