/** The edge worker's bindings (wrangler.toml [vars], secrets, KV) and per-request variables. */
import type { ChatCompletionRequest, CompletionRequest } from "../src/openai/schema.js";
import type { AllowDecision } from "../src/policy/index.js";
import type { CompletionHook } from "./chat/outcome.js";
import type { TenantQuota } from "./durable/tenant-quota.js";
import type { PromptCacheState } from "./gateway/cache.js";
import type { ReservationInfo } from "./gateway/quota.js";
import type { Tenant } from "./tenants/types.js";
import type { FetchLike, UpstreamTarget } from "./upstream/target.js";

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
  /** Gateway: one TenantQuota Durable Object per tenant (quota counters + usage ledger). */
  TENANT_QUOTA: DurableObjectNamespace<TenantQuota>;
  /** Gateway: prompt cache entries (msgpack), keyed per tenant. */
  PROMPT_CACHE: KVNamespace;
  /** Gateway configuration (see workers/gateway/config.ts for each one's meaning and default). */
  MODEL_CATALOG?: string;
  LICENSE_RULES?: string;
  BACKENDS?: string;
  PROMPT_CACHE_TTL_SECONDS?: string;
  DEFAULT_MAX_TOKENS?: string;
  RESERVATION_TTL_SECONDS?: string;
  HEALTH_INTERVAL_MS?: string;
}

export interface Variables {
  requestId: string;
  /** Set by auth. */
  tenant: Tenant;
  /** Set by validation: the parsed OpenAI request. */
  chatRequest: ChatCompletionRequest;
  /** Which OpenAI endpoint this request is ("chat" unless /v1/completions set "completion"). */
  endpoint: "chat" | "completion";
  /** Set by validation of /v1/completions. */
  completionRequest: CompletionRequest;
  /** Where forward() sends the request; a routing stage may set it (default: BACKEND_URL). */
  upstream: UpstreamTarget;
  /** Called once the response is complete (usage known); stages push hooks (quota settle, cache fill). */
  completionHooks: CompletionHook[];
  /** Gateway: the license decision (set by the policy stage). */
  policy: AllowDecision;
  /** Gateway: prompt-cache lookup result. */
  promptCache: PromptCacheState;
  /** Gateway: the quota reservation to settle. */
  reservation: ReservationInfo;
  /** Gateway: fetch used by forward (the fleet router's retrying fetch). */
  upstreamFetch: FetchLike;
  /** Gateway: aborted when a concurrently running admission refuses the request. */
  admissionSignal: AbortSignal;
  /** Gateway: Server-Timing entries of the stages. */
  timings: string[];
}

export type AppEnv = { Bindings: Env; Variables: Variables };
