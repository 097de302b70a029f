import { describe, expect, it } from "vitest";
import { GuessGate } from "../../../gpu-backend/experts/guess-gate.js";

/** Deterministic pseudo-random generator (tests must not depend on Math.random). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("GuessGate", () => {
  it("reads every guess until half its history is known, and guesses of unknown confidence always", () => {
    const g = new GuessGate(0.9, 8, 64);
    for (let i = 0; i < 31; i++) g.record(0, false);
    expect(g.minConfidence).toBe(Number.NEGATIVE_INFINITY);
    expect(g.worthReading(-5)).toBe(true);
    g.record(0, false);
    expect(g.minConfidence).toBeGreaterThan(0); // every guess so far was wrong
    expect(g.worthReading(0)).toBe(false);
    expect(g.worthReading(undefined)).toBe(true);
  });

  it("finds where accuracy crosses the target", () => {
    // A guess of confidence c (on whatever scale) is right with probability c.
    const rnd = lcg(7);
    const g = new GuessGate(0.9, 32, 256);
    for (let i = 0; i < 2000; i++) {
      const c = rnd();
      g.record(c * 5 - 2, rnd() < c);
    }
    // The 32 guesses around the threshold span ~1/8 of the range and were right >= 90% of the
    // time: the threshold lies near c = 0.9 (noise allowing).
    const t = (g.minConfidence + 2) / 5;
    expect(t).toBeGreaterThan(0.7);
    expect(t).toBeLessThan(0.95);
    expect(g.worthReading(0.97 * 5 - 2)).toBe(true);
    expect(g.worthReading(0.5 * 5 - 2)).toBe(false);
  });

  it("follows the newest outcomes", () => {
    const g = new GuessGate(0.9, 16, 128);
    for (let i = 0; i < 256; i++) g.record(i % 10, false);
    expect(g.worthReading(9)).toBe(false);
    for (let i = 0; i < 256; i++) g.record(i % 10, true);
    expect(g.minConfidence).toBe(0);
    expect(g.worthReading(0)).toBe(true);
  });
});
