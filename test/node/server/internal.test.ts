/**
 * POST /internal/v1/generate (the frame protocol): signed only, refusals as JSON before any frame,
 * and frames that the edge-side converter turns into exactly what the backend's own OpenAI
 * endpoints send for the same generation (chat and completions, stream and not, logprobs, echo,
 * usage). Then on the real tiny model: exact cached tokens, pings during prefill, cancellation,
 * tenant caps, an error frame when generation fails.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServerApp, type ServerOptions } from "../../../gpu-backend/server/app.js";
import type { OpenAIErrorBody } from "../../../src/openai/errors.js";
import type { ChatCompletion, LegacyLogprobs } from "../../../src/openai/types.js";
import { encodeRequest, readFrames } from "../../../src/protocol/codec.js";
import { collectFrames } from "../../../src/protocol/collect.js";
import type { OpenAIView } from "../../../src/protocol/openai.js";
import { framesToSse } from "../../../src/protocol/sse.js";
import {
  type Frame,
  INTERNAL_GENERATE_PATH,
  type InternalRequest,
  PROTOCOL_VERSION,
} from "../../../src/protocol/types.js";
import { signRequest } from "../../../src/signing.js";
import { FakeEngine } from "./fake-engine.js";
import { idle, makeTinyModel, type RealServer, startServer, until } from "./real-server.js";
import { sseEvents } from "./sse.js";

const SECRET = "edge-backend";

type Fetcher = (path: string, init: RequestInit) => Promise<Response>;

async function internal(
  fetcher: Fetcher,
  req: Omit<InternalRequest, "v" | "limits"> & Partial<Pick<InternalRequest, "limits">>,
  opts: { signTenant?: string; signal?: AbortSignal } = {},
): Promise<Response> {
  const body = encodeRequest({ v: PROTOCOL_VERSION, limits: {}, ...req } as InternalRequest);
  const headers = await signRequest(SECRET, {
    method: "POST",
    path: INTERNAL_GENERATE_PATH,
    body,
    tenant: opts.signTenant ?? req.tenant,
  });
  return fetcher(INTERNAL_GENERATE_PATH, { method: "POST", headers, body, signal: opts.signal });
}

async function direct(fetcher: Fetcher, path: string, request: Record<string, unknown>): Promise<Response> {
  const body = JSON.stringify(request);
  const headers = await signRequest(SECRET, { method: "POST", path, body, tenant: "acme" });
  return fetcher(path, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
}

/** Ids and timestamps differ per response; everything else must be identical. */
function normalize(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(normalize);
  if (typeof x !== "object" || x === null) return x;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(x)) {
    if (k === "id" && typeof v === "string") out[k] = "ID";
    else if (k === "created") out[k] = 0;
    else out[k] = normalize(v);
  }
  return out;
}

const events = (sse: string) => sseEvents(sse).map((d) => (d === "[DONE]" ? d : normalize(JSON.parse(d))));

function viewOf(endpoint: "chat" | "completion", request: Record<string, unknown>): OpenAIView {
  const so = request.stream_options as { include_usage?: boolean } | undefined;
  return {
    endpoint,
    id: "ID",
    created: 0,
    model: String(request.model),
    includeUsage: so?.include_usage === true,
    logprobs: endpoint === "chat" ? request.logprobs === true : request.logprobs != null,
    echo: request.echo === true && typeof request.prompt === "string" ? request.prompt : undefined,
    n: (request.n as number | undefined) ?? 1,
  };
}

/** The non-stream answer the edge builds from the frames of this request. */
async function answerFromFrames(
  fetcher: Fetcher,
  endpoint: "chat" | "completion",
  request: Record<string, unknown>,
) {
  const res = await internal(fetcher, { tenant: "acme", endpoint, request } as InternalRequest);
  return (await collectFrames(res.body!, viewOf(endpoint, request))).response();
}

describe("frames -> OpenAI equals the backend's own OpenAI endpoints", () => {
  const app = createServerApp(new FakeEngine(), { secret: SECRET });
  const fetcher: Fetcher = async (path, init) => app.request(path, init);
  const chat = { model: "fake-model", messages: [{ role: "user", content: "héllo wörld" }], temperature: 0 };
  const comp = { model: "fake-model", prompt: "once upon a time", temperature: 0 };
  const cases: [string, "chat" | "completion", Record<string, unknown>][] = [
    [
      "chat, stream, usage, logprobs",
      "chat",
      { ...chat, stream: true, stream_options: { include_usage: true }, logprobs: true, top_logprobs: 2 },
    ],
    ["chat, stream, no usage, max_tokens", "chat", { ...chat, stream: true, max_tokens: 5 }],
    ["chat, non-stream, logprobs", "chat", { ...chat, logprobs: true, top_logprobs: 3 }],
    [
      "completion, stream, echo, logprobs, usage",
      "completion",
      { ...comp, stream: true, echo: true, logprobs: 2, stream_options: { include_usage: true } },
    ],
    [
      "completion, non-stream, echo, logprobs",
      "completion",
      { ...comp, echo: true, logprobs: 1, max_tokens: 7 },
    ],
    [
      "chat, n = 3, stream, usage, logprobs",
      "chat",
      {
        ...chat,
        n: 3,
        stream: true,
        stream_options: { include_usage: true },
        logprobs: true,
        top_logprobs: 1,
      },
    ],
    ["chat, n = 2, non-stream", "chat", { ...chat, n: 2, max_tokens: 4 }],
    ["completion, n = 2, stream, echo", "completion", { ...comp, n: 2, stream: true, echo: true }],
    [
      "completion, n = 2, non-stream, echo, logprobs",
      "completion",
      { ...comp, n: 2, echo: true, logprobs: 1 },
    ],
    // The edge has only the ids: the echoed text comes in the start frame.
    [
      "completion, stream, echo of a token-id prompt",
      "completion",
      { ...comp, prompt: [104, 233, 108], echo: true, stream: true },
    ],
  ];
  for (const [name, endpoint, request] of cases) {
    it(name, async () => {
      const path = endpoint === "chat" ? "/v1/chat/completions" : "/v1/completions";
      const want = await direct(fetcher, path, request);
      expect(want.status).toBe(200);
      const res = await internal(fetcher, { tenant: "acme", endpoint, request } as InternalRequest);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/vnd.moe.frames.v1+msgpack");
      const view = viewOf(endpoint, request);
      if (request.stream) {
        let ended: string | null = null;
        const { stream, state } = framesToSse(res.body!, view, { onEnd: (s) => (ended = s) });
        const got = await new Response(stream).text();
        expect(events(got)).toEqual(events(await want.text()));
        expect(ended).toBe("ok");
        expect(state.usage?.completion_tokens).toBeGreaterThan(0);
      } else {
        const state = await collectFrames(res.body!, view);
        const body = await want.json();
        expect(normalize(state.response())).toEqual(normalize(body));
        if (endpoint === "chat" && request.top_logprobs === 3) {
          // A token that is part of a character keeps its raw bytes through the frames.
          const reply = body as { choices: { logprobs: { content: { top_logprobs: unknown[] }[] } }[] };
          const top = reply.choices[0].logprobs.content[0].top_logprobs;
          expect(top[2]).toEqual({ token: "\\xe2", logprob: -2, bytes: [0xe2] });
        }
      }
    });
  }
});

describe("tool calls: frames -> OpenAI equals the backend's own endpoints", () => {
  const reply =
    'Checking.<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>\n' +
    '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>';
  const app = createServerApp(new FakeEngine({ reply }), { secret: SECRET });
  const fetcher: Fetcher = async (path, init) => app.request(path, init);
  const tools = ["get_weather", "get_time"].map((name) => ({ type: "function", function: { name } }));
  const chat = { model: "fake-model", messages: [{ role: "user", content: "weather?" }], tools };
  const calls = [
    { type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
    { type: "function", function: { name: "get_time", arguments: "{}" } },
  ];

  it("non-stream: content, then the calls; finish_reason tool_calls", async () => {
    const want = (await (await direct(fetcher, "/v1/chat/completions", chat)).json()) as ChatCompletion;
    const { message, finish_reason } = want.choices[0];
    expect(finish_reason).toBe("tool_calls");
    expect(message.content).toBe("Checking.");
    expect(message.tool_calls).toMatchObject(calls);
    expect(message.tool_calls?.[0].id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(normalize(await answerFromFrames(fetcher, "chat", chat))).toEqual(normalize(want));
  });

  it("stream: each call whole in one delta, numbered; parallel_tool_calls false stops after the first", async () => {
    for (const extra of [{}, { parallel_tool_calls: false }]) {
      const request = { ...chat, stream: true, stream_options: { include_usage: true }, ...extra };
      const want = await (await direct(fetcher, "/v1/chat/completions", request)).text();
      const deltas = sseEvents(want)
        .filter((d) => d !== "[DONE]")
        .map((d) => JSON.parse(d).choices[0])
        .filter(Boolean);
      const sent = deltas.flatMap((c) => c.delta.tool_calls ?? []);
      const n = "parallel_tool_calls" in extra ? 1 : 2;
      expect(sent).toMatchObject(calls.slice(0, n).map((c, index) => ({ index, ...c })));
      expect(deltas.map((c) => c.delta.content ?? "").join("")).toBe("Checking.");
      expect(deltas.at(-1).finish_reason).toBe("tool_calls");
      const res = await internal(fetcher, { tenant: "acme", endpoint: "chat", request } as InternalRequest);
      const { stream } = framesToSse(res.body!, viewOf("chat", request));
      expect(events(await new Response(stream).text())).toEqual(events(want));
    }
  });

  it("a model whose template has no tool format refuses tools with a 400", async () => {
    const engine = new FakeEngine();
    Object.defineProperty(engine.tokenizer, "toolCallFormat", { value: null });
    const plain = createServerApp(engine, { secret: SECRET });
    const res = await direct(async (p, i) => plain.request(p, i), "/v1/chat/completions", chat);
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as OpenAIErrorBody;
    expect([error.param, error.code]).toEqual(["tools", "unsupported_value"]);
    const ok = await direct(async (p, i) => plain.request(p, i), "/v1/chat/completions", {
      ...chat,
      tool_choice: "none",
    });
    expect(ok.status).toBe(200);
  });
});

describe("reasoning (--reasoning-parser): frames -> OpenAI equals the backend's own endpoints", () => {
  const reply =
    '<think>\nThe user wants the weather.\n</think>\n\nChecking.<tool_call>{"name": "f", "arguments": {}}</tool_call>';
  const app = createServerApp(new FakeEngine({ reply }), { secret: SECRET, reasoningParser: true });
  const fetcher: Fetcher = async (path, init) => app.request(path, init);
  const chat = {
    model: "fake-model",
    messages: [{ role: "user", content: "weather?" }],
    tools: [{ type: "function", function: { name: "f" } }],
  };

  it("non-stream: reasoning_content, content and the call apart", async () => {
    const want = (await (await direct(fetcher, "/v1/chat/completions", chat)).json()) as ChatCompletion;
    expect(want.choices[0].message).toMatchObject({
      reasoning_content: "\nThe user wants the weather.\n",
      content: "Checking.",
      tool_calls: [{ function: { name: "f", arguments: "{}" } }],
    });
    expect(normalize(await answerFromFrames(fetcher, "chat", chat))).toEqual(normalize(want));
  });

  it("stream: reasoning_content deltas first, then content; the same through frames", async () => {
    const request = { ...chat, stream: true };
    const want = await (await direct(fetcher, "/v1/chat/completions", request)).text();
    const deltas = sseEvents(want)
      .filter((d) => d !== "[DONE]")
      .map((d) => JSON.parse(d).choices[0].delta);
    expect(deltas.map((d) => d.reasoning_content ?? "").join("")).toBe("\nThe user wants the weather.\n");
    expect(deltas.map((d) => d.content ?? "").join("")).toBe("Checking.");
    const res = await internal(fetcher, { tenant: "acme", endpoint: "chat", request } as InternalRequest);
    const { stream } = framesToSse(res.body!, viewOf("chat", request));
    expect(events(await new Response(stream).text())).toEqual(events(want));
  });

  it("off by default: the think block stays in the content", async () => {
    const plain = createServerApp(new FakeEngine({ reply: "<think>x</think>\n\ny" }), { secret: SECRET });
    const res = await direct(async (p, i) => plain.request(p, i), "/v1/chat/completions", chat);
    const body = (await res.json()) as ChatCompletion;
    expect(body.choices[0].message.content).toBe("<think>x</think>\n\ny");
    expect(body.choices[0].message.reasoning_content).toBeUndefined();
  });
});

describe("refusals come as JSON errors before any frame", () => {
  const setup = (opts: ServerOptions = { secret: SECRET }, engine = new FakeEngine()) => {
    const app = createServerApp(engine, opts);
    const fetcher: Fetcher = async (path, init) => app.request(path, init);
    return { app, fetcher };
  };
  const request = { model: "fake-model", messages: [{ role: "user", content: "hi" }] };

  it("unsigned, bearer and local-unsigned access are all refused (signed only)", async () => {
    const { app } = setup({ secret: SECRET, allowUnsigned: true, bearerToken: "tok" });
    const body = encodeRequest({
      v: 1,
      tenant: "",
      limits: {},
      endpoint: "chat",
      request,
    } as InternalRequest);
    const res = await app.request(INTERNAL_GENERATE_PATH, {
      method: "POST",
      headers: { authorization: "Bearer tok" },
      body,
    });
    expect(res.status).toBe(401);
  });

  it("with the OpenAI endpoints switched off, only the frame protocol answers", async () => {
    const { app, fetcher } = setup({ secret: SECRET, openaiEndpoints: false });
    const off = await direct(fetcher, "/v1/chat/completions", request);
    expect(off.status).toBe(404);
    expect((await app.request("/v1/models")).status).toBe(404);
    const on = await internal(fetcher, { tenant: "acme", endpoint: "chat", request } as InternalRequest);
    expect(on.status).toBe(200);
    await on.arrayBuffer();
  });

  it("tenant mismatch 403, bad envelope 400, invalid OpenAI request 400, unknown model 404", async () => {
    const { app, fetcher } = setup();
    const mismatch = await internal(
      fetcher,
      { tenant: "acme", endpoint: "chat", request } as InternalRequest,
      {
        signTenant: "evil",
      },
    );
    expect(mismatch.status).toBe(403);
    const junk = new Uint8Array([0xc1, 0x00]);
    const h = await signRequest(SECRET, {
      method: "POST",
      path: INTERNAL_GENERATE_PATH,
      body: junk,
      tenant: "acme",
    });
    const bad = await app.request(INTERNAL_GENERATE_PATH, { method: "POST", headers: h, body: junk });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("invalid_protocol");
    const invalid = await internal(fetcher, {
      tenant: "acme",
      endpoint: "chat",
      request: { ...request, temperature: 9 },
    } as InternalRequest);
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { error: { param: string } }).error.param).toBe("temperature");
    const unknown = await internal(fetcher, {
      tenant: "acme",
      endpoint: "chat",
      request: { ...request, model: "nope" },
    } as InternalRequest);
    expect(unknown.status).toBe(404);
  });
});

describe("on the real tiny model", () => {
  let model: ReturnType<typeof makeTinyModel>;
  beforeAll(() => {
    model = makeTinyModel();
  });
  afterAll(() => model.cleanup());
  const fetcherOf =
    (s: RealServer): Fetcher =>
    (path, init) =>
      fetch(`${s.url}${path}`, init);
  const req = (content: string, extra: Record<string, unknown> = {}) =>
    ({
      tenant: "acme",
      endpoint: "chat",
      request: {
        model: "tiny",
        messages: [{ role: "user", content }],
        temperature: 0,
        max_tokens: 6,
        ignore_eos: true,
        ...extra,
      },
    }) as InternalRequest;
  const allFrames = async (res: Response) => {
    const out: Frame[] = [];
    for await (const f of readFrames(res.body!)) out.push(f);
    return out;
  };

  it("the end frame carries exact usage (cached tokens) and paging; pings flow during a long prefill", async () => {
    const s = await startServer(
      model.dir,
      { engine: { scheduler: { stepTokens: 8 }, prefixBlockTokens: 16 } },
      { secret: SECRET, keepAliveMs: 5 },
    );
    try {
      const prompt = "a shared system prompt that many requests start with. ".repeat(30);
      const first = await allFrames(await internal(fetcherOf(s), req(prompt)));
      const second = await allFrames(await internal(fetcherOf(s), req(prompt)));
      const end1 = first.at(-1)!;
      const end2 = second.at(-1)!;
      if (end1.t !== "end" || end2.t !== "end") throw new Error("no end frame");
      expect(first[0]).toMatchObject({ t: "start", v: 1, model: "tiny" });
      expect(end1.usage.cached_tokens).toBe(0);
      expect(end2.usage.cached_tokens).toBe(s.engine.prefixCache!.stats().hitTokens);
      expect(end2.usage.cached_tokens).toBeGreaterThan(0);
      expect(end2.usage.completion_tokens).toBe(6);
      expect(second.filter((f) => f.t === "token")).toHaveLength(6);
      expect(end1.paging?.hits).toBeGreaterThan(0);
      // The first request's long prefill (no cache) sent pings before its first token.
      const firstToken = first.findIndex((f) => f.t === "token");
      expect(first.slice(0, firstToken).some((f) => f.t === "ping")).toBe(true);
      expect(idle(s.engine)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it("echo + logprobs + max_tokens 0 scores the prompt (lm-eval's loglikelihood call), through frames too", async () => {
    const s = await startServer(model.dir, {}, { secret: SECRET });
    try {
      const text = "Paris is the capital of France.";
      const ids = s.engine.tokenizer.encode(text, false);
      for (const prompt of [ids, text]) {
        const request = { model: "tiny", prompt, max_tokens: 0, echo: true, logprobs: 2, temperature: 0 };
        const want = (await (await direct(fetcherOf(s), "/v1/completions", request)).json()) as {
          choices: { text: string; finish_reason: string; logprobs: LegacyLogprobs }[];
          usage: { prompt_tokens: number; completion_tokens: number };
        };
        const { text: echoed, finish_reason, logprobs } = want.choices[0];
        const n = want.usage.prompt_tokens;
        expect([finish_reason, want.usage.completion_tokens]).toEqual(["length", 0]);
        expect(echoed).toBe(text);
        expect(logprobs.tokens).toHaveLength(n);
        expect([logprobs.token_logprobs[0], logprobs.top_logprobs[0]]).toEqual([null, null]);
        for (let i = 1; i < n; i++) {
          expect(logprobs.token_logprobs[i]).toBeLessThanOrEqual(0);
          expect(Object.keys(logprobs.top_logprobs[i]!).length).toBeGreaterThanOrEqual(1);
        }
        expect(logprobs.text_offset[0]).toBe(0);
        expect(logprobs.text_offset.at(-1)).toBeLessThan(text.length);
        const res = await internal(fetcherOf(s), {
          tenant: "acme",
          endpoint: "completion",
          request,
        } as InternalRequest);
        const state = await collectFrames(res.body!, viewOf("completion", request));
        expect(normalize(state.response())).toEqual(normalize(want));
      }
      // With a generated continuation the completion's logprobs follow the prompt's.
      const request = {
        model: "tiny",
        prompt: ids,
        max_tokens: 3,
        echo: true,
        logprobs: 0,
        temperature: 0,
        ignore_eos: true,
      };
      const want = (await (await direct(fetcherOf(s), "/v1/completions", request)).json()) as {
        choices: { logprobs: LegacyLogprobs }[];
      };
      expect(want.choices[0].logprobs.tokens).toHaveLength(ids.length + 3);
      expect(idle(s.engine)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it("cancelling the frame stream frees the sequence; tenant caps from the request's limits give 429", async () => {
    const s = await startServer(model.dir, {}, { secret: SECRET });
    try {
      const ac = new AbortController();
      const res = await internal(
        fetcherOf(s),
        { ...req("long", { max_tokens: 3000 }), limits: { maxInflight: 1 } },
        { signal: ac.signal },
      );
      expect(res.status).toBe(200);
      const frames = readFrames(res.body!);
      await frames.next();
      await frames.next();
      const refused = await internal(fetcherOf(s), { ...req("second"), limits: { maxInflight: 1 } });
      expect(refused.status).toBe(429);
      expect(refused.headers.get("retry-after")).toBe("1");
      ac.abort();
      await frames.return(undefined);
      await until(() => idle(s.engine), 3000, "idle after cancel");
      const ok = await internal(fetcherOf(s), { ...req("third"), limits: { maxInflight: 1 } });
      expect(ok.status).toBe(200);
      expect((await allFrames(ok)).at(-1)?.t).toBe("end");
    } finally {
      await s.close();
    }
  });

  it("a failure mid-generation sends an error frame and nothing after it", async () => {
    const s = await startServer(model.dir, {}, { secret: SECRET });
    try {
      const m = s.engine.model;
      const forward = m.forwardBatch.bind(m);
      let calls = 0;
      m.forwardBatch = async (items) => {
        if (++calls === 3) throw new Error("expert read failed");
        return forward(items);
      };
      const frames = await allFrames(await internal(fetcherOf(s), req("x", { max_tokens: 10 })));
      expect(frames.filter((f) => f.t === "token")).toHaveLength(2);
      const last = frames.at(-1)!;
      expect(last).toMatchObject({ t: "error", status: 500, error: { type: "server_error" } });
      expect(idle(s.engine)).toBe(true);
    } finally {
      await s.close();
    }
  });
});
