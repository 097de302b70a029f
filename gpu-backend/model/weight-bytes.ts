/**
 * Byte-level helpers that turn on-disk tensor bytes into Weights and back: dtype conversion,
 * transposition (Llama 4 fused experts are stored (in,out)), row permutation (llama.cpp's q/k
 * permutation), and the GGUF Q8_0/Q4_0 block interleave vs. our split data/scales layout.
 */
import type { Weight } from "../device/device.js";
import { bf16ArrayToF32, dequantize, f16ArrayToF32, f32ToBf16Array, QK, u16View } from "../device/f16.js";

/** Element bytes of a float dtype (quantized dtypes have no per-element size). */
export function floatElemBytes(dtype: Weight["dtype"]): number {
  if (dtype === "f32") return 4;
  if (dtype === "f16" || dtype === "bf16") return 2;
  throw new Error(`${dtype} has no element size`);
}

/** Bytes per row of element data, and of scales, for a weight row of `cols` elements. */
export function rowBytes(dtype: Weight["dtype"], cols: number): { data: number; scales: number } {
  switch (dtype) {
    case "q8":
      return { data: cols, scales: (cols / QK) * 2 };
    case "q4":
      return { data: cols / 2, scales: (cols / QK) * 2 };
    default:
      return { data: cols * floatElemBytes(dtype), scales: 0 };
  }
}

/** Copy into a fresh, exactly-sized buffer (so views never pin a larger read buffer). */
function own(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice();
}

/** A vector (norm weight) as an f32 Weight with rows = 1. */
export function vectorWeight(dtype: "f32" | "f16" | "bf16", bytes: Uint8Array): Weight {
  if (dtype === "f32") return { dtype: "f32", rows: 1, cols: bytes.length / 4, data: own(bytes) };
  const u = u16View(bytes);
  const f = dtype === "f16" ? f16ArrayToF32(u) : bf16ArrayToF32(u);
  return { dtype: "f32", rows: 1, cols: f.length, data: new Uint8Array(f.buffer) };
}

/** Transpose a row-major [rows, cols] float matrix (element size 2 or 4) to [cols, rows]. */
export function transposeBytes(src: Uint8Array, rows: number, cols: number, elem: number): Uint8Array {
  const out = new Uint8Array(rows * cols * elem);
  if (elem === 2) {
    const s = u16View(src);
    const d = new Uint16Array(out.buffer);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) d[c * rows + r] = s[r * cols + c];
  } else if (elem === 4) {
    const s = new Uint32Array(src.buffer.slice(src.byteOffset, src.byteOffset + src.byteLength));
    const d = new Uint32Array(out.buffer);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) d[c * rows + r] = s[r * cols + c];
  } else throw new Error(`transpose: element size ${elem}`);
  return out;
}

/** Columns [c0, c0+n) of a row-major [rows, cols] float matrix. */
export function sliceColumns(
  src: Uint8Array,
  rows: number,
  cols: number,
  c0: number,
  n: number,
  elem: number,
) {
  const out = new Uint8Array(rows * n * elem);
  for (let r = 0; r < rows; r++) {
    out.set(src.subarray((r * cols + c0) * elem, (r * cols + c0 + n) * elem), r * n * elem);
  }
  return out;
}

/** Reorder the rows of a weight: out row i = in row perm[i]. Works for every dtype (rows hold whole blocks). */
export function permuteRows(w: Weight, perm: Int32Array): Weight {
  const rb = rowBytes(w.dtype, w.cols);
  const data = new Uint8Array(w.data.length);
  for (let i = 0; i < w.rows; i++)
    data.set(w.data.subarray(perm[i] * rb.data, (perm[i] + 1) * rb.data), i * rb.data);
  let scales: Uint8Array | undefined;
  if (w.scales) {
    const sc = w.scales;
    scales = new Uint8Array(sc.length);
    for (let i = 0; i < w.rows; i++)
      scales.set(sc.subarray(perm[i] * rb.scales, (perm[i] + 1) * rb.scales), i * rb.scales);
  }
  return { ...w, data, scales };
}

/**
 * llama.cpp's convert_hf_to_gguf `permute` for q/k of the llama arch: within each head, rows
 * [first half | second half] (HF rotate_half pairs j, j+d/2) become interleaved (pairs 2j, 2j+1).
 * Returns perm with gguf row i = hf row perm[i].
 */
export function llamaQkPermutation(nHeads: number, headDim: number): Int32Array {
  const perm = new Int32Array(nHeads * headDim);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let j = 0; j < half; j++) {
      for (let t = 0; t < 2; t++) perm[h * headDim + 2 * j + t] = h * headDim + t * half + j;
    }
  }
  return perm;
}

export function invertPermutation(p: Int32Array): Int32Array {
  const inv = new Int32Array(p.length);
  for (let i = 0; i < p.length; i++) inv[p[i]] = i;
  return inv;
}

/** GGUF Q8_0/Q4_0 blocks (d f16, then qs) -> our split {data, scales}. */
export function splitGgmlBlocks(
  bytes: Uint8Array,
  kind: "q8" | "q4",
): { data: Uint8Array; scales: Uint8Array } {
  const qsBytes = kind === "q8" ? 32 : 16;
  const blk = 2 + qsBytes;
  if (bytes.length % blk !== 0)
    throw new Error(`block data length ${bytes.length} is not a multiple of ${blk}`);
  const nb = bytes.length / blk;
  const data = new Uint8Array(nb * qsBytes);
  const scales = new Uint8Array(nb * 2);
  for (let b = 0; b < nb; b++) {
    const o = b * blk;
    scales[2 * b] = bytes[o];
    scales[2 * b + 1] = bytes[o + 1];
    data.set(bytes.subarray(o + 2, o + blk), b * qsBytes);
  }
  return { data, scales };
}

/** Our split {data, scales} -> GGUF Q8_0/Q4_0 blocks. */
export function joinGgmlBlocks(data: Uint8Array, scales: Uint8Array, kind: "q8" | "q4"): Uint8Array {
  const qsBytes = kind === "q8" ? 32 : 16;
  const nb = scales.length / 2;
  if (data.length !== nb * qsBytes)
    throw new Error(`data length ${data.length} != ${nb} blocks x ${qsBytes}`);
  const out = new Uint8Array(nb * (2 + qsBytes));
  for (let b = 0; b < nb; b++) {
    const o = b * (2 + qsBytes);
    out[o] = scales[2 * b];
    out[o + 1] = scales[2 * b + 1];
    out.set(data.subarray(b * qsBytes, (b + 1) * qsBytes), o + 2);
  }
  return out;
}

/** Weight -> bf16 bytes (bf16 passes through untouched; f32 values of f16/bf16 convert exactly). */
export function toBf16Bytes(w: Weight): Uint8Array {
  if (w.dtype === "bf16") return w.data;
  return new Uint8Array(f32ToBf16Array(dequantize(w)).buffer);
}

/** Weight -> f32 bytes. */
export function toF32Bytes(w: Weight): Uint8Array {
  if (w.dtype === "f32") return w.data;
  return new Uint8Array(dequantize(w).buffer);
}
