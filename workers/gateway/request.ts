/**
 * One view of the validated request for the gateway stages, whichever endpoint it came from
 * (`/v1/chat/completions` sets `chatRequest`, `/v1/completions` sets `completionRequest`).
 */
import type { Context } from "hono";
import { type ChatCompletionRequest, type CompletionRequest, messageText } from "../../src/openai/schema.js";
import type { AppEnv } from "../env.js";

export type AnyRequest = ChatCompletionRequest | CompletionRequest;

export interface RequestView {
  kind: "chat" | "completion";
  req: AnyRequest;
}

export function currentRequest(c: Context<AppEnv>): RequestView {
  if (c.get("endpoint") === "completion") return { kind: "completion", req: c.get("completionRequest") };
  return { kind: "chat", req: c.get("chatRequest") };
}

/** Replace the request the later stages (and the forward) see. */
export function replaceRequest(
  c: Context<AppEnv>,
  view: RequestView,
  patch: { model?: string; max_tokens?: number },
): void {
  if (view.kind === "completion")
    c.set("completionRequest", { ...(view.req as CompletionRequest), ...patch });
  else c.set("chatRequest", { ...(view.req as ChatCompletionRequest), ...patch });
}

export function isChat(req: AnyRequest): req is ChatCompletionRequest {
  return Array.isArray((req as ChatCompletionRequest).messages);
}

/** Texts the prompt is made of and its message count (a completion prompt counts as one message). */
export function promptParts(req: AnyRequest): { texts: string[]; messages: number } {
  if (isChat(req)) {
    return {
      texts: req.messages.map((m) => `${m.role}${m.name ?? ""}${messageText(m.content)}`),
      messages: req.messages.length,
    };
  }
  return { texts: [req.prompt], messages: 1 };
}

/** max_tokens as the client set it (max_completion_tokens wins for chat), or null. */
export function requestedMaxTokens(req: AnyRequest): number | null {
  if (isChat(req) && req.max_completion_tokens != null) return req.max_completion_tokens;
  return req.max_tokens ?? null;
}
