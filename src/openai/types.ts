/** OpenAI response shapes (the subset we produce), shared by backend (producer) and edge (reader). */

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

export type FinishReasonOut = "stop" | "length" | null;

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  system_fingerprint?: string | null;
  choices: Array<{
    index: number;
    delta: { role?: "assistant"; content?: string };
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
    message: { role: "assistant"; content: string; refusal: null };
    logprobs: { content: LogprobContent[] } | null;
    finish_reason: "stop" | "length";
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
