/**
 * Half-precision and block-quantization helpers (pure TypeScript, no device needed).
 *
 * - f16 <-> f32 and bf16 <-> f32, round-to-nearest-even (what F16C / torch / numpy do).
 * - GGUF Q8_0 / Q4_0 quantizers bit-exact with llama.cpp's reference quantizers
 *   (quantize_row_q8_0_ref / quantize_row_q4_0_ref), with the scales split into their own f16
 *   array as described in device.ts.
 * - Dequantization of any Weight to f32 (exact: every q*d product fits in an f32 mantissa).
 */
import type { Weight, WeightDType } from "./device.js";

export const QK = 32;

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** f32 -> IEEE half bits, round-to-nearest-even; overflow -> inf, NaN kept (quiet). */
export function f32ToF16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Result is subnormal (or zero): value = full * 2^(exp-150), f16 subnormal unit = 2^-24.
    const shift = 14 - e;
    if (shift > 24) return sign;
    const full = mant | 0x800000;
    let m = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && m & 1)) m++;
    return sign | m; // m == 0x400 is the smallest normal: still the right bit pattern
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent (and overflows to inf) as it should.
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return h;
}

let f16Table: Float32Array | null = null;

function buildF16Table(): Float32Array {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = sign * m * 2 ** -24;
    else if (e === 31) t[h] = m ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else t[h] = sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
}

/** IEEE half bits -> number (exact). */
export function f16BitsToF32(h: number): number {
  if (f16Table === null) f16Table = buildF16Table();
  return f16Table[h & 0xffff];
}

/** f32 -> bfloat16 bits, round-to-nearest-even; NaN -> quiet NaN. */
export function f32ToBf16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) & 0x8000) | 0x7fc0;
  return Math.floor((x + 0x7fff + ((x >>> 16) & 1)) / 65536) & 0xffff;
}

/** bfloat16 bits -> number (exact). */
export function bf16BitsToF32(b: number): number {
  u32Scratch[0] = (b & 0xffff) << 16;
  return f32Scratch[0];
}

/** Little-endian u16 view of bytes (copies only when the offset is odd). */
export function u16View(bytes: Uint8Array): Uint16Array {
  if (bytes.byteOffset % 2 === 0)
    return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 1);
  return new Uint16Array(bytes.slice().buffer, 0, bytes.byteLength >>> 1);
}

/** f32 view of bytes (copies only when the offset is not 4-aligned). */
export function f32View(bytes: Uint8Array): Float32Array {
  if (bytes.byteOffset % 4 === 0)
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  return new Float32Array(bytes.slice().buffer, 0, bytes.byteLength >>> 2);
}

export function f32ToF16Array(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]);
  return out;
}

export function f16ArrayToF32(src: Uint16Array): Float32Array {
  if (f16Table === null) f16Table = buildF16Table();
  const t = f16Table;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return out;
}

export function f32ToBf16Array(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToBf16Bits(src[i]);
  return out;
}

export function bf16ArrayToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return out;
}

export interface QuantizedBlocks {
  /** q8: int8 values stored as bytes; q4: packed nibbles (see device.ts). */
  data: Uint8Array;
  /** f16 scale bits as little-endian bytes, one per 32 elements. */
  scales: Uint8Array;
}

function checkBlocks(src: ArrayLike<number>, rows: number, cols: number): void {
  if (cols % QK !== 0) throw new Error(`quantize: cols ${cols} is not a multiple of ${QK}`);
  if (src.length < rows * cols) throw new Error(`quantize: source has ${src.length} < ${rows * cols} values`);
}

/** GGUF Q8_0: d = amax/127, q = roundf(x/d) (ties away from zero); all arithmetic in f32 as in C. */
export function quantizeQ8(src: ArrayLike<number>, rows: number, cols: number): QuantizedBlocks {
  checkBlocks(src, rows, cols);
  const nb = (rows * cols) / QK;
  const data = new Uint8Array(rows * cols);
  const q = new Int8Array(data.buffer);
  const scales = new Uint16Array(nb);
  const fr = Math.fround;
  for (let b = 0; b < nb; b++) {
    const base = b * QK;
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(fr(src[base + j])));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    scales[b] = f32ToF16Bits(d);
    for (let j = 0; j < QK; j++) {
      const x0 = fr(fr(src[base + j]) * id);
      q[base + j] = Math.sign(x0) * Math.round(Math.abs(x0));
    }
  }
  return { data, scales: new Uint8Array(scales.buffer) };
}

/**
 * GGUF Q4_0: `max` = the value of largest magnitude (first one wins, sign kept), d = max / -8,
 * q = min(15, trunc(x/d + 8.5)); byte j of a block = q[j] | q[j+16] << 4.
 */
export function quantizeQ4(src: ArrayLike<number>, rows: number, cols: number): QuantizedBlocks {
  checkBlocks(src, rows, cols);
  const nb = (rows * cols) / QK;
  const data = new Uint8Array((rows * cols) / 2);
  const scales = new Uint16Array(nb);
  const fr = Math.fround;
  for (let b = 0; b < nb; b++) {
    const base = b * QK;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = fr(src[base + j]);
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    scales[b] = f32ToF16Bits(d);
    for (let j = 0; j < QK / 2; j++) {
      const x0 = fr(fr(src[base + j]) * id);
      const x1 = fr(fr(src[base + j + QK / 2]) * id);
      const q0 = Math.min(15, Math.trunc(fr(x0 + 8.5)));
      const q1 = Math.min(15, Math.trunc(fr(x1 + 8.5)));
      data[b * (QK / 2) + j] = q0 | (q1 << 4);
    }
  }
  return { data, scales: new Uint8Array(scales.buffer) };
}

/** Build a Weight of the given dtype from f32 values (row-major [rows, cols]). */
export function makeWeight(src: ArrayLike<number>, rows: number, cols: number, dtype: WeightDType): Weight {
  switch (dtype) {
    case "f32":
      return { dtype, rows, cols, data: new Uint8Array(Float32Array.from(src).buffer) };
    case "f16":
      return { dtype, rows, cols, data: new Uint8Array(f32ToF16Array(src).buffer) };
    case "bf16":
      return { dtype, rows, cols, data: new Uint8Array(f32ToBf16Array(src).buffer) };
    case "q8": {
      const { data, scales } = quantizeQ8(src, rows, cols);
      return { dtype, rows, cols, data, scales };
    }
    case "q4": {
      const { data, scales } = quantizeQ4(src, rows, cols);
      return { dtype, rows, cols, data, scales };
    }
  }
}

/** Bytes of the element data of a weight of this shape (scales excluded). */
export function weightDataBytes(dtype: WeightDType, rows: number, cols: number): number {
  const n = rows * cols;
  switch (dtype) {
    case "f32":
      return n * 4;
    case "f16":
    case "bf16":
      return n * 2;
    case "q8":
      return n;
    case "q4":
      return n / 2;
  }
}

/** Dequantize a whole Weight to f32 [rows, cols] (exact for every dtype). */
export function dequantize(w: Weight): Float32Array {
  const n = w.rows * w.cols;
  switch (w.dtype) {
    case "f32":
      return f32View(w.data).slice(0, n);
    case "f16":
      return f16ArrayToF32(u16View(w.data).subarray(0, n));
    case "bf16":
      return bf16ArrayToF32(u16View(w.data).subarray(0, n));
    case "q8":
    case "q4": {
      if (!w.scales) throw new Error(`dequantize: ${w.dtype} weight without scales`);
      const d = f16ArrayToF32(u16View(w.scales));
      const out = new Float32Array(n);
      if (w.dtype === "q8") {
        const q = new Int8Array(w.data.buffer, w.data.byteOffset, n);
        for (let i = 0; i < n; i++) out[i] = q[i] * d[(i / QK) | 0];
      } else {
        for (let b = 0; b < n / QK; b++) {
          const s = d[b];
          for (let j = 0; j < QK / 2; j++) {
            const byte = w.data[b * (QK / 2) + j];
            out[b * QK + j] = ((byte & 0x0f) - 8) * s;
            out[b * QK + j + QK / 2] = ((byte >>> 4) - 8) * s;
          }
        }
      }
      return out;
    }
  }
}
