/**
 * The gateway's per-tenant settings, kept on the tenant record in KV (so authentication, which
 * already reads the record, brings them along: no extra read on the hot path).
 */
import type { AupAcceptance, MauAttestation, PolicySubject } from "../../src/policy/index.js";
import type { QuotaLimits } from "../../src/quota/index.js";

export interface TenantCacheSettings {
  /** Default true: deterministic requests are cached unless the tenant turns it off. */
  enabled?: boolean;
  /** Entry lifetime (seconds, at least 60: the KV minimum). */
  ttlSeconds?: number;
}

export interface TenantGatewaySettings {
  quota?: QuotaLimits;
  allowedModels?: string[];
  /** ISO 3166-1 alpha-2. */
  domicile?: string;
  attestations?: { mau?: MauAttestation; aup?: AupAcceptance[] };
  useCases?: string[];
  aliases?: Record<string, string>;
  suspended?: boolean;
  tradeRestricted?: boolean;
  cache?: TenantCacheSettings;
}

export function toPolicySubject(tenantId: string, s: TenantGatewaySettings | undefined): PolicySubject {
  return {
    tenantId,
    domicile: s?.domicile,
    suspended: s?.suspended,
    tradeRestricted: s?.tradeRestricted,
    allowedModels: s?.allowedModels,
    attestations: s?.attestations,
    useCases: s?.useCases,
    aliases: s?.aliases,
  };
}
