import type { Usage } from "../../src/openai/types.js";

/** How a forwarded completion ended, reported to hooks once the last byte has passed the edge. */
export interface CompletionOutcome {
  /** ok: finished normally; error: backend failed (before or during the stream); aborted: client left. */
  status: "ok" | "error" | "aborted";
  stream: boolean;
  /** Exact usage reported by the backend (null if it never arrived, e.g. aborted or failed early). */
  usage: Usage | null;
  finishReason: string | null;
  /** The generated text (concatenated deltas), for a response cache. */
  text: string;
  /** Upstream HTTP status (0 when the backend was unreachable). */
  upstreamStatus: number;
  /** Content deltas as streamed (their concatenation is `text`), for the prompt cache replay. */
  deltas?: string[];
  /** The answer also held what a cache entry does not keep (reasoning, tool calls): not replayable. */
  notReplayable?: boolean;
  /** Chunks carrying content that reached the client (streams). */
  deliveredChunks?: number;
  /**
   * Usage so far, when the answer ended without its final usage report (stream cut, client gone).
   * Over frames it is exact: the start frame's prompt tokens plus one completion token per token
   * frame received. Over SSE it is the last usage seen on any chunk (continuous usage), if any.
   */
  partialUsage?: Usage | null;
}

export type CompletionHook = (outcome: CompletionOutcome) => void | Promise<void>;
