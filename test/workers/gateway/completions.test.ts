/** /v1/completions through the same gateway stages: quota settles from the text stream, the cache replays text_completion. */
import { beforeEach, describe, expect, it } from "vitest";
import { clearOfMinuteEdge, framesAnswer, harness, sseEvents } from "./util.js";

beforeEach(() => clearOfMinuteEdge());

describe("/v1/completions", () => {
  it("forwards as a completion generate call, settles exact usage, then hits the cache", async () => {
    const h = harness(() =>
      framesAnswer(["Once", " upon"], { prompt_tokens: 4, completion_tokens: 2 }, "length"),
    );
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
    const firstEvents = await sseEvents(first);
    expect(text(firstEvents)).toBe("Once upon");
    expect(JSON.parse(firstEvents.at(-2) ?? "{}").choices[0]).toMatchObject({ finish_reason: "length" });
    expect(h.calls[0].url).toMatch(/\/internal\/v1\/generate$/);
    expect(h.calls[0].req).toMatchObject({ endpoint: "completion" });
    expect(h.calls[0].body).toMatchObject({ prompt: "Tell a story", max_tokens: 2 });
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

  it("takes a batch of one prompt, or token ids (reserved as exactly their count); refuses a batch of several", async () => {
    const h = harness(() => framesAnswer(["a", "b"], { prompt_tokens: 5, completion_tokens: 2 }, "length"));
    // 5 ids + max_tokens 5 fit 10 tokens a minute; a text prompt's bound (bytes + template) does not.
    const { key } = await h.tenant({ quota: { tokens_per_minute: 10 } });
    const send = (prompt: unknown) =>
      h.send("/v1/completions", {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "test-model", prompt, max_tokens: 5, temperature: 0.5 }),
      });
    const ids = await send([[11, 12, 13, 14, 15]]);
    expect(ids.status).toBe(200);
    expect(h.calls[0].body).toMatchObject({ prompt: [11, 12, 13, 14, 15] });
    // n choices may each use max_tokens: 5 ids + 2 x 5 do not fit 10 tokens a minute.
    const two = await h.send("/v1/completions", {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "test-model", prompt: [11, 12, 13, 14, 15], max_tokens: 5, n: 2 }),
    });
    expect(two.status).toBe(400);
    expect(((await two.json()) as { error: { message: string } }).error.message).toMatch(
      /needs up to 15 tokens/,
    );
    const text = await send("hello");
    expect(text.status).toBe(400);
    const err = ((await text.json()) as { error: { code: string; message: string } }).error;
    expect(err.code).toBe("request_too_large");
    expect(err.message).toMatch(/needs up to 58 tokens/); // 5 bytes + template allowance + max_tokens
    for (const batch of [
      ["a", "b"],
      [[1], [2]],
    ]) {
      const res = await send(batch);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unsupported_value");
    }
    expect(h.calls).toHaveLength(1);
    expect((await h.usage(key)).totals.total_tokens).toBe(7);
  });
});
