/** The edge worker's bindings (wrangler.toml [vars], secrets, KV) and per-request variables. */
import type { ChatCompletionRequest } from "../src/openai/schema.js";
import type { CompletionHook } from "./chat/outcome.js";
import type { Tenant } from "./tenants/types.js";
import type { UpstreamTarget } from "./upstream/target.js";

export interface Env {
  /** Tenants and API-key hashes. */
  TENANTS: KVNamespace;
  /** Base URL of the inference backend, e.g. http://127.0.0.1:8788. */
  BACKEND_URL: string;
  /** HMAC secret shared with the backend (secret). */
  BACKEND_SECRET: string;
  /** Bearer token for /admin (secret). Admin API is off when unset. */
  ADMIN_TOKEN?: string;
  /** Comma-separated model ids this edge serves. */
  MODELS: string;
  /** Largest accepted request body in bytes (default 1 MiB). */
  MAX_BODY_BYTES?: string;
}

export interface Variables {
  requestId: string;
  /** Set by auth. */
  tenant: Tenant;
  /** Set by validation: the parsed OpenAI request. */
  chatRequest: ChatCompletionRequest;
  /** Where forward() sends the request; a routing stage may set it (default: BACKEND_URL). */
  upstream: UpstreamTarget;
  /** Called once the response is complete (usage known); stages push hooks (quota settle, cache fill). */
  completionHooks: CompletionHook[];
}

export type AppEnv = { Bindings: Env; Variables: Variables };
