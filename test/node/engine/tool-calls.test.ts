/**
 * Tool calling: finding calls in the text stream (each template's format), the grammar a forced
 * call is generated under, and the whole path on the tiny models (template with tools, forced
 * calls, earlier call and result turns).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MoeEngine } from "../../../gpu-backend/engine/engine.js";
import { loadEngine } from "../../../gpu-backend/engine/load-engine.js";
import { forcedCallGrammar } from "../../../gpu-backend/engine/tool-call-grammar.js";
import { detectToolCallFormat, ToolCallParser } from "../../../gpu-backend/engine/tool-calls.js";
import type { ToolCall, ToolCallFormat } from "../../../gpu-backend/engine/types.js";
import { prepareChat } from "../../../gpu-backend/server/chat.js";
import { TOKENIZER_SPECS } from "../../../gpu-backend/tokenizer/families.js";
import type { LoadedTokenizer } from "../../../gpu-backend/tokenizer/load.js";
import { compileJsonSchema } from "../../../src/openai/json-schema.js";
import { forcedFunctions, parseChatCompletionRequest } from "../../../src/openai/schema.js";
import { chatPromptTokenBound } from "../../../src/quota/estimate.js";
import { makeTinyModels } from "./fixtures.js";

/** Feed `reply` in pieces of `step` characters; the content emitted and the calls found. */
function run(format: ToolCallFormat, reply: string, step: number, parallel = true) {
  let n = 0;
  const p = new ToolCallParser({ format, parallel }, () => `call_${n++}`);
  let text = "";
  const calls: ToolCall[] = [];
  const heldAt: number[] = [];
  for (let i = 0; i < reply.length && !p.stopped; i += step) {
    const last = i + step >= reply.length;
    const out = p.take(reply.slice(i, i + step), last);
    text += out.text;
    calls.push(...out.calls);
    heldAt.push(text.length);
  }
  return { text, calls, stopped: p.stopped, heldAt };
}

const call = (id: number, name: string, args: unknown) => ({
  id: `call_${id}`,
  name,
  arguments: JSON.stringify(args),
});

describe("tool calls in the text stream", () => {
  it("hermes: calls anywhere, the text around them is content, the same whatever the pieces", () => {
    const reply =
      'Let me check.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n' +
      '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>';
    for (const step of [1, 2, 5, reply.length]) {
      const r = run("hermes", reply, step);
      expect(r.text).toBe("Let me check.");
      expect(r.calls).toEqual([call(0, "get_weather", { city: "Paris" }), call(1, "get_time", {})]);
    }
    // Text after a call keeps its spaces, even one character at a time; trailing whitespace goes.
    const after = `${reply}\nDone, see above. \n`;
    for (const step of [1, 4])
      expect(run("hermes", after, step).text).toBe("Let me check.\nDone, see above.");
    // Text that only might start a tag is held back, then released when it does not.
    const r = run("hermes", "a <tool b", 1);
    expect(r.heldAt).toEqual([1, 2, 2, 2, 2, 2, 2, 8, 9]);
    expect(r.text).toBe("a <tool b");
  });

  it("hermes: a call that does not parse stays content; an unclosed one at the end is tried as is", () => {
    const bad = "<tool_call>\n{not json}\n</tool_call> ok";
    expect(run("hermes", bad, 3)).toMatchObject({ text: bad, calls: [] });
    const noName = '<tool_call>{"arguments": {}}</tool_call>';
    expect(run("hermes", noName, 4)).toMatchObject({ text: noName, calls: [] });
    const unclosed = '<tool_call>\n{"name": "f", "arguments": {"x": [1, 2]}}';
    expect(run("hermes", unclosed, 2)).toMatchObject({ text: "", calls: [call(0, "f", { x: [1, 2] })] });
  });

  it("json: a reply of call objects (';' or whitespace between) or plain content, streamed at once", () => {
    const reply = '{"name": "a", "parameters": {"q": "}{"}}; {"name": "b", "arguments": {"n": 1}}';
    for (const step of [1, 3, reply.length])
      expect(run("json", reply, step)).toMatchObject({
        text: "",
        calls: [call(0, "a", { q: "}{" }), call(1, "b", { n: 1 })],
      });
    // Content is not held back (beyond leading whitespace).
    const plain = run("json", "  Hello {there}", 1);
    expect(plain.text).toBe("  Hello {there}");
    expect(plain.heldAt.slice(0, 4)).toEqual([0, 0, 3, 4]);
    // An object that is not a call, or text after a call, ends the parsing: the rest is content.
    expect(run("json", '{"answer": 42}', 2)).toMatchObject({ text: '{"answer": 42}', calls: [] });
    expect(run("json", '{"name": "a", "parameters": {}} and more', 2)).toMatchObject({
      text: " and more",
      calls: [call(0, "a", {})],
    });
    // Cut off mid-object (max_tokens): content, as written.
    expect(run("json", '{"name": "a", "para', 4)).toMatchObject({ text: '{"name": "a", "para', calls: [] });
  });

  it("a forced call cut short is still the call, with the arguments it got to", () => {
    let n = 0;
    const p = new ToolCallParser({ format: "json", parallel: false, forced: true }, () => `call_${n++}`);
    expect(p.take('{"name": "get_weather", "arguments": {"city": "Pa', false)).toEqual({
      text: "",
      calls: [],
    });
    const cut = { id: "call_0", name: "get_weather", arguments: '{"city": "Par' };
    expect(p.take("r", true)).toEqual({ text: "", calls: [cut] });
    expect(p.cut).toBe(true);
    // A reply that is not one (a free reply) stays content, as written.
    expect(run("json", '{"name": "get_weather", "arguments": {"ci', 3)).toMatchObject({ calls: [] });
  });

  it("parallel_tool_calls false: the first call ends the reply", () => {
    const reply =
      '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>{"name": "b", "arguments": {}}';
    expect(run("hermes", reply, 3, false)).toMatchObject({ calls: [call(0, "a", {})], stopped: true });
    expect(run("json", '{"name": "a", "arguments": {}} {"name": "b"', 1, false)).toMatchObject({
      calls: [call(0, "a", {})],
      stopped: true,
    });
  });

  it("each family's template says its format (Mixtral's has none)", () => {
    expect(detectToolCallFormat(TOKENIZER_SPECS.qwen3moe.chatTemplate)).toBe("hermes");
    expect(detectToolCallFormat(TOKENIZER_SPECS.llama4.chatTemplate)).toBe("json");
    expect(detectToolCallFormat(TOKENIZER_SPECS.mixtral.chatTemplate)).toBeNull();
    expect(detectToolCallFormat(null)).toBeNull();
  });
});

describe("the grammar of a forced call", () => {
  const utf8 = new TextEncoder();
  const weather = compileJsonSchema({
    type: "object",
    properties: { city: { type: "string" }, days: { type: "integer", minimum: 1 } },
    required: ["city"],
    additionalProperties: false,
  });
  const status = (format: ToolCallFormat, text: string) => {
    const functions = [
      { name: "get_weather", parameters: weather },
      { name: "get", parameters: null },
    ];
    const s = forcedCallGrammar(format, functions).feed(utf8.encode(text));
    return s === null ? "rejected" : s.done ? "complete" : "prefix";
  };

  it("takes exactly one call to one of the names, its arguments as its schema says", () => {
    expect(status("hermes", '{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}')).toBe(
      "complete",
    );
    expect(status("hermes", '{"name": "get", "arguments": {"any": [1, {"x": null}]}}')).toBe("complete");
    expect(status("json", '{"name": "get", "parameters":{}}')).toBe("complete");
    expect(status("hermes", '{"name": "get_w')).toBe("prefix");
    expect(status("hermes", '{"name": "get", "arguments": {"s": "two  spaces\\n ok"')).toBe("prefix");
    for (const bad of [
      '{"name": "other"',
      '{"name": "get_weather", "parameters": {}}',
      '{"name": "get_weather", "arguments": {}}', // city is required
      '{"name": "get_weather", "arguments": {"town"', // not a parameter
      '{"name": "get_weather", "arguments": {"city": "x", "days": 0', // days >= 1
      '{"name": "get", "arguments": []',
      '{"name": "get", "arguments":  {}',
      '{"name": "get", "arguments": {"a":  1}',
      '{"name": "get", "arguments": {"a":\n\n1}',
      '{"name": "get", "arguments": {}} ',
      ' {"name": "get"',
    ])
      expect(status("hermes", bad), bad).toBe("rejected");
  });

  it("a strict tool whose schema we cannot enforce is a 400; a loose one falls back to any object", () => {
    const tool = (strict: boolean) => ({
      type: "function",
      function: {
        name: "f",
        strict,
        parameters: { type: "object", properties: { s: { type: "string", pattern: "^a" } } },
      },
    });
    const body = (strict: boolean) => ({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      tools: [tool(strict)],
      tool_choice: "required",
    });
    expect(() => parseChatCompletionRequest(body(true))).toThrow(
      /Invalid schema for function 'f': .*'pattern'/,
    );
    expect(forcedFunctions(parseChatCompletionRequest(body(false)))).toEqual([
      { name: "f", parameters: null },
    ]);
  });
});

describe("tool calling on the tiny models", () => {
  let models: ReturnType<typeof makeTinyModels>;
  const engines: Record<string, MoeEngine> = {};
  beforeAll(async () => {
    models = makeTinyModels(["llama4", "qwen3moe"]);
    for (const f of ["llama4", "qwen3moe"]) engines[f] = await loadEngine(models.dirs[f], { threads: 1 });
  });
  afterAll(() => {
    for (const e of Object.values(engines)) e.close();
    models.cleanup();
  });

  const tools = [
    {
      type: "function",
      function: {
        name: "get_weather",
        description: "Current weather in a city",
        parameters: {
          type: "object",
          properties: { city: { type: "string", enum: ["Paris", "Rome"] } },
          required: ["city"],
          additionalProperties: false,
        },
      },
    },
    { type: "function", function: { name: "get_time", parameters: { type: "object", properties: {} } } },
  ];

  async function reply(engine: MoeEngine, body: Record<string, unknown>) {
    const req = parseChatCompletionRequest({
      model: engine.modelId,
      messages: [{ role: "user", content: "What is the weather in Paris?" }],
      tools,
      temperature: 0,
      max_tokens: 200,
      ...body,
    });
    const prepared = prepareChat(engine, req);
    const gen = engine.generate(prepared.promptIds, prepared.params);
    let text = "";
    let events = 0;
    const calls: ToolCall[] = [];
    let r = await gen.next();
    while (!r.done) {
      events++;
      text += r.value.text;
      calls.push(...(r.value.toolCalls ?? []));
      r = await gen.next();
    }
    const tok = engine.tokenizer as LoadedTokenizer;
    return { text, calls, result: r.value, events, prompt: tok.decode(prepared.promptIds) };
  }

  it("chat_template_kwargs reach the template (Qwen3's enable_thinking: false closes the think block)", async () => {
    const e = engines.qwen3moe;
    const off = await reply(e, {
      tools: undefined,
      max_tokens: 2,
      chat_template_kwargs: { enable_thinking: false },
    });
    expect(off.prompt.endsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n")).toBe(true);
    const on = await reply(e, { tools: undefined, max_tokens: 2 });
    expect(on.prompt.endsWith("<|im_start|>assistant\n")).toBe(true);
    expect(() =>
      parseChatCompletionRequest({
        model: e.modelId,
        messages: [{ role: "user", content: "hi" }],
        chat_template_kwargs: { messages: [] },
      }),
    ).toThrow(/'messages' is set by the server/);
  });

  for (const family of ["llama4", "qwen3moe"]) {
    it(`${family}: the template shows the tools; a named or required choice gives one call`, async () => {
      const e = engines[family];
      const named = await reply(e, { tool_choice: { type: "function", function: { name: "get_time" } } });
      expect(named.prompt).toContain('"name": "get_weather"');
      expect(named.prompt).toContain("Current weather in a city");
      if (family === "qwen3moe")
        expect(named.prompt.endsWith("<|im_start|>assistant\n<tool_call>\n")).toBe(true);
      expect(named.result.finishReason).toBe("tool_calls");
      expect(named.calls).toHaveLength(1);
      expect(named.calls[0].name).toBe("get_time");
      expect(named.calls[0].id).toMatch(/^call_[0-9a-f]{24}$/);
      const args = JSON.parse(named.calls[0].arguments) as unknown;
      expect(typeof args === "object" && args !== null && !Array.isArray(args)).toBe(true);
      expect(named.text).toBe("");
      expect(named.result.completionTokens).toBe(named.events);

      // Cut short by max_tokens: still the call (arguments as far as they got), finish_reason length.
      const cutShort = await reply(e, {
        tool_choice: { type: "function", function: { name: "get_weather" } },
        max_tokens: 25,
      });
      expect(cutShort.result.finishReason).toBe("length");
      expect(cutShort.calls.map((c) => c.name)).toEqual(["get_weather"]);
      expect(cutShort.text).toBe("");
      // The arguments follow the function's schema (get_weather requires a city, one of two).
      const weather = await reply(e, {
        tool_choice: { type: "function", function: { name: "get_weather" } },
      });
      expect(weather.result.finishReason).toBe("tool_calls");
      expect(["Paris", "Rome"]).toContain((JSON.parse(weather.calls[0].arguments) as { city: unknown }).city);

      const required = await reply(e, { tool_choice: "required" });
      expect(required.result.finishReason).toBe("tool_calls");
      expect(required.calls.map((c) => tools.some((t) => t.function.name === c.name))).toEqual([true]);

      // "none" and "auto" leave the reply free (this random model writes no calls).
      const none = await reply(e, { tool_choice: "none", max_tokens: 8 });
      expect(none.prompt).not.toContain("get_weather");
      expect(none.calls).toEqual([]);
    });

    it(`${family}: the edge's prompt bound covers the tools and the call turns`, async () => {
      const e = engines[family];
      const body = {
        model: e.modelId,
        tools,
        tool_choice: "required",
        messages: [
          { role: "user", content: "Weather in Paris?" },
          {
            role: "assistant",
            tool_calls: [
              {
                id: "call_1",
                type: "function",
                function: { name: "get_weather", arguments: '{"city": "Paris"}' },
              },
            ],
          },
          { role: "tool", tool_call_id: "call_1", content: "sunny" },
        ],
      };
      const req = parseChatCompletionRequest(body);
      const exact = prepareChat(e, req).promptIds.length;
      expect(chatPromptTokenBound(req)).toBeGreaterThanOrEqual(exact);
    });

    it(`${family}: earlier calls and their results render in the template's own format`, async () => {
      const e = engines[family];
      const r = await reply(e, {
        max_tokens: 4,
        messages: [
          { role: "user", content: "Weather in Paris?" },
          {
            role: "assistant",
            content: null,
            tool_calls: [
              {
                id: "call_1",
                type: "function",
                function: { name: "get_weather", arguments: '{"city": "Paris"}' },
              },
            ],
          },
          { role: "tool", tool_call_id: "call_1", content: "sunny, 21 C" },
        ],
      });
      if (family === "qwen3moe") {
        expect(r.prompt).toContain(
          '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
        );
        expect(r.prompt).toContain("<tool_response>\nsunny, 21 C\n</tool_response>");
      } else {
        expect(r.prompt).toContain('{"name": "get_weather", "parameters": {"city": "Paris"}}');
        expect(r.prompt).toContain("<|header_start|>ipython<|header_end|>");
      }
    });
  }
});
