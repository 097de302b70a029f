import { describe, expect, it } from "vitest";
import {
  checkDerivativeName,
  compareVersions,
  DEFAULT_POLICY_CONFIG,
  evaluatePolicy,
  LLAMA4_RULES,
  type PolicyConfig,
  type PolicySubject,
  visibleModels,
} from "../../../src/policy/index.js";

const goodLlamaTenant: PolicySubject = {
  tenantId: "t1",
  domicile: "US",
  attestations: {
    mau: { kind: "below-threshold", at: "2025-06-01T00:00:00Z" },
    aup: [{ policy: "llama4-aup", version: "1", at: "2025-06-01T00:00:00Z" }],
  },
};
const text = (model: string) => ({ model, hasImageInput: false });

describe("license policy engine", () => {
  it("allows Llama 4 with attribution obligations when every attestation is present", () => {
    const d = evaluatePolicy(DEFAULT_POLICY_CONFIG, goodLlamaTenant, text("llama-4-scout"));
    expect(d.allow).toBe(true);
    if (!d.allow) return;
    expect(d.code).toBe("allowed");
    expect(d.headers["x-attribution"]).toBe("Built with Llama");
    expect(d.headers["x-model-license"]).toBe("Llama 4 Community License");
  });

  it("Apache-2.0 families pass with attribution only, no attestations needed", () => {
    const d = evaluatePolicy(
      DEFAULT_POLICY_CONFIG,
      { tenantId: "bare", domicile: "DE" },
      text("mixtral-8x7b"),
    );
    expect(d.allow).toBe(true);
    if (!d.allow) return;
    expect(d.headers).toEqual({
      "x-model-license": "Apache-2.0",
      "x-model-license-url": "https://www.apache.org/licenses/LICENSE-2.0",
    });
  });

  it("unknown model -> 404 unknown_model", () => {
    const d = evaluatePolicy(DEFAULT_POLICY_CONFIG, goodLlamaTenant, text("gpt-9"));
    expect(d).toMatchObject({ allow: false, status: 404, code: "unknown_model" });
  });

  it("clause 1: missing MAU attestation -> 403", () => {
    const s: PolicySubject = { ...goodLlamaTenant, attestations: { aup: goodLlamaTenant.attestations?.aup } };
    const d = evaluatePolicy(DEFAULT_POLICY_CONFIG, s, text("llama-4-maverick"));
    expect(d).toMatchObject({ allow: false, status: 403, code: "mau_attestation_missing" });
    if (!d.allow) expect(d.message).toMatch(/700 million/);
  });

  it("clause 6: AUP not accepted, or an outdated version -> 403", () => {
    const none: PolicySubject = {
      ...goodLlamaTenant,
      attestations: { mau: goodLlamaTenant.attestations?.mau },
    };
    expect(evaluatePolicy(DEFAULT_POLICY_CONFIG, none, text("llama-4-scout"))).toMatchObject({
      status: 403,
      code: "aup_not_accepted",
    });
    const cfg: PolicyConfig = {
      ...DEFAULT_POLICY_CONFIG,
      rules: {
        ...DEFAULT_POLICY_CONFIG.rules,
        llama4: { ...LLAMA4_RULES, requireAup: { policy: "llama4-aup", minVersion: "1.2" } },
      },
    };
    expect(evaluatePolicy(cfg, goodLlamaTenant, text("llama-4-scout"))).toMatchObject({
      status: 403,
      code: "aup_version_outdated",
    });
  });

  it("clause 6: declared forbidden use case -> 403; suspended tenant -> 403", () => {
    const s: PolicySubject = { ...goodLlamaTenant, useCases: ["customer-support", "spam"] };
    const d = evaluatePolicy(DEFAULT_POLICY_CONFIG, s, text("llama-4-scout"));
    expect(d).toMatchObject({ status: 403, code: "forbidden_use_case" });
    if (!d.allow) expect(d.message).toContain("spam");
    expect(
      evaluatePolicy(DEFAULT_POLICY_CONFIG, { ...goodLlamaTenant, suspended: true }, text("mixtral-8x7b")),
    ).toMatchObject({
      status: 403,
      code: "tenant_suspended",
    });
  });

  it("clause 5: trade-restricted tenant -> 451 for every family", () => {
    const s = { ...goodLlamaTenant, tradeRestricted: true };
    expect(evaluatePolicy(DEFAULT_POLICY_CONFIG, s, text("llama-4-scout"))).toMatchObject({
      status: 451,
      code: "trade_restricted",
    });
    expect(evaluatePolicy(DEFAULT_POLICY_CONFIG, s, text("qwen3-30b-a3b"))).toMatchObject({
      status: 451,
      code: "trade_restricted",
    });
  });

  it("clause 7: EU-domiciled organisation refused the multimodal Llama 4 models with 451, others allowed", () => {
    const eu = { ...goodLlamaTenant, domicile: "fr" };
    const d = evaluatePolicy(DEFAULT_POLICY_CONFIG, eu, text("llama-4-scout"));
    expect(d).toMatchObject({ allow: false, status: 451, code: "eu_multimodal_restricted" });
    if (!d.allow) expect(d.message).toContain("FR");
    // The same EU tenant may use the Apache-2.0 families.
    expect(evaluatePolicy(DEFAULT_POLICY_CONFIG, eu, text("mixtral-8x7b")).allow).toBe(true);
    // A non-EU tenant (whose end users may be in the EU) is allowed.
    expect(
      evaluatePolicy(DEFAULT_POLICY_CONFIG, { ...goodLlamaTenant, domicile: "CH" }, text("llama-4-scout"))
        .allow,
    ).toBe(true);
  });

  it("clause 7 as configured 'deny-image-input': text allowed, image input refused", () => {
    const cfg: PolicyConfig = {
      ...DEFAULT_POLICY_CONFIG,
      rules: {
        ...DEFAULT_POLICY_CONFIG.rules,
        llama4: { ...LLAMA4_RULES, multimodalExclusion: "deny-image-input" },
      },
    };
    const eu = { ...goodLlamaTenant, domicile: "DE" };
    expect(evaluatePolicy(cfg, eu, text("llama-4-scout")).allow).toBe(true);
    expect(evaluatePolicy(cfg, eu, { model: "llama-4-scout", hasImageInput: true })).toMatchObject({
      status: 451,
      code: "eu_image_input_restricted",
    });
  });

  it("clause 3: tenant aliases of Llama models must start with 'Llama'; Apache aliases are free", () => {
    const s: PolicySubject = {
      ...goodLlamaTenant,
      aliases: {
        "Llama-4-support-bot": "llama-4-scout",
        supportbot: "llama-4-scout",
        "my-mix": "mixtral-8x7b",
      },
    };
    expect(evaluatePolicy(DEFAULT_POLICY_CONFIG, s, text("Llama-4-support-bot")).allow).toBe(true);
    expect(evaluatePolicy(DEFAULT_POLICY_CONFIG, s, text("supportbot"))).toMatchObject({
      status: 403,
      code: "derivative_name_invalid",
    });
    expect(evaluatePolicy(DEFAULT_POLICY_CONFIG, s, text("my-mix")).allow).toBe(true);
    expect(checkDerivativeName(LLAMA4_RULES, "Llama-x")).toBeNull();
    expect(checkDerivativeName(LLAMA4_RULES, "x-Llama")?.code).toBe("derivative_name_invalid");
  });

  it("allowed models list restricts by requested name or base id", () => {
    const s = { ...goodLlamaTenant, allowedModels: ["mixtral-8x7b"] };
    expect(evaluatePolicy(DEFAULT_POLICY_CONFIG, s, text("mixtral-8x7b")).allow).toBe(true);
    expect(evaluatePolicy(DEFAULT_POLICY_CONFIG, s, text("llama-4-scout"))).toMatchObject({
      status: 403,
      code: "model_not_allowed",
    });
  });

  it("visibleModels lists only what the tenant may use", () => {
    const eu = { tenantId: "e", domicile: "IT", attestations: goodLlamaTenant.attestations };
    expect(visibleModels(DEFAULT_POLICY_CONFIG, eu).map((m) => m.id)).toEqual([
      "mixtral-8x7b",
      "qwen3-30b-a3b",
    ]);
    expect(visibleModels(DEFAULT_POLICY_CONFIG, goodLlamaTenant).map((m) => m.id)).toEqual([
      "llama-4-scout",
      "llama-4-maverick",
      "mixtral-8x7b",
      "qwen3-30b-a3b",
    ]);
  });

  it("compares versions numerically", () => {
    expect(compareVersions("1.10", "1.9")).toBe(1);
    expect(compareVersions("1", "1.0")).toBe(0);
    expect(compareVersions("0.9", "1")).toBe(-1);
  });
});
