/** OpenAI request fields -> the engine's SamplingParams, with the context-length check. */
import { badRequest } from "../../src/openai/errors.js";
import { responseSchema, stopList } from "../../src/openai/schema.js";
import type { SamplingParams } from "../engine/types.js";

export interface SamplingFields {
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  seed?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  stop?: string | string[] | null;
  ignore_eos?: boolean | null;
  logit_bias?: Record<string, number> | null;
  response_format?: unknown;
}

/**
 * @param topLogprobs null = no logprobs; otherwise how many alternatives per token.
 * Without max_tokens the completion may fill the rest of the context.
 */
export function toSamplingParams(
  req: SamplingFields,
  promptTokens: number,
  model: { contextLength: number; vocabSize: number },
  topLogprobs: number | null,
): SamplingParams {
  const { contextLength, vocabSize } = model;
  const room = contextLength - promptTokens;
  if (room < 1) {
    throw badRequest(
      `This model's maximum context length is ${contextLength} tokens; the prompt has ${promptTokens}.`,
      "messages",
      "context_length_exceeded",
    );
  }
  const requested = req.max_completion_tokens ?? req.max_tokens ?? null;
  if (requested !== null && requested > room) {
    throw badRequest(
      `This model's maximum context length is ${contextLength} tokens; the prompt (${promptTokens}) plus max_tokens (${requested}) exceeds it.`,
      req.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens",
      "context_length_exceeded",
    );
  }
  const params: SamplingParams = {
    maxTokens: requested ?? room,
    temperature: req.temperature ?? 1,
    topP: req.top_p ?? 1,
    topK: req.top_k ?? 0,
    presencePenalty: req.presence_penalty ?? 0,
    frequencyPenalty: req.frequency_penalty ?? 0,
    stop: stopList(req.stop),
    logprobs: topLogprobs,
  };
  if (req.seed != null) params.seed = req.seed;
  if (req.ignore_eos) params.ignoreEos = true;
  if ((req.response_format as { type?: unknown } | null | undefined)?.type === "json_object")
    params.jsonObject = true;
  const schema = responseSchema(req.response_format);
  if (schema) params.jsonSchema = schema;
  if (req.logit_bias && Object.keys(req.logit_bias).length > 0) {
    const bias = new Map<number, number>();
    for (const [key, value] of Object.entries(req.logit_bias)) {
      const id = Number(key);
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw badRequest(
          `Invalid key in 'logit_bias': ${key}. Maximum value is ${vocabSize - 1}.`,
          "logit_bias",
          "invalid_value",
        );
      }
      bias.set(id, value);
    }
    params.logitBias = bias;
  }
  return params;
}
