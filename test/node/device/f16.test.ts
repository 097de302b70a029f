import { describe, expect, it } from "vitest";
import {
  bf16BitsToF32,
  dequantize,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  makeWeight,
  quantizeQ4,
  quantizeQ8,
  u16View,
} from "../../../gpu-backend/device/f16.js";
import { randn, rng } from "./helpers.js";

describe("f16", () => {
  it("round-trips every finite half exactly", () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && h & 0x3ff) continue; // NaN payloads
      expect(f32ToF16Bits(f16BitsToF32(h))).toBe(h);
    }
  });

  it("rounds to nearest even, saturates to inf, keeps subnormals", () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even (down)
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(f32ToF16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(-1e9)).toBe(0xfc00);
    expect(f32ToF16Bits(2 ** -24)).toBe(1);
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal -> 0
    expect(f32ToF16Bits(1.5 * 2 ** -24)).toBe(2); // tie -> even
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(Number.NaN)))).toBe(true);
  });
});

describe("bf16", () => {
  it("rounds to nearest even and keeps NaN", () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(bf16BitsToF32(f32ToBf16Bits(1 + 2 ** -8))).toBe(1); // tie -> even (down)
    expect(bf16BitsToF32(f32ToBf16Bits(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6); // tie -> even (up)
    expect(bf16BitsToF32(f32ToBf16Bits(-2.5))).toBe(-2.5);
    expect(f32ToBf16Bits(Number.NaN) & 0x7fc0).toBe(0x7fc0);
    for (let b = 0; b < 0x10000; b += 7) {
      if ((b & 0x7f80) === 0x7f80 && b & 0x7f) continue;
      expect(f32ToBf16Bits(bf16BitsToF32(b))).toBe(b);
    }
  });
});

describe("GGUF block quantizers", () => {
  it("Q8_0 matches the llama.cpp rule on a hand-checked block", () => {
    const x = new Float32Array(32);
    x[0] = 127; // amax = 127 -> d = 1
    x[1] = 62.5; // roundf: ties away from zero (not to even)
    x[2] = -62.5;
    x[3] = 2.5;
    x[4] = 0.49;
    x[5] = -127;
    const { data, scales } = quantizeQ8(x, 1, 32);
    expect(Array.from(u16View(scales))).toEqual([0x3c00]);
    expect(Array.from(new Int8Array(data.buffer).subarray(0, 6))).toEqual([127, 63, -63, 3, 0, -127]);
  });

  it("Q4_0 matches the llama.cpp rule on hand-checked blocks", () => {
    // Block 0: max |x| is -16 (sign kept) -> d = 2, id = 0.5, q = min(15, trunc(x*id + 8.5)).
    // Block 1: first of equal magnitudes wins: max = +4 -> d = -0.5.
    const x = new Float32Array(64);
    x.set([-16, 14, 16, 1, 0.9, -1], 0);
    x[16] = 3; // packs into the high nibble of byte 0
    x.set([4, -4, 1], 32);
    const { data, scales } = quantizeQ4(x, 1, 64);
    expect(Array.from(u16View(scales)).map(f16BitsToF32)).toEqual([2, -0.5]);
    const q = (b: number, j: number) => (j < 16 ? data[b * 16 + j] & 15 : data[b * 16 + j - 16] >> 4);
    expect([0, 1, 2, 3, 4, 5, 6, 16].map((j) => q(0, j))).toEqual([0, 15, 15, 9, 8, 8, 8, 10]);
    expect([0, 1, 2, 3].map((j) => q(1, j))).toEqual([0, 15, 6, 8]);
  });

  it("round-trips within the block error bounds, and all-zero blocks stay zero", () => {
    const r = rng(42);
    const rows = 7;
    const cols = 96;
    const x = randn(rows * cols, r, 2);
    x.fill(0, 0, 32);
    for (const dtype of ["q8", "q4"] as const) {
      const w = makeWeight(x, rows, cols, dtype);
      const back = dequantize(w);
      const d = Array.from(u16View(w.scales!)).map(f16BitsToF32);
      for (let i = 0; i < x.length; i++) {
        const s = Math.abs(d[Math.floor(i / 32)]);
        // q8: half a step plus the f16 rounding of d (<= 2^-11 relative, times |q| <= 127);
        // q4: a full step (the largest positive value may clip from 8 to 7 steps).
        const bound = dtype === "q8" ? 0.5 * s + (127 * s) / 2048 : s * 1.01;
        expect(Math.abs(back[i] - x[i])).toBeLessThanOrEqual(bound);
      }
      expect(Array.from(back.subarray(0, 32)).every((v) => v === 0)).toBe(true);
    }
  });

  it("makeWeight/dequantize are exact for f32 and round-trip f16/bf16 values", () => {
    const r = rng(1);
    const x = randn(3 * 5, r);
    expect(Array.from(dequantize(makeWeight(x, 3, 5, "f32")))).toEqual(Array.from(x));
    const h = dequantize(makeWeight(x, 3, 5, "f16"));
    expect(Array.from(dequantize(makeWeight(h, 3, 5, "f16")))).toEqual(Array.from(h));
    const b = dequantize(makeWeight(x, 3, 5, "bf16"));
    expect(Array.from(dequantize(makeWeight(b, 3, 5, "bf16")))).toEqual(Array.from(b));
  });
});
