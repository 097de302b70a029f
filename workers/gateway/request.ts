/**
 * One view of the validated request for the gateway stages, whichever endpoint it came from
 * (`/v1/chat/completions` sets `chatRequest`, `/v1/completions` sets `completionRequest`).
 */
import type { Context } from "hono";
import type { ChatCompletionRequest, CompletionRequest } from "../../src/openai/schema.js";
import { chatPromptTokenBound, estimatePromptTokens } from "../../src/quota/index.js";
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

/**
 * Upper bound of the prompt's tokens (see estimatePromptTokens); a token-id prompt is exactly its
 * length (the backend takes the ids as they are).
 */
export function promptTokenBound(req: AnyRequest): number {
  if (isChat(req)) return chatPromptTokenBound(req);
  return typeof req.prompt === "string" ? estimatePromptTokens([req.prompt], 1) : req.prompt.length;
}

/** max_tokens as the client set it (max_completion_tokens wins for chat), or null. */
export function requestedMaxTokens(req: AnyRequest): number | null {
  if (isChat(req) && req.max_completion_tokens != null) return req.max_completion_tokens;
  return req.max_tokens ?? null;
}
