/**
 * The chat route as an ordered list of stages. Each stage is a Hono middleware; the last one
 * (forward) answers. New stages (license policy, quota reservation, prompt cache, routing) go
 * into this list at their place; they talk through the typed context variables in env.ts
 * (`tenant`, `chatRequest`, `upstream`, `completionHooks`).
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env.js";
import { promptCacheLookup, promptCacheReplay } from "../gateway/cache.js";
import { routeBackend } from "../gateway/fleet.js";
import { licensePolicy } from "../gateway/policy.js";
import { quotaReservation } from "../gateway/quota.js";
import { apiKeyAuth } from "../middleware/auth.js";
import { validateChatRequest, validateCompletionRequest } from "../middleware/validate.js";
import { forwardFrames } from "../upstream/forward-frames.js";
import type { FetchLike } from "../upstream/target.js";

export interface PipelineDeps {
  /** Outbound fetch to backends (tests inject a double; default: global fetch). */
  fetch?: FetchLike;
}

export interface Stage {
  name: string;
  handler: MiddlewareHandler<AppEnv>;
}

export function chatStages(deps: PipelineDeps = {}, endpoint: "chat" | "completion" = "chat"): Stage[] {
  return [
    { name: "auth", handler: apiKeyAuth() },
    { name: "validate", handler: endpoint === "chat" ? validateChatRequest() : validateCompletionRequest() },
    // Gateway (workers/gateway): cache lookup runs before quota so that a hit reserves no tokens.
    { name: "policy", handler: licensePolicy() },
    { name: "cache", handler: promptCacheLookup() },
    { name: "quota", handler: quotaReservation() },
    { name: "cache-replay", handler: promptCacheReplay() },
    { name: "route", handler: routeBackend({ fetch: deps.fetch }) },
    { name: "forward", handler: forwardFrames(deps.fetch) },
  ];
}
