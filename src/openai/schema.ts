/**
 * The OpenAI request schemas we accept, validated with zod. Shared: the edge validates before
 * anything leaves it, and the backend validates again (it can be called directly).
 * Unknown top-level fields are kept (clients send many harmless extras) and forwarded.
 */
import { type ZodError, z } from "zod";
import { type ApiError, badRequest } from "./errors.js";
import { compileJsonSchema, isJsonObject, SchemaError, type SchemaNode } from "./json-schema.js";

const textPart = z.object({ type: z.literal("text"), text: z.string() });

/**
 * Names of functions and response schemas, as OpenAI allows them (never a `"`, which the
 * forced-call grammar relies on).
 */
const NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const functionName = z
  .string()
  .regex(NAME, "a function name is 1 to 64 of a-z, A-Z, 0-9, underscores and dashes");

const toolCallSchema = z.looseObject({
  id: z.string(),
  type: z.literal("function"),
  function: z.looseObject({ name: z.string(), arguments: z.string() }),
});

export const chatMessageSchema = z.looseObject({
  role: z.enum(["system", "user", "assistant", "tool", "developer"]),
  /** Optional only on an assistant turn with tool_calls (checkMessages). */
  content: z.union([z.string(), z.array(textPart), z.null()]).optional(),
  name: z.string().optional(),
  tool_calls: z.array(toolCallSchema).optional(),
  tool_call_id: z.string().optional(),
});

const toolSchema = z.looseObject({
  type: z.literal("function"),
  function: z.looseObject({
    name: functionName,
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullable().optional(),
  }),
});

const toolChoiceSchema = z.union([
  z.enum(["none", "auto", "required"]),
  z.looseObject({ type: z.literal("function"), function: z.looseObject({ name: functionName }) }),
]);

const stop = z
  .union([z.string(), z.array(z.string()).max(4)])
  .nullable()
  .optional();

/** Sampling fields common to /chat/completions and /completions. */
const samplingFields = {
  model: z.string().min(1),
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  max_tokens: z.number().int().min(1).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().gt(0).max(1).nullable().optional(),
  /** Extension (vLLM-style): 0 = off. */
  top_k: z.number().int().min(0).nullable().optional(),
  /** Extension (vLLM-style): keep generating past end-of-sequence tokens (benchmarks, tests). */
  ignore_eos: z.boolean().nullable().optional(),
  seed: z.number().int().nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  stop,
  n: z.number().int().min(1).nullable().optional(),
  user: z.string().optional(),
  /** Token id (as a string) -> bias added to its logit before sampling. Keys checked in checkLogitBias. */
  logit_bias: z.record(z.string(), z.number().min(-100).max(100)).nullable().optional(),
};

export const chatCompletionRequestSchema = z.looseObject({
  ...samplingFields,
  messages: z.array(chatMessageSchema).min(1),
  max_completion_tokens: z.number().int().min(1).nullable().optional(),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
  /** Extension (vLLM, SGLang): variables for the chat template, e.g. Qwen3's {"enable_thinking": false}. */
  chat_template_kwargs: z.record(z.string(), z.unknown()).nullable().optional(),
  tools: z.array(toolSchema).max(128).nullable().optional(),
  tool_choice: toolChoiceSchema.nullable().optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
});

const tokenIds = z.array(z.number().int().min(0)).min(1);
const completionFields = {
  ...samplingFields,
  /** 0 only with echo: the prompt scored, nothing generated (how lm-eval asks for loglikelihoods). */
  max_tokens: z.number().int().min(0).nullable().optional(),
  logprobs: z.number().int().min(0).max(5).nullable().optional(),
  echo: z.boolean().nullable().optional(),
};

export const completionRequestSchema = z.looseObject({
  ...completionFields,
  /** Text or token ids; a batch of one ([text], [ids]) is taken as that prompt (parseCompletionRequest). */
  prompt: z.union([z.string(), tokenIds, z.array(z.string()), z.array(tokenIds)]),
});

/** The shape parseCompletionRequest returns: one prompt, text or token ids. */
const parsedCompletionSchema = z.looseObject({
  ...completionFields,
  prompt: z.union([z.string(), tokenIds]),
});

export type ChatMessageInput = z.infer<typeof chatMessageSchema>;
export type ToolDefinition = z.infer<typeof toolSchema>;
export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;
export type CompletionRequest = z.infer<typeof parsedCompletionSchema>;

/** `messages[0].role` style path, as OpenAI reports `param`. */
export function formatParam(path: ReadonlyArray<PropertyKey>): string | null {
  if (path.length === 0) return null;
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** Map the first zod issue to one OpenAI error: the param, a readable message and a stable code. */
export function zodToApiError(error: ZodError): ApiError {
  const issue = error.issues[0];
  if (!issue) return badRequest("Invalid request body.");
  const param = formatParam(issue.path);
  const where = param ? `'${param}'` : "request body";
  let code = "invalid_value";
  if (issue.code === "invalid_type")
    code = issue.input === undefined ? "missing_required_parameter" : "invalid_type";
  else if (issue.code === "too_small") code = issue.origin === "array" ? "empty_array" : "below_min_value";
  else if (issue.code === "too_big")
    code = issue.origin === "array" ? "array_above_max_length" : "above_max_value";
  const message =
    code === "missing_required_parameter"
      ? `Missing required parameter: ${where}.`
      : `Invalid ${where}: ${issue.message}.`;
  return badRequest(message, param, code);
}

function parseWith<T>(schema: z.ZodType<T>, body: unknown): T {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw badRequest("The request body must be a JSON object.", null, "invalid_type");
  }
  const result = schema.safeParse(body, { reportInput: true });
  if (!result.success) throw zodToApiError(result.error);
  return result.data;
}

/** Validate and check what we cannot do. Throws ApiError(400). */
export function parseChatCompletionRequest(body: unknown): ChatCompletionRequest {
  const req = parseWith(chatCompletionRequestSchema, body);
  rejectUnsupported(req);
  checkMessages(req);
  checkTemplateKwargs(req);
  checkTools(req);
  rejectUnsupportedChat(req);
  if (req.top_logprobs != null && req.top_logprobs > 0 && !req.logprobs) {
    throw badRequest("'top_logprobs' requires 'logprobs' to be true.", "top_logprobs", "invalid_value");
  }
  return req;
}

export function parseCompletionRequest(body: unknown): CompletionRequest {
  const parsed = parseWith(completionRequestSchema, body);
  rejectUnsupported(parsed);
  const req: CompletionRequest = { ...parsed, prompt: singlePrompt(parsed.prompt) };
  if (req.max_tokens === 0 && !req.echo) {
    throw badRequest(
      "'max_tokens' may be 0 only with 'echo' (to score the prompt).",
      "max_tokens",
      "below_min_value",
    );
  }
  responseSchema(req.response_format); // (an extension here: a schema we cannot enforce is a 400 now)
  return req;
}

/** The one prompt of a request: a text or token ids (a batch of several prompts is refused). */
function singlePrompt(p: string | number[] | string[] | number[][]): string | number[] {
  if (typeof p === "string") return p;
  if (p.length === 0) throw badRequest("'prompt' must not be an empty list.", "prompt", "empty_array");
  if (typeof p[0] === "number") return p as number[];
  if (p.length > 1)
    throw badRequest("Only one prompt per request is supported.", "prompt", "unsupported_value");
  return p[0] as string | number[];
}

/** Content may only be left out on an assistant turn that makes calls; a tool turn names its call. */
function checkMessages(req: ChatCompletionRequest): void {
  req.messages.forEach((m, i) => {
    const calls = m.role === "assistant" && (m.tool_calls?.length ?? 0) > 0;
    if (m.content === undefined && !calls) {
      throw badRequest(
        `Missing required parameter: 'messages[${i}].content'.`,
        `messages[${i}].content`,
        "missing_required_parameter",
      );
    }
    if (m.role === "tool" && !m.tool_call_id) {
      throw badRequest(
        `Missing required parameter: 'messages[${i}].tool_call_id'.`,
        `messages[${i}].tool_call_id`,
        "missing_required_parameter",
      );
    }
  });
}

/** The request's tools are in use (given, and tool_choice is not "none"). */
export function toolsActive(req: ChatCompletionRequest): boolean {
  return (req.tools?.length ?? 0) > 0 && req.tool_choice !== "none";
}

/**
 * The functions the reply must call one of (tool_choice "required" or named), each with its
 * compiled parameter schema (null where it does not compile: any object then); or null.
 */
export function forcedFunctions(
  req: ChatCompletionRequest,
): { name: string; parameters: SchemaNode | null }[] | null {
  if (!toolsActive(req)) return null;
  const choice = req.tool_choice;
  const tools = req.tools!;
  const named = typeof choice === "object" && choice !== null ? choice.function.name : null;
  if (choice !== "required" && named === null) return null;
  return tools
    .filter((t) => named === null || t.function.name === named)
    .map((t) => ({ name: t.function.name, parameters: toolParameters(t, -1) }));
}

/**
 * A tool's compiled parameter schema: null when it has none or it does not compile, unless the
 * tool is `strict` (then an uncompilable schema is a 400 on tools[index]).
 */
function toolParameters(tool: ToolDefinition, index: number): SchemaNode | null {
  const f = tool.function;
  if (f.parameters === undefined) return null;
  try {
    return compileJsonSchema(f.parameters);
  } catch (e) {
    if (!(e instanceof SchemaError) || !f.strict) return null;
    throw badRequest(
      `Invalid schema for function '${f.name}': ${e.message}.`,
      `tools[${index}].function.parameters`,
      "invalid_value",
    );
  }
}

/** Template variables the server sets itself. */
const RESERVED_TEMPLATE_VARIABLES = [
  "messages",
  "tools",
  "add_generation_prompt",
  "bos_token",
  "eos_token",
  "pad_token",
  "unk_token",
];

function checkTemplateKwargs(req: ChatCompletionRequest): void {
  for (const key of Object.keys(req.chat_template_kwargs ?? {})) {
    if (RESERVED_TEMPLATE_VARIABLES.includes(key)) {
      throw badRequest(
        `Invalid 'chat_template_kwargs': '${key}' is set by the server.`,
        `chat_template_kwargs.${key}`,
        "invalid_value",
      );
    }
  }
}

function checkTools(req: ChatCompletionRequest): void {
  const tools = req.tools ?? [];
  const choice = req.tool_choice;
  if (tools.length === 0 && choice != null && choice !== "none" && choice !== "auto") {
    throw badRequest(
      "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
      "tool_choice",
      "invalid_value",
    );
  }
  const names = new Set<string>();
  tools.forEach((t, i) => {
    if (names.has(t.function.name)) {
      throw badRequest(
        `Invalid 'tools[${i}].function.name': the name '${t.function.name}' is used by another tool.`,
        `tools[${i}].function.name`,
        "invalid_value",
      );
    }
    names.add(t.function.name);
    toolParameters(t, i); // a strict tool's schema must be one we enforce
  });
  if (typeof choice === "object" && choice !== null && !names.has(choice.function.name)) {
    throw badRequest(
      `Invalid value for 'tool_choice': function '${choice.function.name}' is not one of 'tools'.`,
      "tool_choice",
      "invalid_value",
    );
  }
  const format = (req.response_format as { type?: unknown } | null | undefined)?.type;
  if (toolsActive(req) && format != null && format !== "text") {
    throw badRequest(
      "'response_format' cannot be combined with 'tools' (unless tool_choice is \"none\").",
      "response_format",
      "unsupported_value",
    );
  }
}

/** response_format: json_object needs the word "json" in the messages; json_schema a schema we enforce. */
function rejectUnsupportedChat(req: ChatCompletionRequest): void {
  const format = req.response_format;
  if (format != null) {
    const type = typeof format === "object" ? (format as { type?: unknown }).type : undefined;
    if (type === "json_object") {
      // As OpenAI asks: a model only told "JSON" by its mask tends to emit whitespace forever.
      if (!req.messages.some((m) => /json/i.test(messageText(m.content)))) {
        throw badRequest(
          "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
          "messages",
          "invalid_value",
        );
      }
    } else if (type === "json_schema") {
      responseSchema(format);
    } else if (type !== "text") {
      throw badRequest(
        `'response_format' of type ${JSON.stringify(type ?? null)} is not supported: use "json_schema", "json_object" or "text".`,
        "response_format",
        "unsupported_value",
      );
    }
  }
}

/**
 * The compiled schema of `response_format: {"type": "json_schema", "json_schema": {"name", "schema",
 * "strict"?}}`; null for any other format. Throws ApiError(400) for a malformed or unsupported one.
 */
export function responseSchema(format: unknown): SchemaNode | null {
  if (!isJsonObject(format) || format.type !== "json_schema") return null;
  const spec = format.json_schema;
  if (!isJsonObject(spec)) {
    throw badRequest(
      "Missing required parameter: 'response_format.json_schema'.",
      "response_format.json_schema",
      "missing_required_parameter",
    );
  }
  if (typeof spec.name !== "string" || !NAME.test(spec.name)) {
    throw badRequest(
      "Invalid 'response_format.json_schema.name': 1 to 64 of a-z, A-Z, 0-9, underscores and dashes.",
      "response_format.json_schema.name",
      "invalid_value",
    );
  }
  try {
    return compileJsonSchema(spec.schema ?? { type: "object" });
  } catch (e) {
    if (!(e instanceof SchemaError)) throw e;
    throw badRequest(
      `Invalid schema for response_format '${spec.name}': ${e.message}.`,
      "response_format.json_schema.schema",
      "invalid_value",
    );
  }
}

/** Choices per request at most (each is a sequence of its own in the batch). */
export const MAX_CHOICES = 16;

/** logit_bias entries at most (as OpenAI caps it). */
const MAX_LOGIT_BIAS_ENTRIES = 300;

function rejectUnsupported(req: { n?: number | null; logit_bias?: Record<string, number> | null }): void {
  if (req.n != null && req.n > MAX_CHOICES) {
    throw badRequest(`Invalid 'n': at most ${MAX_CHOICES} choices per request.`, "n", "above_max_value");
  }
  checkLogitBias(req.logit_bias);
}

/** Keys must be token ids: non-negative integers written in decimal (the model checks the range). */
function checkLogitBias(bias: Record<string, number> | null | undefined): void {
  if (!bias) return;
  const keys = Object.keys(bias);
  if (keys.length > MAX_LOGIT_BIAS_ENTRIES) {
    throw badRequest(
      `Too many entries in 'logit_bias': ${keys.length}. The maximum is ${MAX_LOGIT_BIAS_ENTRIES}.`,
      "logit_bias",
      "invalid_value",
    );
  }
  for (const k of keys) {
    if (!/^(0|[1-9][0-9]*)$/.test(k) || !Number.isSafeInteger(Number(k))) {
      throw badRequest(
        `Invalid key in 'logit_bias': ${k}. You should only be submitting non-negative integers.`,
        "logit_bias",
        "invalid_value",
      );
    }
  }
}

/** Flatten message content (string or text parts) to the plain string the engine takes. */
export function messageText(content: ChatMessageInput["content"]): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  return content.map((p) => p.text).join("");
}

/** Stop sequences as a list. */
export function stopList(stopField: string | string[] | null | undefined): string[] {
  if (stopField == null) return [];
  return (typeof stopField === "string" ? [stopField] : stopField).filter((s) => s.length > 0);
}
