export { EU_MEMBER_STATES } from "./countries.js";
export {
  checkDerivativeName,
  compareVersions,
  DEFAULT_POLICY_CONFIG,
  evaluatePolicy,
  type PolicyConfig,
  resolveModel,
  visibleModels,
} from "./engine.js";
export { DEFAULT_CATALOG, DEFAULT_RULES, LLAMA4_RULES } from "./families.js";
export type * from "./types.js";
