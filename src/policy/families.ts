import { EU_MEMBER_STATES } from "./countries.js";
import type { CatalogModel, LicenseRules } from "./types.js";

/**
 * Default license rules per model family (data, not code). Operators may replace them at runtime
 * (e.g. from KV / configuration); the engine only reads these fields.
 * Llama 4 facts: Llama 4 Community License + Llama 4 Acceptable Use Policy (see
 * shared/reference/license-policy.md). Mixtral and Qwen3-MoE: Apache-2.0, attribution only.
 */
export const LLAMA4_RULES: LicenseRules = {
  family: "llama4",
  licenseName: "Llama 4 Community License",
  licenseUrl: "https://github.com/meta-llama/llama-models/blob/main/models/llama4/LICENSE",
  notice:
    "Llama 4 is licensed under the Llama 4 Community License, Copyright © Meta Platforms, Inc. All Rights Reserved.",
  attributionHeaders: {
    "x-model-license": "Llama 4 Community License",
    "x-model-license-url": "https://github.com/meta-llama/llama-models/blob/main/models/llama4/LICENSE",
    "x-attribution": "Built with Llama",
  },
  requireMauAttestation: true,
  requireAup: { policy: "llama4-aup", minVersion: "1" },
  multimodalExcludedDomiciles: [...EU_MEMBER_STATES],
  multimodalExclusion: "deny-model",
  derivativeNamePrefix: "Llama",
  forbiddenUseCases: [
    "child-exploitation",
    "human-trafficking",
    "unlicensed-professional-practice",
    "sensitive-data-inference",
    "malware",
    "safety-circumvention",
    "military",
    "weapons",
    "illegal-drugs",
    "critical-infrastructure",
    "self-harm",
    "fraud",
    "defamation",
    "spam",
    "impersonation",
    "undisclosed-ai-output",
    "fake-engagement",
  ],
  tradeCompliance: true,
};

function apache2(family: string): LicenseRules {
  return {
    family,
    licenseName: "Apache-2.0",
    licenseUrl: "https://www.apache.org/licenses/LICENSE-2.0",
    attributionHeaders: {
      "x-model-license": "Apache-2.0",
      "x-model-license-url": "https://www.apache.org/licenses/LICENSE-2.0",
    },
    requireMauAttestation: false,
    // Trade law applies to every service, whatever the model license says.
    tradeCompliance: true,
  };
}

export const DEFAULT_RULES: Record<string, LicenseRules> = {
  llama4: LLAMA4_RULES,
  mixtral: apache2("mixtral"),
  qwen3moe: apache2("qwen3moe"),
};

/** Default catalog: the families the backend serves. Operators extend it through configuration. */
export const DEFAULT_CATALOG: CatalogModel[] = [
  { id: "llama-4-scout", family: "llama4", multimodal: true, ownedBy: "meta" },
  { id: "llama-4-maverick", family: "llama4", multimodal: true, ownedBy: "meta" },
  { id: "mixtral-8x7b", family: "mixtral", multimodal: false, ownedBy: "mistralai" },
  { id: "qwen3-30b-a3b", family: "qwen3moe", multimodal: false, ownedBy: "qwen" },
];
