import type { Device } from "../device/device.js";
import type { ExpertWeights } from "../model/types.js";

/**
 * The engine's only way to reach routed-expert weights. The eager provider holds every expert;
 * the expert store (lazy paging) keeps a budgeted resident set and reads the rest from disk.
 * Weights returned by acquire() stay valid until the next acquire() call.
 */
export interface ExpertProvider {
  acquire(layer: number, experts: number[]): Promise<ExpertWeights[]>;
  /**
   * The weights at once when no read is needed (the eager provider always); null otherwise, and
   * then the caller uses acquire(). Same validity and counting as acquire().
   */
  acquireResident?(layer: number, experts: number[]): ExpertWeights[] | null;
  /**
   * A guess that these experts of `layer` are needed soon, best guess first: start loading them
   * (no-op if eager). Call it right after the acquire() of an earlier layer was issued, so that
   * the step's own reads are queued first. `confidence` (per expert, larger = surer; any scale,
   * e.g. a router logit margin) lets the provider skip guesses that are usually wrong.
   */
  hint(layer: number, experts: number[], confidence?: number[]): void;
  /** Counters for metrics and per-request summaries (names are stable, values exact). */
  stats(): Record<string, number>;
  /**
   * The most experts one acquire() may ask for (a lazy store's budget holds no more at once);
   * undefined = no limit. The engine splits a layer's expert set into groups of this size.
   */
  readonly maxExpertsPerAcquire?: number;
  /** True when hint() does something (a lazy store): the engine skips computing guesses otherwise. */
  readonly wantsHints?: boolean;
  /**
   * The device that computes with the experts (the model calls this before its first step): a
   * provider that owns expert memory lets it adopt its experts in place (Device.adopt).
   */
  useDevice?(device: Device): void;
  /** Detail for the metrics endpoint (per layer / per expert); absent for the eager provider. */
  report?(): unknown;
  close(): void;
}
