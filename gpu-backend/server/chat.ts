/** POST /v1/chat/completions and POST /v1/completions on the backend. */
import type { Context } from "hono";
import { assistantDelta, assistantMessage } from "../../src/openai/assistant-message.js";
import { badRequest, modelNotFound } from "../../src/openai/errors.js";
import { joinLegacyLogprobs } from "../../src/openai/legacy-logprobs.js";
import {
  type ChatCompletionRequest,
  type CompletionRequest,
  forcedFunctions,
  messageText,
  parseChatCompletionRequest,
  parseCompletionRequest,
  toolsActive,
} from "../../src/openai/schema.js";
import type { ChatCompletion, ChatCompletionChunk } from "../../src/openai/types.js";
import { templateThinks } from "../engine/reasoning.js";
import { forcedCallPrefix } from "../engine/tool-call-grammar.js";
import type { ChatMessage, Engine, SamplingParams } from "../engine/types.js";
import type { ServerEnv } from "./context.js";
import {
  chatLogprob,
  completionId,
  legacyLogprobs,
  nowSeconds,
  promptLogprobs,
  promptText,
  usageOf,
} from "./format.js";
import { parseJsonBody } from "./json.js";
import { beginChoices, collectChoices, type RequestScope, type RunContext, streamChoices } from "./run.js";
import { toSamplingParams } from "./sampling.js";

function checkModel(engine: Engine, model: string): void {
  if (model !== engine.modelId) throw modelNotFound(model);
}

/** A validated request turned into what the engine takes. */
export interface Prepared {
  promptIds: number[];
  params: SamplingParams;
  /** null = no logprobs; otherwise alternatives per token. */
  topLogprobs: number | null;
  /** Legacy completions with echo: the prompt's text, sent before the completion; else null. */
  echo: string | null;
  /** How many choices the request asks for (n). */
  choices: number;
}

/** Arguments as the templates want them: the JSON value (Llama 4's renders it with tojson). */
function parsedArguments(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function templateMessage(m: ChatCompletionRequest["messages"][number]): ChatMessage {
  const out: ChatMessage = { role: m.role, content: messageText(m.content) };
  if (m.tool_calls && m.tool_calls.length > 0) {
    out.tool_calls = m.tool_calls.map((c) => ({
      id: c.id,
      type: "function",
      function: { name: c.function.name, arguments: parsedArguments(c.function.arguments) },
    }));
  }
  if (m.tool_call_id !== undefined) out.tool_call_id = m.tool_call_id;
  return out;
}

export function prepareChat(engine: Engine, req: ChatCompletionRequest, reasoningParser = false): Prepared {
  checkModel(engine, req.model);
  const messages = req.messages.map(templateMessage);
  const tools = toolsActive(req);
  const format = engine.tokenizer.toolCallFormat ?? null;
  if (tools && format === null) {
    throw badRequest(
      `The model '${engine.modelId}' does not support tool calling: its chat template has no tool format. Send the request without 'tools' (or with tool_choice "none").`,
      "tools",
      "unsupported_value",
    );
  }
  const forced = forcedFunctions(req);
  const promptIds = engine.tokenizer.applyChatTemplate(messages, {
    ...(tools ? { tools: req.tools!, replyPrefix: forced && format ? forcedCallPrefix(format) : "" } : {}),
    ...(req.chat_template_kwargs ? { variables: req.chat_template_kwargs } : {}),
  });
  const topLogprobs = req.logprobs ? (req.top_logprobs ?? 0) : null;
  const params = toSamplingParams(req, promptIds.length, engine, topLogprobs);
  if (reasoningParser && templateThinks(engine.tokenizer.chatTemplate)) params.reasoning = true;
  if (tools && format) {
    params.tools = { format, parallel: req.parallel_tool_calls !== false };
    if (forced) params.forcedCall = { functions: forced };
  }
  return { promptIds, params, topLogprobs, echo: null, choices: req.n ?? 1 };
}

export function prepareCompletion(engine: Engine, req: CompletionRequest): Prepared {
  checkModel(engine, req.model);
  const promptIds = typeof req.prompt === "string" ? engine.tokenizer.encode(req.prompt, true) : req.prompt;
  const bad = promptIds.find((id) => id >= engine.vocabSize);
  if (bad !== undefined) {
    throw badRequest(
      `Invalid token id in 'prompt': ${bad}. Maximum value is ${engine.vocabSize - 1}.`,
      "prompt",
      "invalid_value",
    );
  }
  const topLogprobs = req.logprobs ?? null;
  const params = toSamplingParams(req, promptIds.length, engine, topLogprobs);
  // Echo with logprobs scores the prompt too (non-stream answers carry it; OpenAI's do, lm-eval reads it).
  if (req.echo && topLogprobs !== null && !req.stream) params.promptLogprobs = topLogprobs;
  const echo = !req.echo
    ? null
    : typeof req.prompt === "string"
      ? req.prompt
      : promptText(engine.tokenizer, promptIds);
  return { promptIds, params, topLogprobs, echo, choices: req.n ?? 1 };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

export async function chatCompletions(
  c: Context<ServerEnv>,
  ctx: RunContext,
  scope: RequestScope,
): Promise<Response> {
  const engine = ctx.engine;
  const req: ChatCompletionRequest = parseChatCompletionRequest(parseJsonBody(c.get("rawBody")));
  const { promptIds, params, topLogprobs, choices: n } = prepareChat(engine, req, ctx.reasoningParser);
  const gens = beginChoices(c, ctx, scope, promptIds, params, n);
  const id = completionId("chatcmpl");
  const created = nowSeconds();
  const model = engine.modelId;

  if (!req.stream) {
    const collected = await collectChoices(gens);
    const body: ChatCompletion = {
      id,
      object: "chat.completion",
      created,
      model,
      choices: collected.map(({ events, text, result }, index) => ({
        index,
        message: assistantMessage(
          text,
          events.flatMap((e) => e.toolCalls ?? []),
          events.map((e) => e.reasoning ?? "").join(""),
        ),
        logprobs:
          topLogprobs === null ? null : { content: events.map(chatLogprob).filter((x) => x !== null) },
        finish_reason: result.finishReason,
      })),
      usage: usageOf(collected.map((x) => x.result)),
    };
    return c.json(body);
  }

  const includeUsage = req.stream_options?.include_usage === true;
  const chunk = (choices: ChatCompletionChunk["choices"]): ChatCompletionChunk => ({
    id,
    object: "chat.completion.chunk",
    created,
    model,
    choices,
    ...(includeUsage ? { usage: null } : {}),
  });
  const callsSent = range(n).map(() => 0);
  return streamChoices(
    c,
    gens,
    {
      start: () =>
        range(n).map((index) =>
          chunk([{ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]),
        ),
      token: (index, ev) => {
        const lp = chatLogprob(ev);
        const calls = ev.toolCalls ?? [];
        const firstIndex = callsSent[index];
        callsSent[index] += calls.length;
        const reasoning = ev.reasoning ?? "";
        if (ev.text === "" && lp === null && calls.length === 0 && reasoning === "") return null;
        return chunk([
          {
            index,
            delta: assistantDelta(ev.text, calls, firstIndex, reasoning),
            logprobs: lp ? { content: [lp] } : null,
            finish_reason: null,
          },
        ]);
      },
      finish: (index, result) => [
        chunk([{ index, delta: {}, logprobs: null, finish_reason: result.finishReason }]),
      ],
      end: (results) => (includeUsage ? [{ ...chunk([]), usage: usageOf(results) }] : []),
    },
    ctx.keepAliveMs,
  );
}

export async function completions(
  c: Context<ServerEnv>,
  ctx: RunContext,
  scope: RequestScope,
): Promise<Response> {
  const engine = ctx.engine;
  const req: CompletionRequest = parseCompletionRequest(parseJsonBody(c.get("rawBody")));
  const prepared = prepareCompletion(engine, req);
  const { promptIds, params, topLogprobs, choices: n } = prepared;
  const gens = beginChoices(c, ctx, scope, promptIds, params, n);
  const id = completionId("cmpl");
  const created = nowSeconds();
  const model = engine.modelId;
  const echo = prepared.echo ?? "";

  if (!req.stream) {
    const collected = await collectChoices(gens);
    // (the first choice scored the prompt; every choice echoes it)
    const first = collected[0].result;
    const scored = first.promptLogprobs
      ? promptLogprobs(engine.tokenizer, promptIds, first.promptLogprobs)
      : null;
    return c.json({
      id,
      object: "text_completion",
      created,
      model,
      choices: collected.map(({ events, text, result }, index) => ({
        index,
        text: echo + text,
        logprobs:
          topLogprobs === null ? null : joinLegacyLogprobs(scored, legacyLogprobs(events, echo.length)),
        finish_reason: result.finishReason,
      })),
      usage: usageOf(collected.map((x) => x.result)),
    });
  }

  const includeUsage = req.stream_options?.include_usage === true;
  const chunk = (choices: unknown[]) => ({
    id,
    object: "text_completion",
    created,
    model,
    choices,
    ...(includeUsage ? { usage: null } : {}),
  });
  const offsets = range(n).map(() => echo.length);
  return streamChoices(
    c,
    gens,
    {
      start: () =>
        echo
          ? range(n).map((index) => chunk([{ index, text: echo, logprobs: null, finish_reason: null }]))
          : [],
      token: (index, ev) => {
        const lp = topLogprobs === null ? null : legacyLogprobs([ev], offsets[index]);
        offsets[index] += ev.text.length;
        if (ev.text === "" && lp === null) return null;
        return chunk([{ index, text: ev.text, logprobs: lp, finish_reason: null }]);
      },
      finish: (index, result) => [
        chunk([{ index, text: "", logprobs: null, finish_reason: result.finishReason }]),
      ],
      end: (results) => (includeUsage ? [{ ...chunk([]), usage: usageOf(results) }] : []),
    },
    ctx.keepAliveMs,
  );
}
