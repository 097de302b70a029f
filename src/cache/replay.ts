/**
 * Replay a cached answer in the OpenAI shapes: an SSE stream of chunks (role, one chunk per stored
 * delta, finish, optional usage chunk, [DONE]) or a whole completion object. Usage reports the
 * original token counts with every prompt token marked as cached
 * (`prompt_tokens_details.cached_tokens = prompt_tokens`).
 */
import type { CacheEntry } from "./entry.js";
import { entryText } from "./entry.js";

export interface ReplayOptions {
  id: string;
  created: number;
  includeUsage: boolean;
}

export function replayUsage(e: CacheEntry) {
  return {
    prompt_tokens: e.promptTokens,
    completion_tokens: e.completionTokens,
    total_tokens: e.promptTokens + e.completionTokens,
    prompt_tokens_details: { cached_tokens: e.promptTokens },
  };
}

/** The SSE event payloads (without framing), in order, ending with "[DONE]". */
export function replayEvents(e: CacheEntry, o: ReplayOptions): string[] {
  const events: string[] = [];
  const usageField = o.includeUsage ? { usage: null } : {};
  if (e.kind === "chat") {
    const base = { id: o.id, object: "chat.completion.chunk", created: o.created, model: e.model };
    events.push(
      JSON.stringify({
        ...base,
        choices: [
          { index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null },
        ],
        ...usageField,
      }),
    );
    for (const d of e.deltas) {
      events.push(
        JSON.stringify({
          ...base,
          choices: [{ index: 0, delta: { content: d }, logprobs: null, finish_reason: null }],
          ...usageField,
        }),
      );
    }
    events.push(
      JSON.stringify({
        ...base,
        choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: e.finishReason }],
        ...usageField,
      }),
    );
    if (o.includeUsage) events.push(JSON.stringify({ ...base, choices: [], usage: replayUsage(e) }));
  } else {
    const base = { id: o.id, object: "text_completion", created: o.created, model: e.model };
    for (const d of e.deltas) {
      events.push(
        JSON.stringify({
          ...base,
          choices: [{ index: 0, text: d, logprobs: null, finish_reason: null }],
          ...usageField,
        }),
      );
    }
    events.push(
      JSON.stringify({
        ...base,
        choices: [{ index: 0, text: "", logprobs: null, finish_reason: e.finishReason }],
        ...usageField,
      }),
    );
    if (o.includeUsage) events.push(JSON.stringify({ ...base, choices: [], usage: replayUsage(e) }));
  }
  events.push("[DONE]");
  return events;
}

/** The whole replay as SSE bytes (an entry is small; one enqueue gets the first byte out fastest). */
export function replaySse(e: CacheEntry, o: ReplayOptions): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(
    replayEvents(e, o)
      .map((ev) => `data: ${ev}\n\n`)
      .join(""),
  );
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

/** Non-streaming answer object. */
export function replayJson(e: CacheEntry, o: Omit<ReplayOptions, "includeUsage">): Record<string, unknown> {
  const text = entryText(e);
  if (e.kind === "chat") {
    return {
      id: o.id,
      object: "chat.completion",
      created: o.created,
      model: e.model,
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: text, refusal: null },
          logprobs: null,
          finish_reason: e.finishReason,
        },
      ],
      usage: replayUsage(e),
    };
  }
  return {
    id: o.id,
    object: "text_completion",
    created: o.created,
    model: e.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: e.finishReason }],
    usage: replayUsage(e),
  };
}
