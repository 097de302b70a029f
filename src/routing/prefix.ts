/**
 * The affinity prefix of a request: the text a backend's prefix KV cache could reuse. For a chat,
 * the conversation without its last message (earlier turns and the system prompt are what the next
 * turn shares), or the only message; for a completion, the prompt. Cut at `prefixChars` so that
 * requests sharing a long enough common head map to the same key. Model is part of it: a prefix
 * cache is per model.
 */
import { fnv1a32 } from "./hash.js";

export interface PrefixInput {
  model: string;
  messages?: Array<{ role: string; content?: unknown }>;
  prompt?: string | number[];
}

function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((p) =>
        typeof p === "object" && p !== null && "text" in p ? String((p as { text: unknown }).text) : "",
      )
      .join("");
  }
  return "";
}

export function affinityText(req: PrefixInput, prefixChars: number): string {
  let text: string;
  if (req.messages && req.messages.length > 0) {
    const shared = req.messages.length > 1 ? req.messages.slice(0, -1) : req.messages;
    text = shared.map((m) => `${m.role}\n${contentText(m.content)}\n`).join("");
  } else {
    const p = req.prompt ?? "";
    // Token ids: their decimal list is as good a key (the same ids share the same K/V).
    text = typeof p === "string" ? p : p.join(",");
  }
  return `${req.model}\0${text.slice(0, prefixChars)}`;
}

export function prefixHash(req: PrefixInput, prefixChars: number): number {
  return fnv1a32(affinityText(req, prefixChars));
}
