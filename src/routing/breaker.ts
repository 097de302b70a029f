/**
 * Circuit breaker per backend: closed -> (failureThreshold consecutive failures) -> open ->
 * (openMs elapsed) -> half_open, where exactly one probe request passes: success closes the breaker,
 * failure opens it again for another openMs.
 */
import type { Breaker, RoutingOptions } from "./types.js";

export function newBreaker(): Breaker {
  return { state: "closed", failures: 0, openedAt: 0, probing: false };
}

/** Would a request be let through now? (no side effects; see `acquire`) */
export function breakerAllows(b: Breaker, opts: RoutingOptions, now: number): boolean {
  if (b.state === "closed") return true;
  if (b.state === "open") return now - b.openedAt >= opts.openMs;
  return !b.probing;
}

/** Take the right to send one request; moves open -> half_open and claims the probe. */
export function acquire(b: Breaker, opts: RoutingOptions, now: number): boolean {
  if (!breakerAllows(b, opts, now)) return false;
  if (b.state === "open") b.state = "half_open";
  if (b.state === "half_open") b.probing = true;
  return true;
}

export function recordSuccess(b: Breaker): void {
  b.state = "closed";
  b.failures = 0;
  b.probing = false;
}

export function recordFailure(b: Breaker, opts: RoutingOptions, now: number): void {
  b.probing = false;
  if (b.state === "half_open") {
    b.state = "open";
    b.openedAt = now;
    return;
  }
  b.failures += 1;
  if (b.state === "closed" && b.failures >= opts.failureThreshold) {
    b.state = "open";
    b.openedAt = now;
  }
}
