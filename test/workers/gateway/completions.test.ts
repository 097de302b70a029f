/** /v1/completions through the same gateway stages: quota settles from the text stream, the cache replays text_completion. */
import { beforeEach, describe, expect, it } from "vitest";
import { clearOfMinuteEdge, harness, sseEvents } from "./util.js";

const enc = new TextEncoder();
function textStream(pieces: string[], usage: { prompt_tokens: number; completion_tokens: number }): Response {
  const base = { id: "cmpl-x", object: "text_completion", created: 1, model: "test-model" };
  const ev = [
    ...pieces.map((t) => ({
      ...base,
      choices: [{ index: 0, text: t, logprobs: null, finish_reason: null }],
    })),
    { ...base, choices: [{ index: 0, text: "", logprobs: null, finish_reason: "length" }] },
    {
      ...base,
      choices: [],
      usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
    },
  ];
  const body = `${ev.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("")}data: [DONE]\n\n`;
  return new Response(enc.encode(body), { headers: { "content-type": "text/event-stream" } });
}

beforeEach(() => clearOfMinuteEdge());

describe("/v1/completions", () => {
  it("forwards to the backend's /v1/completions, settles exact usage, then hits the cache", async () => {
    const h = harness(() => textStream(["Once", " upon"], { prompt_tokens: 4, completion_tokens: 2 }));
    const { key } = await h.tenant({ quota: { tokens_per_minute: 1000 } });
    const send = () =>
      h.send("/v1/completions", {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "test-model",
          prompt: "Tell a story",
          max_tokens: 2,
          temperature: 0,
          stream: true,
        }),
      });
    const first = await send();
    expect(first.status).toBe(200);
    expect(first.headers.get("x-prompt-cache")).toBe("MISS");
    const text = (evs: string[]) =>
      evs
        .filter((e) => e !== "[DONE]")
        .map((e) => (JSON.parse(e) as { choices: Array<{ text?: string }> }).choices[0]?.text ?? "")
        .join("");
    expect(text(await sseEvents(first))).toBe("Once upon");
    expect(h.calls[0].url).toMatch(/\/v1\/completions$/);
    const u = await h.usage(key);
    expect(u.totals.total_tokens).toBe(6);
    expect(u.quota.dimensions.find((d) => d.dimension === "tokens_minute")?.remaining).toBe(994);
    const second = await send();
    expect(second.headers.get("x-prompt-cache")).toBe("HIT");
    const events = await sseEvents(second);
    expect(text(events)).toBe("Once upon");
    expect(JSON.parse(events[0]).object).toBe("text_completion");
    expect(h.calls).toHaveLength(1);
  });

  it("validates the prompt with an OpenAI-style 400 and charges nothing", async () => {
    const h = harness(() => new Response("unused"));
    const { key } = await h.tenant({ quota: { tokens_per_minute: 1000 } });
    const res = await h.send("/v1/completions", {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "test-model", prompt: 42 }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).toBe("prompt");
    const u = await h.usage(key);
    expect(u.totals.requests ?? 0).toBe(0);
    expect(h.calls).toHaveLength(0);
  });
});
