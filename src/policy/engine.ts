import { DEFAULT_CATALOG, DEFAULT_RULES } from "./families.js";
import type {
  CatalogModel,
  DenyDecision,
  LicenseRules,
  PolicyDecision,
  PolicyRequest,
  PolicySubject,
} from "./types.js";

/** The data the engine decides from: catalog + rules per family. */
export interface PolicyConfig {
  catalog: CatalogModel[];
  rules: Record<string, LicenseRules>;
}

export const DEFAULT_POLICY_CONFIG: PolicyConfig = { catalog: DEFAULT_CATALOG, rules: DEFAULT_RULES };

function deny(status: DenyDecision["status"], code: DenyDecision["code"], message: string): DenyDecision {
  return { allow: false, status, code, message };
}

/** Compare dotted version strings numerically ("1.10" > "1.9"); non-numeric parts compare as text. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".");
  const pb = b.split(".");
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? "0";
    const y = pb[i] ?? "0";
    const nx = Number(x);
    const ny = Number(y);
    const c = Number.isFinite(nx) && Number.isFinite(ny) ? nx - ny : x.localeCompare(y);
    if (c !== 0) return Math.sign(c);
  }
  return 0;
}

/** Clause 3: a derivative's name must begin with the family prefix ("Llama"). Null when fine. */
export function checkDerivativeName(rules: LicenseRules, name: string): DenyDecision | null {
  const prefix = rules.derivativeNamePrefix;
  if (prefix === undefined || name.startsWith(prefix)) return null;
  return deny(
    403,
    "derivative_name_invalid",
    `The model alias "${name}" is derived from a ${rules.licenseName} model; its name must begin with "${prefix}".`,
  );
}

/** Resolve a requested model name (catalog id or tenant alias) to a catalog entry. */
export function resolveModel(
  config: PolicyConfig,
  subject: PolicySubject,
  name: string,
): { model: CatalogModel; alias?: string } | null {
  const direct = config.catalog.find((m) => m.id === name);
  if (direct) return { model: direct };
  const base = subject.aliases?.[name];
  if (base === undefined) return null;
  const model = config.catalog.find((m) => m.id === base);
  return model ? { model, alias: name } : null;
}

/**
 * Decide one request. Checks run from the most general (model exists, tenant in good standing) to
 * the most specific (multimodal domicile rule), so the first failing rule names the real cause.
 */
export function evaluatePolicy(
  config: PolicyConfig,
  subject: PolicySubject,
  request: PolicyRequest,
): PolicyDecision {
  const resolved = resolveModel(config, subject, request.model);
  if (!resolved) return deny(404, "unknown_model", `The model "${request.model}" does not exist.`);
  const { model, alias } = resolved;
  const rules = config.rules[model.family];
  if (!rules)
    return deny(404, "unknown_model", `The model "${request.model}" has no license rules configured.`);

  if (subject.suspended) {
    return deny(403, "tenant_suspended", "This tenant is suspended; contact the operator.");
  }
  const allowed = subject.allowedModels;
  if (allowed && allowed.length > 0 && !allowed.includes(request.model) && !allowed.includes(model.id)) {
    return deny(403, "model_not_allowed", `This key's tenant may not use the model "${request.model}".`);
  }
  if (alias !== undefined) {
    const bad = checkDerivativeName(rules, alias);
    if (bad) return bad;
  }
  if (rules.tradeCompliance && subject.tradeRestricted) {
    return deny(
      451,
      "trade_restricted",
      "This tenant is flagged under trade-compliance rules (sanctions / export control); the model is unavailable.",
    );
  }
  if (rules.requireMauAttestation && !subject.attestations?.mau) {
    return deny(
      403,
      "mau_attestation_missing",
      `${rules.licenseName}: the tenant has not attested that it is below 700 million monthly active users or holds a separate license from Meta.`,
    );
  }
  if (rules.requireAup) {
    const need = rules.requireAup;
    const accepted = (subject.attestations?.aup ?? []).filter((a) => a.policy === need.policy);
    if (accepted.length === 0) {
      return deny(
        403,
        "aup_not_accepted",
        `The tenant has not accepted the Acceptable Use Policy "${need.policy}" required by the ${rules.licenseName}.`,
      );
    }
    if (!accepted.some((a) => compareVersions(a.version, need.minVersion) >= 0)) {
      return deny(
        403,
        "aup_version_outdated",
        `The tenant accepted an older version of "${need.policy}"; version ${need.minVersion} or later is required.`,
      );
    }
  }
  const forbidden = (subject.useCases ?? []).filter((u) => rules.forbiddenUseCases?.includes(u));
  if (forbidden.length > 0) {
    return deny(
      403,
      "forbidden_use_case",
      `The tenant's declared use cases (${forbidden.join(", ")}) are forbidden by the ${rules.licenseName} Acceptable Use Policy.`,
    );
  }
  const domicile = subject.domicile?.toUpperCase();
  if (model.multimodal && domicile && rules.multimodalExcludedDomiciles?.includes(domicile)) {
    if (rules.multimodalExclusion !== "deny-image-input") {
      return deny(
        451,
        "eu_multimodal_restricted",
        `The ${rules.licenseName} grants no rights to the multimodal model "${model.id}" to organisations domiciled in the European Union (tenant domicile: ${domicile}).`,
      );
    }
    if (request.hasImageInput) {
      return deny(
        451,
        "eu_image_input_restricted",
        `The ${rules.licenseName} grants no rights to the multimodal (image) use of "${model.id}" to organisations domiciled in the European Union (tenant domicile: ${domicile}).`,
      );
    }
  }
  return {
    allow: true,
    code: "allowed",
    message: `Allowed under the ${rules.licenseName}.`,
    model,
    rules,
    headers: { ...rules.attributionHeaders },
  };
}

/** Models the tenant may use for text requests: what `/v1/models` lists, with license data. */
export function visibleModels(
  config: PolicyConfig,
  subject: PolicySubject,
): Array<{ id: string; model: CatalogModel; rules: LicenseRules }> {
  const names = [...config.catalog.map((m) => m.id), ...Object.keys(subject.aliases ?? {})];
  const out: Array<{ id: string; model: CatalogModel; rules: LicenseRules }> = [];
  for (const id of names) {
    const d = evaluatePolicy(config, subject, { model: id, hasImageInput: false });
    if (d.allow) out.push({ id, model: d.model, rules: d.rules });
  }
  return out;
}
