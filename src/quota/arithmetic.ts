import type {
  QuotaDimension,
  QuotaLimits,
  QuotaSnapshot,
  QuotaState,
  Reservation,
  ReserveResult,
  SettleResult,
  WindowCounter,
} from "./types.js";
import { type WindowKind, windowEnd, windowSeconds, windowStart } from "./windows.js";

/**
 * Quota arithmetic, pure and synchronous. The Durable Object calls these on its in-memory state
 * inside one method without awaiting, which makes every reserve / settle atomic.
 * Invariant: for every window, used = settled usage + outstanding reservations admitted in that
 * window. Admission requires used + request <= limit, so as long as each reservation is an upper
 * bound of what the request can use, the settled total never exceeds any limit.
 */

export function emptyState(now: number): QuotaState {
  return {
    requests: { start: windowStart("minute", now), used: 0 },
    tokensMinute: { start: windowStart("minute", now), used: 0 },
    tokensDay: { start: windowStart("day", now), used: 0 },
    tokensMonth: { start: windowStart("month", now), used: 0 },
    streams: 0,
    reservations: {},
  };
}

function roll(counter: WindowCounter, kind: WindowKind, now: number): void {
  const start = windowStart(kind, now);
  if (counter.start !== start) {
    counter.start = start;
    counter.used = 0;
  }
}

/** Move every counter into the current window (old windows' usage no longer limits anything). */
export function rollWindows(state: QuotaState, now: number): void {
  roll(state.requests, "minute", now);
  roll(state.tokensMinute, "minute", now);
  roll(state.tokensDay, "day", now);
  roll(state.tokensMonth, "month", now);
}

const TOKEN_DIMS: Array<{
  dim: QuotaDimension;
  kind: WindowKind;
  key: keyof QuotaLimits;
  counter: "tokensMinute" | "tokensDay" | "tokensMonth";
}> = [
  { dim: "tokens_minute", kind: "minute", key: "tokensPerMinute", counter: "tokensMinute" },
  { dim: "tokens_day", kind: "day", key: "tokensPerDay", counter: "tokensDay" },
  { dim: "tokens_month", kind: "month", key: "tokensPerMonth", counter: "tokensMonth" },
];

export function snapshot(state: QuotaState, limits: QuotaLimits, now: number): QuotaSnapshot {
  rollWindows(state, now);
  const dims: QuotaSnapshot["dimensions"] = [];
  if (limits.requestsPerMinute !== undefined) {
    dims.push({
      dimension: "requests",
      limit: limits.requestsPerMinute,
      remaining: Math.max(0, limits.requestsPerMinute - state.requests.used),
      resetMs: windowEnd("minute", now) - now,
      windowSeconds: 60,
    });
  }
  for (const t of TOKEN_DIMS) {
    const limit = limits[t.key];
    if (limit === undefined) continue;
    dims.push({
      dimension: t.dim,
      limit,
      remaining: Math.max(0, limit - state[t.counter].used),
      resetMs: windowEnd(t.kind, now) - now,
      windowSeconds: windowSeconds(t.kind, now),
    });
  }
  if (limits.maxConcurrentStreams !== undefined) {
    dims.push({
      dimension: "concurrency",
      limit: limits.maxConcurrentStreams,
      remaining: Math.max(0, limits.maxConcurrentStreams - state.streams),
      resetMs: 0,
      windowSeconds: 0,
    });
  }
  return { now, dimensions: dims };
}

export interface ReserveInput {
  id: string;
  tokens: number;
  stream: boolean;
  /** How long the reservation may stay open before it is considered leaked. */
  ttlMs: number;
}

/** Retry hint when only concurrency blocks: a slot frees when some stream ends; we cannot know when. */
export const CONCURRENCY_RETRY_MS = 1000;

/** Admit or refuse. On success the state holds the reservation in every window. Mutates `state`. */
export function reserve(
  state: QuotaState,
  limits: QuotaLimits,
  input: ReserveInput,
  now: number,
): ReserveResult {
  rollWindows(state, now);
  const tokens = Math.max(0, Math.ceil(input.tokens));
  const refuse = (
    kind: "exhausted" | "too_large",
    dimension: QuotaDimension,
    limit: number,
    requested: number,
    remaining: number,
    retryAfterMs: number,
  ): ReserveResult => ({
    ok: false,
    kind,
    dimension,
    limit,
    requested,
    remaining,
    retryAfterMs,
    snapshot: snapshot(state, limits, now),
  });

  // A request larger than a whole window's limit can never pass: say so instead of "retry later".
  for (const t of TOKEN_DIMS) {
    const limit = limits[t.key];
    if (limit !== undefined && tokens > limit) return refuse("too_large", t.dim, limit, tokens, limit, 0);
  }
  if (limits.requestsPerMinute !== undefined && state.requests.used + 1 > limits.requestsPerMinute) {
    const rem = Math.max(0, limits.requestsPerMinute - state.requests.used);
    return refuse("exhausted", "requests", limits.requestsPerMinute, 1, rem, windowEnd("minute", now) - now);
  }
  for (const t of TOKEN_DIMS) {
    const limit = limits[t.key];
    const used = state[t.counter].used;
    if (limit !== undefined && used + tokens > limit) {
      return refuse(
        "exhausted",
        t.dim,
        limit,
        tokens,
        Math.max(0, limit - used),
        windowEnd(t.kind, now) - now,
      );
    }
  }
  if (
    input.stream &&
    limits.maxConcurrentStreams !== undefined &&
    state.streams + 1 > limits.maxConcurrentStreams
  ) {
    return refuse("exhausted", "concurrency", limits.maxConcurrentStreams, 1, 0, CONCURRENCY_RETRY_MS);
  }

  state.requests.used += 1;
  state.tokensMinute.used += tokens;
  state.tokensDay.used += tokens;
  state.tokensMonth.used += tokens;
  if (input.stream) state.streams += 1;
  const reservation: Reservation = {
    id: input.id,
    tokens,
    stream: input.stream,
    createdAt: now,
    expiresAt: now + input.ttlMs,
    windows: { minute: state.requests.start, day: state.tokensDay.start, month: state.tokensMonth.start },
  };
  state.reservations[input.id] = reservation;
  return { ok: true, reservation, snapshot: snapshot(state, limits, now) };
}

export interface SettleInput {
  id: string;
  /** Tokens to charge against the quota (exact usage; 0 for cache hits and failures before output). */
  charge: number;
  /** Give the request back too (the request never reached a backend, e.g. no backend available). */
  refundRequest?: boolean;
}

function adjust(counter: WindowCounter, admittedIn: number, delta: number): void {
  // Usage of a window that has already closed limits nothing any more; only adjust the live one.
  if (counter.start === admittedIn) counter.used = Math.max(0, counter.used + delta);
}

/**
 * Replace a reservation by the exact charge: refund (reserved - charge), or add the excess when the
 * estimate was short. Frees the stream slot. Idempotent: a second settle of the same id is a no-op.
 */
export function settle(
  state: QuotaState,
  limits: QuotaLimits,
  input: SettleInput,
  now: number,
): SettleResult {
  rollWindows(state, now);
  const r = state.reservations[input.id];
  if (!r) {
    if (state.expired?.[input.id] === undefined) {
      return { found: false, reserved: 0, charged: 0, refunded: 0, snapshot: snapshot(state, limits, now) };
    }
    // Late settle of an expired reservation: everything was refunded at expiry, so charge it all now.
    delete state.expired[input.id];
    const charge = Math.max(0, Math.ceil(input.charge));
    state.tokensMinute.used += charge;
    state.tokensDay.used += charge;
    state.tokensMonth.used += charge;
    return {
      found: true,
      late: true,
      reserved: 0,
      charged: charge,
      refunded: 0,
      snapshot: snapshot(state, limits, now),
    };
  }
  delete state.reservations[input.id];
  const charge = Math.max(0, Math.ceil(input.charge));
  const delta = charge - r.tokens;
  adjust(state.tokensMinute, r.windows.minute, delta);
  adjust(state.tokensDay, r.windows.day, delta);
  adjust(state.tokensMonth, r.windows.month, delta);
  if (input.refundRequest) adjust(state.requests, r.windows.minute, -1);
  if (r.stream) state.streams = Math.max(0, state.streams - 1);
  return {
    found: true,
    reserved: r.tokens,
    charged: charge,
    refunded: Math.max(0, r.tokens - charge),
    snapshot: snapshot(state, limits, now),
  };
}

/** Release reservations whose holder never settled (a crashed isolate). Returns what was released. */
export function expireReservations(state: QuotaState, limits: QuotaLimits, now: number): Reservation[] {
  const expired = Object.values(state.reservations).filter((r) => r.expiresAt <= now);
  for (const r of expired) settle(state, limits, { id: r.id, charge: 0 }, now);
  // Remember them for a day so a slow holder's settle still counts; forget older ones.
  state.expired ??= {};
  for (const [id, at] of Object.entries(state.expired))
    if (now - at > EXPIRED_MEMORY_MS) delete state.expired[id];
  for (const r of expired) state.expired[r.id] = now;
  return expired;
}

export const EXPIRED_MEMORY_MS = 86_400_000;

/** Earliest expiry among open reservations (for the Durable Object's alarm), or null. */
export function nextExpiry(state: QuotaState): number | null {
  let min: number | null = null;
  for (const r of Object.values(state.reservations)) if (min === null || r.expiresAt < min) min = r.expiresAt;
  return min;
}
