/**
 * Types of the license-policy engine. The engine is pure: it sees a tenant's recorded facts, the
 * model's license rules (data, per family) and features of one request, and returns a decision.
 * Nothing here does I/O, so the same code runs in workerd (per request) and Node (tests, admin tools).
 */

/** Attestation that the tenant is below Llama's 700M MAU threshold or holds a separate Meta license. */
export interface MauAttestation {
  kind: "below-threshold" | "meta-license";
  /** ISO 8601 date-time the attestation was recorded. */
  at: string;
  /** Who attested (free text, for audits). */
  by?: string;
}

/** Acceptance of an Acceptable Use Policy, with its version. */
export interface AupAcceptance {
  /** Policy document id, e.g. "llama4-aup". */
  policy: string;
  version: string;
  /** ISO 8601 date-time. */
  at: string;
}

/** What the policy engine knows about a tenant (a projection of the tenant record). */
export interface PolicySubject {
  tenantId: string;
  /** ISO 3166-1 alpha-2 country of the organisation's domicile / principal place of business. */
  domicile?: string;
  /** Tenant suspended by an operator (e.g. AUP violation). */
  suspended?: boolean;
  /** Trade-compliance flag (sanctions / export control) set by an operator. */
  tradeRestricted?: boolean;
  /** Models the tenant may use; undefined or empty means every model in the catalog. */
  allowedModels?: string[];
  attestations?: {
    mau?: MauAttestation;
    aup?: AupAcceptance[];
  };
  /** Declared use-case categories (checked against each family's forbidden categories). */
  useCases?: string[];
  /** Tenant-registered aliases: alias name -> base model id (derivatives / fine-tunes). */
  aliases?: Record<string, string>;
}

/** License rules of one model family: pure data, editable by operators without a deploy. */
export interface LicenseRules {
  /** Family id, e.g. "llama4". */
  family: string;
  licenseName: string;
  licenseUrl: string;
  /** Notice to show with redistributed copies (models endpoint, docs). */
  notice?: string;
  /** Response headers every response of this family must carry (attribution obligations). */
  attributionHeaders: Record<string, string>;
  /** Require a MAU attestation (Llama: 700M monthly active users clause). */
  requireMauAttestation: boolean;
  /** Require acceptance of this AUP at this version or a later one (compared as dotted numbers). */
  requireAup?: { policy: string; minVersion: string };
  /** Countries whose domiciled organisations get no rights to the multimodal models of this family. */
  multimodalExcludedDomiciles?: string[];
  /** What an excluded tenant gets for a multimodal model: the whole model refused, or image input refused. */
  multimodalExclusion?: "deny-model" | "deny-image-input";
  /** Derivative (alias) names must begin with this prefix. */
  derivativeNamePrefix?: string;
  /** Declared use-case categories that the family's AUP forbids. */
  forbiddenUseCases?: string[];
  /** Refuse tenants carrying the trade-compliance flag. */
  tradeCompliance: boolean;
}

/** One entry of the model catalog. */
export interface CatalogModel {
  id: string;
  family: string;
  /** Takes image input (Llama 4 Scout / Maverick are natively multimodal). */
  multimodal: boolean;
  ownedBy: string;
}

/** Features of one request that rules look at. */
export interface PolicyRequest {
  /** The model name as the client sent it (may be a tenant alias). */
  model: string;
  /** The request carries image inputs. */
  hasImageInput: boolean;
}

export type ReasonCode =
  | "allowed"
  | "unknown_model"
  | "model_not_allowed"
  | "tenant_suspended"
  | "trade_restricted"
  | "mau_attestation_missing"
  | "aup_not_accepted"
  | "aup_version_outdated"
  | "forbidden_use_case"
  | "eu_multimodal_restricted"
  | "eu_image_input_restricted"
  | "derivative_name_invalid";

export interface AllowDecision {
  allow: true;
  code: "allowed";
  message: string;
  /** The catalog model the request resolves to (after alias resolution). */
  model: CatalogModel;
  rules: LicenseRules;
  /** Obligations: headers to put on the response. */
  headers: Record<string, string>;
}

export interface DenyDecision {
  allow: false;
  /** 403 for permission, 451 for legal restrictions, 404 for unknown models. */
  status: 403 | 404 | 451;
  code: Exclude<ReasonCode, "allowed">;
  message: string;
}

export type PolicyDecision = AllowDecision | DenyDecision;
