/**
 * Fixed quota windows, aligned to UTC so every edge location and the Durable Object agree on them:
 * a minute window starts on the minute, a day window at 00:00 UTC, a month window on the 1st 00:00 UTC.
 * Fixed windows keep the arithmetic exact and the reset time honest (it is the window's end).
 */
export type WindowKind = "minute" | "day" | "month";

export function windowStart(kind: WindowKind, now: number): number {
  if (kind === "minute") return now - (((now % 60_000) + 60_000) % 60_000);
  const d = new Date(now);
  if (kind === "day") return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

export function windowEnd(kind: WindowKind, now: number): number {
  if (kind === "minute") return windowStart("minute", now) + 60_000;
  const d = new Date(now);
  if (kind === "day") return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** Window length in whole seconds (a month's length depends on the month). */
export function windowSeconds(kind: WindowKind, now: number): number {
  return Math.round((windowEnd(kind, now) - windowStart(kind, now)) / 1000);
}
