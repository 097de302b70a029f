import type { Weight } from "../device/device.js";

const f16Table = (() => {
  // All 65536 half values, so a row converts with one lookup per element.
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24;
    else if (exp === 31) t[h] = frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return t;
})();

export function f16ToF32(h: number): number {
  return f16Table[h];
}

/** Copy row `row` of a weight into `out` as f32 (embedding lookups: one row per token). */
export function dequantizeRow(w: Weight, row: number, out: Float32Array): void {
  const cols = w.cols;
  if (row < 0 || row >= w.rows) throw new RangeError(`token id ${row} outside the vocabulary of ${w.rows}`);
  const bytes = w.data;
  switch (w.dtype) {
    case "f32":
      out.set(new Float32Array(bytes.buffer, bytes.byteOffset + row * cols * 4, cols));
      return;
    case "f16": {
      const src = new Uint16Array(bytes.buffer, bytes.byteOffset + row * cols * 2, cols);
      for (let i = 0; i < cols; i++) out[i] = f16Table[src[i]];
      return;
    }
    case "bf16": {
      const src = new Uint16Array(bytes.buffer, bytes.byteOffset + row * cols * 2, cols);
      const u = new Uint32Array(1);
      const f = new Float32Array(u.buffer);
      for (let i = 0; i < cols; i++) {
        u[0] = src[i] << 16;
        out[i] = f[0];
      }
      return;
    }
    case "q8":
    case "q4": {
      const scales = w.scales!;
      const sc = new Uint16Array(scales.buffer, scales.byteOffset + row * (cols / 32) * 2, cols / 32);
      if (w.dtype === "q8") {
        const q = new Int8Array(bytes.buffer, bytes.byteOffset + row * cols, cols);
        for (let i = 0; i < cols; i++) out[i] = q[i] * f16Table[sc[i >> 5]];
      } else {
        const q = new Uint8Array(bytes.buffer, bytes.byteOffset + (row * cols) / 2, cols / 2);
        for (let b = 0; b < cols / 32; b++) {
          const d = f16Table[sc[b]];
          for (let j = 0; j < 16; j++) {
            const byte = q[b * 16 + j];
            out[b * 32 + j] = ((byte & 0x0f) - 8) * d;
            out[b * 32 + j + 16] = ((byte >> 4) - 8) * d;
          }
        }
      }
      return;
    }
  }
}
