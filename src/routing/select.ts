/**
 * Backend selection: eligible backends (serve the model, active check up, breaker allows) ordered by
 * weighted rendezvous hashing of the request's prefix hash, so a prefix keeps landing on the same
 * backend (its KV prefix cache hits) and only 1/N of prefixes move when a backend joins or leaves.
 * Load overrides affinity when the preferred backend is saturated or much busier than the least
 * loaded one. The returned order is the retry order.
 */
import { breakerAllows } from "./breaker.js";
import { fnv1a32, mix32 } from "./hash.js";
import type { BackendConfig, BackendHealth, RoutingOptions } from "./types.js";

/** Weighted HRW score: -w / ln(u), u in (0,1) uniform from hash(prefix, backend). Higher wins. */
export function rendezvousScore(prefix: number, backendId: string, weight = 1): number {
  const h = mix32(fnv1a32(backendId) ^ mix32(prefix));
  const u = (h + 0.5) / 4294967296;
  return -weight / Math.log(u);
}

export interface Candidate {
  backend: BackendConfig;
  score: number;
  load: number;
}

export function rankBackends(
  pool: BackendConfig[],
  health: ReadonlyMap<string, BackendHealth>,
  req: { model: string; prefix: number },
  opts: RoutingOptions,
  now: number,
): Candidate[] {
  const eligible: Candidate[] = [];
  for (const b of pool) {
    if (!b.models.includes(req.model)) continue;
    const h = health.get(b.id);
    if (h && (!h.up || !breakerAllows(h.breaker, opts, now))) continue;
    eligible.push({
      backend: b,
      score: rendezvousScore(req.prefix, b.id, b.weight ?? 1),
      load: h?.load ?? 0,
    });
  }
  // Panic mode (as Envoy does): when health says no backend serving the model is usable, try them
  // all rather than refuse outright; a dead one then fails fast and the next is tried.
  if (eligible.length === 0) {
    for (const b of pool) {
      if (!b.models.includes(req.model)) continue;
      eligible.push({
        backend: b,
        score: rendezvousScore(req.prefix, b.id, b.weight ?? 1),
        load: health.get(b.id)?.load ?? 0,
      });
    }
  }
  eligible.sort((a, b) => b.score - a.score);
  if (eligible.length < 2) return eligible;
  const minLoad = Math.min(...eligible.map((c) => c.load));
  const firstOk = eligible.findIndex((c) => c.load < 1 && c.load <= minLoad + opts.loadSlack);
  if (firstOk > 0) {
    const [pick] = eligible.splice(firstOk, 1);
    eligible.unshift(pick);
  }
  return eligible;
}
