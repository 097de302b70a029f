import { describe, expect, it } from "vitest";
import {
  emptyState,
  estimatePromptTokens,
  expireReservations,
  formatDuration,
  nextExpiry,
  type QuotaLimits,
  rateLimitHeaders,
  reserve,
  retryAfterSeconds,
  settle,
  snapshot,
  windowEnd,
  windowSeconds,
  windowStart,
} from "../../../src/quota/index.js";

const T0 = Date.UTC(2025, 5, 15, 12, 30, 10, 500); // 2025-06-15 12:30:10.500 UTC

describe("quota windows", () => {
  it("align to UTC minute / day / month", () => {
    expect(windowStart("minute", T0)).toBe(Date.UTC(2025, 5, 15, 12, 30));
    expect(windowEnd("minute", T0) - T0).toBe(49_500);
    expect(windowStart("day", T0)).toBe(Date.UTC(2025, 5, 15));
    expect(windowEnd("month", T0)).toBe(Date.UTC(2025, 6, 1));
    expect(windowSeconds("month", Date.UTC(2025, 1, 3))).toBe(28 * 86400);
    expect(windowEnd("month", Date.UTC(2025, 11, 31))).toBe(Date.UTC(2026, 0, 1));
  });
});

describe("reserve / settle", () => {
  const limits: QuotaLimits = {
    requestsPerMinute: 3,
    tokensPerMinute: 1000,
    tokensPerDay: 5000,
    maxConcurrentStreams: 2,
  };

  it("reserves, refunds the unused part and frees the stream slot", () => {
    const s = emptyState(T0);
    const r = reserve(s, limits, { id: "a", tokens: 600, stream: true, ttlMs: 60_000 }, T0);
    expect(r.ok).toBe(true);
    expect(s.tokensMinute.used).toBe(600);
    expect(s.streams).toBe(1);
    const st = settle(s, limits, { id: "a", charge: 150 }, T0 + 10);
    expect(st).toMatchObject({ found: true, reserved: 600, charged: 150, refunded: 450 });
    expect(s.tokensMinute.used).toBe(150);
    expect(s.tokensDay.used).toBe(150);
    expect(s.streams).toBe(0);
    // idempotent
    expect(settle(s, limits, { id: "a", charge: 999 }, T0 + 20).found).toBe(false);
    expect(s.tokensMinute.used).toBe(150);
  });

  it("refuses with the blocking dimension and a Retry-After to the window end", () => {
    const s = emptyState(T0);
    expect(reserve(s, limits, { id: "a", tokens: 700, stream: false, ttlMs: 1 }, T0).ok).toBe(true);
    const r = reserve(s, limits, { id: "b", tokens: 400, stream: false, ttlMs: 1 }, T0);
    expect(r).toMatchObject({ ok: false, kind: "exhausted", dimension: "tokens_minute", remaining: 300 });
    if (!r.ok) expect(r.retryAfterMs).toBe(49_500);
    expect(s.requests.used).toBe(1); // a refusal charges nothing
    expect(s.tokensMinute.used).toBe(700);
  });

  it("too-large requests are distinguished from exhausted ones", () => {
    const s = emptyState(T0);
    expect(reserve(s, limits, { id: "a", tokens: 1001, stream: false, ttlMs: 1 }, T0)).toMatchObject({
      ok: false,
      kind: "too_large",
      dimension: "tokens_minute",
    });
  });

  it("limits requests per minute and concurrent streams", () => {
    const s = emptyState(T0);
    expect(reserve(s, limits, { id: "a", tokens: 1, stream: true, ttlMs: 1 }, T0).ok).toBe(true);
    expect(reserve(s, limits, { id: "b", tokens: 1, stream: true, ttlMs: 1 }, T0).ok).toBe(true);
    expect(reserve(s, limits, { id: "c", tokens: 1, stream: true, ttlMs: 1 }, T0)).toMatchObject({
      dimension: "concurrency",
    });
    expect(reserve(s, limits, { id: "c", tokens: 1, stream: false, ttlMs: 1 }, T0).ok).toBe(true);
    expect(reserve(s, limits, { id: "d", tokens: 1, stream: false, ttlMs: 1 }, T0)).toMatchObject({
      dimension: "requests",
    });
    // the next minute opens the request window again
    expect(reserve(s, limits, { id: "d", tokens: 1, stream: false, ttlMs: 1 }, T0 + 60_000).ok).toBe(true);
  });

  it("refundRequest gives the request back; settling after the window rolled leaves the new window alone", () => {
    const s = emptyState(T0);
    reserve(s, limits, { id: "a", tokens: 500, stream: false, ttlMs: 1 }, T0);
    settle(s, limits, { id: "a", charge: 0, refundRequest: true }, T0);
    expect(s.requests.used).toBe(0);
    reserve(s, limits, { id: "b", tokens: 500, stream: false, ttlMs: 1 }, T0);
    const next = T0 + 60_000;
    reserve(s, limits, { id: "c", tokens: 200, stream: false, ttlMs: 1 }, next);
    settle(s, limits, { id: "b", charge: 100 }, next);
    expect(s.tokensMinute.used).toBe(200); // b belonged to the old minute
    expect(s.tokensDay.used).toBe(300); // same day: b settled at 100, c reserved 200
  });

  it("expires leaked reservations and reports the next expiry", () => {
    const s = emptyState(T0);
    reserve(s, limits, { id: "a", tokens: 100, stream: true, ttlMs: 1000 }, T0);
    reserve(s, limits, { id: "b", tokens: 100, stream: true, ttlMs: 5000 }, T0);
    expect(nextExpiry(s)).toBe(T0 + 1000);
    const gone = expireReservations(s, limits, T0 + 1000);
    expect(gone.map((r) => r.id)).toEqual(["a"]);
    expect(s.streams).toBe(1);
    expect(s.tokensMinute.used).toBe(100);
    expect(nextExpiry(s)).toBe(T0 + 5000);
  });

  it("random interleavings never exceed a limit and end with used == exact settled total", () => {
    let seed = 12345;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const lim: QuotaLimits = { tokensPerMinute: 10_000, tokensPerDay: 40_000, maxConcurrentStreams: 5 };
    const s = emptyState(T0);
    const open = new Map<string, number>();
    let settledTotal = 0;
    for (let i = 0; i < 2000; i++) {
      if (open.size > 0 && rnd() < 0.5) {
        const [id, reserved] = [...open.entries()][Math.floor(rnd() * open.size)];
        const actual = Math.floor(rnd() * (reserved + 1)); // usage never above the reservation
        settle(s, lim, { id, charge: actual }, T0);
        open.delete(id);
        settledTotal += actual;
      } else {
        const tokens = 1 + Math.floor(rnd() * 3000);
        const r = reserve(s, lim, { id: `r${i}`, tokens, stream: rnd() < 0.5, ttlMs: 1e9 }, T0);
        if (r.ok) open.set(`r${i}`, tokens);
      }
      const outstanding = [...open.values()].reduce((a, b) => a + b, 0);
      expect(s.tokensMinute.used).toBe(settledTotal + outstanding);
      expect(s.tokensMinute.used).toBeLessThanOrEqual(10_000);
      expect(s.streams).toBeLessThanOrEqual(5);
    }
  });
});

describe("headers", () => {
  it("formats durations like OpenAI", () => {
    expect(formatDuration(12)).toBe("12ms");
    expect(formatDuration(1000)).toBe("1s");
    expect(formatDuration(360_000)).toBe("6m0s");
    expect(formatDuration(59_680)).toBe("59.68s");
    expect(formatDuration(3_723_500)).toBe("1h2m3.5s");
    expect(retryAfterSeconds(0)).toBe("1");
    expect(retryAfterSeconds(49_500)).toBe("50");
  });

  it("emits x-ratelimit-* and the IETF RateLimit / RateLimit-Policy fields", () => {
    const lim: QuotaLimits = { requestsPerMinute: 60, tokensPerMinute: 1000, tokensPerMonth: 1_000_000 };
    const s = emptyState(T0);
    reserve(s, lim, { id: "a", tokens: 250, stream: false, ttlMs: 1 }, T0);
    const h = rateLimitHeaders(snapshot(s, lim, T0));
    expect(h["x-ratelimit-limit-requests"]).toBe("60");
    expect(h["x-ratelimit-remaining-requests"]).toBe("59");
    expect(h["x-ratelimit-reset-requests"]).toBe("49.5s");
    expect(h["x-ratelimit-remaining-tokens"]).toBe("750");
    expect(h["RateLimit-Policy"]).toBe(
      `"rpm";q=60;w=60, "tpm";q=1000;w=60, "tpmo";q=1000000;w=${30 * 86400}`,
    );
    expect(h.RateLimit).toMatch(/^"rpm";r=59;t=50, "tpm";r=750;t=50, "tpmo";r=999750;t=\d+$/);
  });

  it("estimates an upper bound of prompt tokens from UTF-8 bytes", () => {
    expect(estimatePromptTokens(["héllo"], 1)).toBe(6 + 16 + 32);
  });
});

describe("late settlement", () => {
  it("a reservation settled after it expired is charged to the current windows, once", () => {
    const lim: QuotaLimits = { tokensPerMinute: 1000, maxConcurrentStreams: 1 };
    const s = emptyState(T0);
    reserve(s, lim, { id: "slow", tokens: 300, stream: true, ttlMs: 10 }, T0);
    expireReservations(s, lim, T0 + 10);
    expect(s.tokensMinute.used).toBe(0);
    expect(s.streams).toBe(0);
    const late = settle(s, lim, { id: "slow", charge: 120 }, T0 + 20);
    expect(late).toMatchObject({ found: true, late: true, charged: 120 });
    expect(s.tokensMinute.used).toBe(120);
    expect(settle(s, lim, { id: "slow", charge: 120 }, T0 + 30).found).toBe(false);
    expect(s.tokensMinute.used).toBe(120);
  });
});
