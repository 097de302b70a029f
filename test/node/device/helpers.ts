/** Shared helpers for the device tests: a seeded RNG and tolerance-aware comparisons. */
import { expect } from "vitest";
import { mulberry32 } from "../rng.js";

/** Seeded uniforms in [0, 1). */
export const rng = mulberry32;

/** Uniform values in [-scale, scale). */
export function randn(n: number, r: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

/** Elementwise |a - b| <= atol + rtol * |b|, reporting the first offender. */
export function expectClose(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  atol: number,
  rtol = 0,
  what = "",
): void {
  expect(a.length, `${what} length`).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    const tol = atol + rtol * Math.abs(b[i]);
    if (!(Math.abs(a[i] - b[i]) <= tol)) {
      expect.fail(`${what}[${i}]: ${a[i]} vs ${b[i]} (|diff| ${Math.abs(a[i] - b[i])} > ${tol})`);
    }
  }
}
