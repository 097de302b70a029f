/** Behaviour that needs a real socket: headers before the first token, abort on disconnect. */

import type { AddressInfo } from "node:net";
import { type ServerType, serve } from "@hono/node-server";
import { afterEach, expect, it } from "vitest";
import { createServerApp } from "../../../gpu-backend/server/app.js";
import { FakeEngine, type FakeOptions } from "./fake-engine.js";

let server: ServerType | null = null;

afterEach(() => {
  server?.close();
  server = null;
});

async function start(fake: FakeOptions) {
  const engine = new FakeEngine(fake);
  const app = createServerApp(engine, { allowUnsigned: true });
  const port = await new Promise<number>((resolve) => {
    server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info: AddressInfo) =>
      resolve(info.port),
    );
  });
  return { engine, url: `http://127.0.0.1:${port}` };
}

const body = JSON.stringify({
  model: "fake-model",
  messages: [{ role: "user", content: "hi" }],
  stream: true,
});

it("sends headers before the first token, then streams tokens as they come", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { url } = await start({ reply: "ab", beforeToken: (i) => (i === 0 ? gate : Promise.resolve()) });
  const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", body });
  // fetch resolved: the headers arrived while the engine is still blocked before token 0.
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/event-stream");
  const reader = res.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  expect(first).toContain('"role":"assistant"');
  expect(first).not.toContain('"content":"a"');
  release();
  let rest = "";
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    rest += new TextDecoder().decode(r.value);
  }
  expect(rest).toContain('"content":"a"');
  expect(rest).toContain("[DONE]");
});

it("stops generating when the client disconnects", async () => {
  let tokens = 0;
  const { url, engine } = await start({
    reply: "x".repeat(1000),
    beforeToken: async () => {
      tokens++;
      await new Promise((r) => setTimeout(r, 5));
    },
  });
  const ac = new AbortController();
  const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", body, signal: ac.signal });
  const reader = res.body!.getReader();
  await reader.read();
  await reader.read();
  const during = (await (await fetch(`${url}/health`)).json()) as { active_requests: number };
  expect(during.active_requests).toBe(1);
  ac.abort();
  const deadline = Date.now() + 3000;
  while (engine.aborted === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(engine.aborted).toBe(1);
  expect(tokens).toBeLessThan(1000);
  const health = (await (await fetch(`${url}/health`)).json()) as { active_requests: number };
  expect(health.active_requests).toBe(0);
});
