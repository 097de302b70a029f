/**
 * Gateway configuration from the worker's vars (wrangler.toml [vars] or the dashboard), parsed once
 * per isolate:
 *   MODELS                  comma-separated served model ids (the foundation's var)
 *   MODEL_CATALOG           JSON [{id, family, multimodal, ownedBy}] for models whose family the name
 *                           does not tell (default: inferred from the id: llama/mixtral/qwen)
 *   LICENSE_RULES           JSON {family: LicenseRules} overriding the built-in per-family rules
 *   BACKENDS                JSON [{id, url, models, weight?}] the fleet (default: BACKEND_URL serving MODELS)
 *   PROMPT_CACHE_TTL_SECONDS default entry lifetime (3600)
 *   DEFAULT_MAX_TOKENS      max_tokens applied when a request sets none (1024): reservations need a bound
 *   RESERVATION_TTL_SECONDS how long an unsettled reservation lives before the DO releases it (900)
 *   HEALTH_INTERVAL_MS      active health-check period per backend (5000)
 */
import {
  type CatalogModel,
  DEFAULT_CATALOG,
  DEFAULT_RULES,
  type LicenseRules,
  type PolicyConfig,
} from "../../src/policy/index.js";
import { type BackendConfig, DEFAULT_ROUTING, type RoutingOptions } from "../../src/routing/index.js";
import type { Env } from "../env.js";
import { configuredModels } from "../models.js";

export interface GatewayConfig {
  policy: PolicyConfig;
  pool: BackendConfig[];
  routing: RoutingOptions;
  cacheTtlSeconds: number;
  defaultMaxTokens: number;
  reservationTtlMs: number;
  healthIntervalMs: number;
}

/** Models of no known family: the operator vouches for their terms; we only name them. */
const UNSPECIFIED_RULES: LicenseRules = {
  family: "unspecified",
  licenseName: "unspecified",
  licenseUrl: "",
  attributionHeaders: {},
  requireMauAttestation: false,
  tradeCompliance: true,
};

export function inferCatalogEntry(id: string): CatalogModel {
  const known = DEFAULT_CATALOG.find((m) => m.id === id);
  if (known) return known;
  const s = id.toLowerCase();
  if (s.includes("llama"))
    return { id, family: "llama4", multimodal: /scout|maverick/.test(s), ownedBy: "meta" };
  if (s.includes("mixtral")) return { id, family: "mixtral", multimodal: false, ownedBy: "mistralai" };
  if (s.includes("qwen")) return { id, family: "qwen3moe", multimodal: false, ownedBy: "qwen" };
  return { id, family: "unspecified", multimodal: false, ownedBy: "moe-edge" };
}

function json<T>(text: string | undefined, what: string): T | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${what} is not valid JSON`);
  }
}

function num(text: string | undefined, dflt: number): number {
  const n = Number(text);
  return text !== undefined && text !== "" && Number.isFinite(n) && n > 0 ? n : dflt;
}

const memo = new WeakMap<object, GatewayConfig>();

export function gatewayConfig(env: Env): GatewayConfig {
  const hit = memo.get(env);
  if (hit) return hit;
  const served = configuredModels(env);
  const listed = json<CatalogModel[]>(env.MODEL_CATALOG, "MODEL_CATALOG") ?? [];
  const ids = served.length > 0 ? served : listed.map((m) => m.id);
  const catalog = ids.map((id) => listed.find((m) => m.id === id) ?? inferCatalogEntry(id));
  const rules: Record<string, LicenseRules> = {
    ...DEFAULT_RULES,
    unspecified: UNSPECIFIED_RULES,
    ...json<Record<string, LicenseRules>>(env.LICENSE_RULES, "LICENSE_RULES"),
  };
  const pool = json<BackendConfig[]>(env.BACKENDS, "BACKENDS") ?? [
    { id: "default", url: (env.BACKEND_URL ?? "").replace(/\/+$/, ""), models: ids },
  ];
  const cfg: GatewayConfig = {
    policy: { catalog, rules },
    pool: pool.map((b) => ({ ...b, url: b.url.replace(/\/+$/, "") })),
    routing: DEFAULT_ROUTING,
    cacheTtlSeconds: num(env.PROMPT_CACHE_TTL_SECONDS, 3600),
    defaultMaxTokens: num(env.DEFAULT_MAX_TOKENS, 1024),
    reservationTtlMs: num(env.RESERVATION_TTL_SECONDS, 900) * 1000,
    healthIntervalMs: num(env.HEALTH_INTERVAL_MS, 5000),
  };
  memo.set(env, cfg);
  return cfg;
}
