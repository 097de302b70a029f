/** A backend of the fleet, from configuration. */
export interface BackendConfig {
  id: string;
  /** Base URL without trailing slash. */
  url: string;
  /** Model ids it serves. */
  models: string[];
  /** Relative capacity for rendezvous weighting (default 1). */
  weight?: number;
}

export type BreakerState = "closed" | "open" | "half_open";

export interface Breaker {
  state: BreakerState;
  /** Consecutive failures while closed. */
  failures: number;
  openedAt: number;
  /** A half-open probe is in flight (only one at a time). */
  probing: boolean;
}

/** What the edge knows about one backend. */
export interface BackendHealth {
  /** Result of the last active check (true until a check says otherwise). */
  up: boolean;
  lastCheckAt: number;
  /** Reported load in [0, 1] (busy slots / capacity); 0 when unknown. */
  load: number;
  loadAt: number;
  breaker: Breaker;
}

export interface RoutingOptions {
  /** Consecutive failures that open the breaker. */
  failureThreshold: number;
  /** How long an open breaker refuses traffic before one probe is let through. */
  openMs: number;
  /**
   * Affinity gives way to load: the preferred backend is skipped when its load exceeds the least
   * loaded eligible backend's by more than this (or when it is saturated, load >= 1).
   */
  loadSlack: number;
  /** Characters of the prompt that make up the affinity prefix. */
  prefixChars: number;
}

export const DEFAULT_ROUTING: RoutingOptions = {
  failureThreshold: 3,
  openMs: 5_000,
  loadSlack: 0.25,
  prefixChars: 512,
};
