/**
 * The canonical form of a request for the prompt cache. What is in the key (documented in the
 * README, "Prompt cache"):
 *   sha256( "moe-edge-prompt-cache/v1" \0 tenantId \0 model \0 canonicalJson )
 * where canonicalJson is the request body with
 *   - `model` removed (it is keyed separately, as the name the client used),
 *   - transport-only fields removed: `stream`, `stream_options`, `user`, `metadata`, `store`,
 *   - null-valued fields removed (null means "default", the same as absent),
 *   - `max_completion_tokens` folded into `max_tokens`, and `stop` as an array,
 *   - object keys sorted at every depth (array order kept: it is meaningful).
 * Every other field stays in, including ones the edge does not know: anything that may change the
 * output changes the key, so a hit never returns an answer to a different question.
 */

const TRANSPORT_FIELDS = new Set(["model", "stream", "stream_options", "user", "metadata", "store"]);

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Stable JSON: sorted object keys, no whitespace. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== "object") {
    const s = JSON.stringify(value);
    return s === undefined ? "null" : s;
  }
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(obj[k])}`).join(",")}}`;
}

export function canonicalRequest(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (TRANSPORT_FIELDS.has(k) || v === null || v === undefined) continue;
    out[k] = v;
  }
  if (out.max_completion_tokens !== undefined) {
    out.max_tokens = out.max_completion_tokens;
    delete out.max_completion_tokens;
  }
  if (typeof out.stop === "string") out.stop = [out.stop];
  return out;
}

/** Deterministic: greedy (temperature 0) or seeded sampling. Only these are cacheable. */
export function isDeterministic(body: Record<string, unknown>): boolean {
  return body.temperature === 0 || (typeof body.seed === "number" && Number.isInteger(body.seed));
}

/** Reasons a deterministic request is still not cacheable (the cache does not store them). */
export function uncacheableReason(body: Record<string, unknown>): string | null {
  if (!isDeterministic(body)) return "not_deterministic";
  if (body.logprobs === true || (typeof body.logprobs === "number" && body.logprobs > 0)) return "logprobs";
  if (typeof body.n === "number" && body.n > 1) return "n";
  // Entries keep text deltas only, not tool calls.
  if (Array.isArray(body.tools) && body.tools.length > 0 && body.tool_choice !== "none") return "tools";
  return null;
}
