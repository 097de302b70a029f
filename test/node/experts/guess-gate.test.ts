import { describe, expect, it } from "vitest";
import { GuessGate } from "../../../gpu-backend/experts/guess-gate.js";
import { mulberry32 } from "../rng.js";

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
    // A guess of confidence c (on whatever scale) is right with probability c; target 0.8. The 32
    // guesses around a threshold span ~1/8 of the range, so noise moves it by a few hundredths
    // (and the lowest window that passes is picked: slightly low on average).
    const found: number[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      const rnd = mulberry32(seed);
      const g = new GuessGate(0.8, 32, 256);
      for (let i = 0; i < 2000; i++) {
        const c = rnd();
        g.record(c * 5 - 2, rnd() < c);
      }
      found.push((g.minConfidence + 2) / 5);
      expect(g.worthReading(0.97 * 5 - 2)).toBe(true);
      expect(g.worthReading(0.4 * 5 - 2)).toBe(false);
    }
    found.sort((a, b) => a - b);
    expect(found[0]).toBeGreaterThan(0.55);
    expect(found[found.length - 1]).toBeLessThan(0.95);
    expect(found[10]).toBeGreaterThan(0.7);
    expect(found[10]).toBeLessThan(0.85);
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
