/**
 * What the server can read from an engine for /health and /metrics. `MoeEngine` has all of it;
 * other engines (test doubles, a future remote engine) may have none, and the endpoints then
 * report only what the server itself counts.
 */
import type { PrefixCacheStats } from "../engine/prefix-cache.js";
import type { SchedulerLimits, SchedulerStats } from "../engine/scheduler.js";
import type { Engine } from "../engine/types.js";
import type { StoreReport } from "../experts/store.js";

export interface IntrospectableEngine extends Engine {
  readonly scheduler: { stats(): SchedulerStats; readonly limits?: SchedulerLimits };
  readonly prefixCache: { stats(): PrefixCacheStats } | null;
  readonly experts: { stats(): Record<string, number>; report?(): unknown };
}

export function introspect(engine: Engine | null): IntrospectableEngine | null {
  if (!engine) return null;
  const e = engine as Partial<IntrospectableEngine>;
  if (typeof e.scheduler?.stats !== "function" || typeof e.experts?.stats !== "function") return null;
  return e as IntrospectableEngine;
}

/** The lazy expert store's report, or null for providers without one (eager). */
export function storeReport(engine: IntrospectableEngine): StoreReport | null {
  const r = engine.experts.report?.();
  if (typeof r !== "object" || r === null || !("totals" in r) || !("layers" in r)) return null;
  return r as StoreReport;
}

export interface LoadReport {
  /** Busy share of admission capacity in [0, 1]: the edge router's `load`. */
  load: number;
  queued: number;
  running: number;
  max_running: number | null;
  max_queued: number | null;
  kv_bytes: number;
  prefix_cache_bytes: number;
  prefix_cache_capacity_bytes: number;
  /** Routed-expert memory in use over its budget (1 for an eager provider: everything resident). */
  expert_cache_warmth: number;
  expert_resident_bytes: number;
  expert_budget_bytes: number;
}

export function loadReport(engine: IntrospectableEngine): LoadReport {
  const s = engine.scheduler.stats();
  const limits = engine.scheduler.limits;
  const capacity = limits ? limits.maxRunning + limits.maxQueued : 0;
  const busy = s.running + s.queued;
  const pc = engine.prefixCache?.stats();
  const x = engine.experts.stats();
  const resident = x.resident_bytes ?? 0;
  const budget = x.budget_bytes ?? 0;
  return {
    load: capacity > 0 ? Math.min(1, busy / capacity) : busy > 0 ? 1 : 0,
    queued: s.queued,
    running: s.running,
    max_running: limits?.maxRunning ?? null,
    max_queued: limits?.maxQueued ?? null,
    kv_bytes: s.kvBytes,
    prefix_cache_bytes: pc?.bytes ?? 0,
    prefix_cache_capacity_bytes: pc?.capacityBytes ?? 0,
    expert_cache_warmth: budget > 0 ? resident / budget : 1,
    expert_resident_bytes: resident,
    expert_budget_bytes: budget,
  };
}
