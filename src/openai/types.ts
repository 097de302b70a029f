/** OpenAI response shapes (the subset we produce), shared by backend (producer) and edge (reader). */
// (and the one helper that joins two of them)

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens: number };
}

export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
}

export interface LogprobContent extends TopLogprob {
  top_logprobs: TopLogprob[];
}

export type FinishReason = "stop" | "length" | "tool_calls";

/** Legacy completions logprobs; with echo the prompt's tokens come first, the very first scored null. */
export interface LegacyLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

export type FinishReasonOut = FinishReason | null;

export interface ToolCallOut {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** A stream's tool call: sent whole, in one delta (`index` counts the calls of the choice). */
export interface ToolCallDelta extends ToolCallOut {
  index: number;
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  system_fingerprint?: string | null;
  choices: Array<{
    index: number;
    delta: { role?: "assistant"; content?: string; reasoning_content?: string; tool_calls?: ToolCallDelta[] };
    logprobs: { content: LogprobContent[] } | null;
    finish_reason: FinishReasonOut;
  }>;
  usage?: Usage | null;
}

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  system_fingerprint?: string | null;
  choices: Array<{
    index: number;
    message: {
      role: "assistant";
      content: string | null;
      refusal: null;
      /** Extension (DeepSeek, vLLM): the thinking part of a reply (backend's --reasoning-parser). */
      reasoning_content?: string;
      tool_calls?: ToolCallOut[];
    };
    logprobs: { content: LogprobContent[] } | null;
    finish_reason: FinishReason;
  }>;
  usage: Usage;
}

export interface ModelEntry {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}

export interface ModelList {
  object: "list";
  data: ModelEntry[];
}
