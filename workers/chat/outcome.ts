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
}

export type CompletionHook = (outcome: CompletionOutcome) => void | Promise<void>;
