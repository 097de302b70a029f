import type { WindowKind } from "./windows.js";

/** Per-tenant limits. A missing limit means unlimited in that dimension. */
export interface QuotaLimits {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  tokensPerDay?: number;
  /** The license / contract quota. */
  tokensPerMonth?: number;
  maxConcurrentStreams?: number;
}

/** Amount used in one fixed window: settled usage plus outstanding reservations admitted in it. */
export interface WindowCounter {
  start: number;
  used: number;
}

export interface Reservation {
  id: string;
  /** Tokens held (prompt estimate + max_tokens); 0 for a cache hit. */
  tokens: number;
  /** Holds one concurrent-stream slot. */
  stream: boolean;
  createdAt: number;
  /** After this instant an unsettled reservation is treated as leaked and released. */
  expiresAt: number;
  /** Start of each window the reservation was counted in (settlement adjusts only those still current). */
  windows: Record<WindowKind, number>;
}

export interface QuotaState {
  requests: WindowCounter;
  tokensMinute: WindowCounter;
  tokensDay: WindowCounter;
  tokensMonth: WindowCounter;
  /** Streams currently open. */
  streams: number;
  reservations: Record<string, Reservation>;
  /**
   * Reservations released by expiry (id -> expiry time). A holder that was only slow (not dead) may
   * still settle: its charge is then applied to the current windows and its usage recorded.
   */
  expired?: Record<string, number>;
}

export type QuotaDimension = "requests" | "tokens_minute" | "tokens_day" | "tokens_month" | "concurrency";

/** Remaining / reset per limited dimension, for response headers. */
export interface QuotaSnapshot {
  now: number;
  dimensions: Array<{
    dimension: QuotaDimension;
    limit: number;
    remaining: number;
    /** Milliseconds until the window resets (0 for concurrency). */
    resetMs: number;
    /** Window length in seconds (0 for concurrency). */
    windowSeconds: number;
  }>;
}

export type ReserveResult =
  | { ok: true; reservation: Reservation; snapshot: QuotaSnapshot }
  | {
      ok: false;
      /** "exhausted": wait and retry; "too_large": can never fit the limit (400, not 429). */
      kind: "exhausted" | "too_large";
      dimension: QuotaDimension;
      limit: number;
      requested: number;
      remaining: number;
      retryAfterMs: number;
      snapshot: QuotaSnapshot;
    };

export interface SettleResult {
  found: boolean;
  /** Settled after the reservation had expired (charged to the current windows). */
  late?: boolean;
  reserved: number;
  charged: number;
  refunded: number;
  snapshot: QuotaSnapshot;
}
