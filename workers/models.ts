import type { ModelEntry } from "../src/openai/types.js";
import type { Env } from "./env.js";

/** Model ids served by this edge, from the MODELS var (comma-separated). */
export function configuredModels(env: Env): string[] {
  return (env.MODELS ?? "")
    .split(",")
    .map((m) => m.trim())
    .filter((m) => m.length > 0);
}

export function modelEntries(env: Env): ModelEntry[] {
  return configuredModels(env).map((id) => ({ id, object: "model", created: 0, owned_by: "moe-edge" }));
}
