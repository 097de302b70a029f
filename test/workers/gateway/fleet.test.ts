/** Routing across a backend fleet: retry before the first byte, circuit breaking, prefix affinity, load, health. */
import { beforeEach, describe, expect, it } from "vitest";
import { fleetHealth, resetFleetHealth } from "../../../workers/gateway/fleet.js";
import { framesAnswer, harness } from "./util.js";

const BACKENDS = JSON.stringify(
  ["a", "b", "c"].map((id) => ({ id, url: `http://${id}.backend`, models: ["test-model", "other-model"] })),
);
const host = (url: string) => new URL(url).hostname.split(".")[0];
const ask = (system: string, user = "hi") => ({
  model: "test-model",
  messages: [
    { role: "system", content: system },
    { role: "user", content: user },
  ],
});

beforeEach(() => resetFleetHealth());

describe("fleet routing", () => {
  it("prefix affinity: a shared prompt prefix always lands on the same backend; others spread", async () => {
    const hits: string[] = [];
    const h = harness(
      (url) => {
        if (url.endsWith("/health")) return Response.json({ status: "ok" });
        hits.push(host(url));
        return framesAnswer(["x"], { prompt_tokens: 1, completion_tokens: 1 });
      },
      { BACKENDS },
    );
    const { key } = await h.tenant();
    const sys = "You are a support bot for ACME. ".repeat(20);
    for (let i = 0; i < 6; i++) expect((await h.chat(key, ask(sys, `question ${i}`))).status).toBe(200);
    expect(new Set(hits).size).toBe(1);
    hits.length = 0;
    for (let i = 0; i < 30; i++) await h.chat(key, ask(`system prompt number ${i}`));
    expect(new Set(hits).size).toBe(3);
  });

  it("retries on another backend when the connection fails before the first byte, then breaks the circuit", async () => {
    const tried: string[] = [];
    let sysOnA = "";
    const h = harness(
      (url) => {
        if (url.endsWith("/health")) return Response.json({ status: "ok" });
        tried.push(host(url));
        if (host(url) === "a") throw new TypeError("connection refused");
        return framesAnswer(["x"], { prompt_tokens: 1, completion_tokens: 1 });
      },
      { BACKENDS },
    );
    const { key } = await h.tenant();
    // Find a prompt whose preferred backend is "a".
    for (let i = 0; i < 50 && !sysOnA; i++) {
      tried.length = 0;
      await (await h.chat(key, ask(`probe ${i}`))).text();
      if (tried[0] === "a") sysOnA = `probe ${i}`;
    }
    expect(sysOnA).not.toBe("");
    expect(tried).toHaveLength(2); // a failed, the retry succeeded
    for (let i = 0; i < 3; i++) {
      const res = await h.chat(key, ask(sysOnA));
      expect(res.status).toBe(200);
      expect(res.headers.get("x-backend-id")).not.toBe("a");
    }
    const a = fleetHealth().get("a");
    expect(a?.breaker.state).toBe("open");
    tried.length = 0;
    await h.chat(key, ask(sysOnA));
    expect(tried).not.toContain("a"); // open breaker: not even tried
  });

  it("a 503 from one backend is retried elsewhere; 4xx is not", async () => {
    const tried: string[] = [];
    const h = harness(
      (url) => {
        if (url.endsWith("/health")) return Response.json({ status: "ok" });
        tried.push(host(url));
        if (tried.length === 1)
          return Response.json(
            { error: { message: "busy", type: "server_error", param: null, code: null } },
            { status: 503 },
          );
        return framesAnswer(["x"], { prompt_tokens: 1, completion_tokens: 1 });
      },
      { BACKENDS },
    );
    const { key } = await h.tenant();
    expect((await h.chat(key, ask("s"))).status).toBe(200);
    expect(tried).toHaveLength(2);
    expect(tried[0]).not.toBe(tried[1]);
  });

  it("active health checks: a backend that reports down or saturated gets no new work", async () => {
    const hits: string[] = [];
    const h = harness(
      (url) => {
        if (url.endsWith("/health")) {
          if (host(url) === "b") return new Response("down", { status: 503 });
          return Response.json({ status: "ok", load: host(url) === "c" ? 1 : 0 });
        }
        hits.push(host(url));
        return framesAnswer(["x"], { prompt_tokens: 1, completion_tokens: 1 });
      },
      { BACKENDS, HEALTH_INTERVAL_MS: "60000" },
    );
    const { key } = await h.tenant();
    await (await h.chat(key, ask("warm-up"))).text();
    await h.settled(); // health checks done
    expect(fleetHealth().get("b")?.up).toBe(false);
    expect(fleetHealth().get("c")?.load).toBe(1);
    hits.length = 0;
    for (let i = 0; i < 20; i++) await (await h.chat(key, ask(`p${i}`))).text();
    expect(new Set(hits)).toEqual(new Set(["a"]));
    const view = (await (await h.admin("GET", "/fleet")).json()) as {
      data: Array<{ id: string; health: { up: boolean } }>;
    };
    expect(view.data.find((b) => b.id === "b")?.health.up).toBe(false);
  });

  it("models no backend serves are a 404 before any quota is touched", async () => {
    const h = harness(() => framesAnswer(["x"], { prompt_tokens: 1, completion_tokens: 1 }), { BACKENDS });
    const { key } = await h.tenant();
    const res = await h.chat(key, { model: "nope", messages: [{ role: "user", content: "x" }] });
    expect(res.status).toBe(404);
  });
});
