/**
 * The assistant's side of a chat answer, shared by the backend's own endpoints and the edge (which
 * builds the same objects from frames): content and tool calls, whole or as stream deltas.
 */
import type { ChatCompletion, ChatCompletionChunk, ToolCallOut } from "./types.js";

/** A tool call as the backend reports it (frames and engine events alike). */
export interface FoundToolCall {
  id: string;
  name: string;
  arguments: string;
}

export function toolCallOut(c: FoundToolCall): ToolCallOut {
  return { id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } };
}

type Delta = ChatCompletionChunk["choices"][number]["delta"];

/**
 * The delta of one token: its text, and the calls it completed (numbered from `firstIndex`, the
 * calls sent before). A token that only completed calls sends no content field.
 */
export function assistantDelta(
  text: string,
  calls: readonly FoundToolCall[],
  firstIndex: number,
  reasoning = "",
): Delta {
  const delta: Delta = {};
  if (reasoning !== "") delta.reasoning_content = reasoning;
  if (text !== "" || (calls.length === 0 && reasoning === "")) delta.content = text;
  if (calls.length > 0)
    delta.tool_calls = calls.map((c, i) => ({ index: firstIndex + i, ...toolCallOut(c) }));
  return delta;
}

/**
 * The whole message: content is null when the reply was only calls (as OpenAI answers); the
 * reasoning (if any) as reasoning_content.
 */
export function assistantMessage(
  text: string,
  calls: readonly FoundToolCall[],
  reasoning = "",
): ChatCompletion["choices"][number]["message"] {
  return {
    role: "assistant",
    content: calls.length > 0 && text === "" ? null : text,
    refusal: null,
    ...(reasoning !== "" ? { reasoning_content: reasoning } : {}),
    ...(calls.length > 0 ? { tool_calls: calls.map(toolCallOut) } : {}),
  };
}
