import type { ExpertWeights } from "../model/types.js";

/**
 * The engine's only way to reach routed-expert weights. The eager provider holds every expert;
 * the expert store (lazy paging) keeps a budgeted resident set and reads the rest from disk.
 * Weights returned by acquire() stay valid until the next acquire() call.
 */
export interface ExpertProvider {
  acquire(layer: number, experts: number[]): Promise<ExpertWeights[]>;
  /** A guess that these experts of `layer` are needed soon: start loading them (no-op if eager). */
  hint(layer: number, experts: number[]): void;
  /** Counters for metrics and per-request summaries (names are stable, values exact). */
  stats(): Record<string, number>;
  close(): void;
}
