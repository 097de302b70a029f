/**
 * Upper bound of a request's prompt tokens, computed at the edge without the model's tokenizer.
 * Byte-level BPE and SentencePiece with byte fallback never produce more tokens than UTF-8 bytes
 * (every token covers at least one byte), and the chat template adds a bounded number of special
 * tokens per message. The reservation (this + max_tokens) is therefore an upper bound of usage, which
 * is what makes admission exact; settlement replaces it by the backend's exact count.
 */
export const TEMPLATE_TOKENS_PER_MESSAGE = 16;
export const TEMPLATE_TOKENS_FIXED = 32;
/**
 * Tools: what a template writes around their JSON (instructions to the model, ~400 bytes in the
 * Llama 4 and Qwen3 templates; the opening tag of a forced call), and around each call of an
 * earlier assistant turn.
 */
export const TEMPLATE_TOKENS_TOOLS = 768;
export const TEMPLATE_TOKENS_PER_TOOL_CALL = 32;

import { type ChatCompletionRequest, messageText } from "../openai/schema.js";

const encoder = new TextEncoder();

export function utf8Length(s: string): number {
  return encoder.encode(s).length;
}

/** `texts`: every text the prompt is made of (message contents, names, tool JSON). */
export function estimatePromptTokens(texts: string[], messages: number): number {
  let bytes = 0;
  for (const t of texts) bytes += utf8Length(t);
  return bytes + messages * TEMPLATE_TOKENS_PER_MESSAGE + TEMPLATE_TOKENS_FIXED;
}

/** A chat request's bound: every message, the tools and earlier calls as a template writes them. */
export function chatPromptTokenBound(req: ChatCompletionRequest): number {
  const texts = req.messages.map((m) => `${m.role}${m.name ?? ""}${messageText(m.content)}`);
  let extra = 0;
  for (const m of req.messages) {
    if (!m.tool_calls?.length) continue;
    texts.push(JSON.stringify(m.tool_calls));
    extra += m.tool_calls.length * TEMPLATE_TOKENS_PER_TOOL_CALL;
  }
  if (req.tools?.length) {
    // Templates write each tool as JSON, compact or indented (either layout's bytes are counted).
    for (const t of req.tools) texts.push(JSON.stringify(t), JSON.stringify(t, null, 4));
    extra += TEMPLATE_TOKENS_TOOLS;
  }
  // Template variables may be written into the prompt.
  if (req.chat_template_kwargs) texts.push(JSON.stringify(req.chat_template_kwargs));
  return estimatePromptTokens(texts, req.messages.length) + extra;
}
