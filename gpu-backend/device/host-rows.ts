/**
 * The row ops of the Device interface over host arrays, for devices whose contract is host
 * memory anyway (the reference device; the CUDA device, which mirrors host arrays): storing an
 * attention call's new K/V rows, gathering rows and scattering them back.
 */
import type { AttentionArgs, Device, KvArray, RowsOp } from "./device.js";
import { f16ArrayToF32, f32ToF16Bits } from "./f16.js";

/** Stores a.kNew / a.vNew at rows a.pos0.. of the caches (no-op without them). */
export function appendKvRows(a: AttentionArgs): void {
  if (!a.kNew && !a.vNew) return;
  if (!a.kNew || !a.vNew) throw new RangeError("attention: kNew and vNew come together");
  const row = a.nKvHeads * a.headDim;
  const n = a.nTok * row;
  if (a.kNew.length < n || a.vNew.length < n)
    throw new RangeError("attention: kNew/vNew shorter than nTok rows");
  storeRows(a.kCache, a.kNew, n, a.pos0 * row);
  storeRows(a.vCache, a.vNew, n, a.pos0 * row);
}

function storeRows(cache: KvArray, rows: Float32Array, n: number, at: number): void {
  if (cache instanceof Float32Array) {
    cache.set(rows.subarray(0, n), at);
    return;
  }
  for (let i = 0; i < n; i++) cache[at + i] = f32ToF16Bits(rows[i]);
}

/** The first `n` elements of a KV cache array as f32 (a view of an f32 cache, a copy of an f16 one). */
export function kvAsF32(cache: KvArray, n: number): Float32Array {
  return cache instanceof Float32Array ? cache.subarray(0, n) : f16ArrayToF32(cache.subarray(0, n));
}

/** `rows` lists `count` rows of `table`; `dense` (the other side) holds count rows of dim. */
function checkRows(
  rows: Int32Array,
  count: number,
  dim: number,
  table: Float32Array,
  dense: Float32Array,
  what: string,
): void {
  if (rows.length < count) throw new RangeError(`${what}: ${rows.length} rows listed, count ${count}`);
  if (dense.length < count * dim)
    throw new RangeError(`${what}: ${dense.length} elements for ${count} rows of ${dim}`);
  const tableRows = Math.floor(table.length / dim);
  for (let r = 0; r < count; r++) {
    if (rows[r] < 0 || rows[r] >= tableRows) throw new RangeError(`${what}: row ${rows[r]} out of range`);
  }
}

export const gatherRowsHost: RowsOp = (dst, src, rows, count, dim, scales) => {
  checkRows(rows, count, dim, src, dst, "gatherRows");
  for (let r = 0; r < count; r++) {
    const from = src.subarray(rows[r] * dim, (rows[r] + 1) * dim);
    if (!scales) {
      dst.set(from, r * dim);
      continue;
    }
    const g = scales[r];
    for (let i = 0; i < dim; i++) dst[r * dim + i] = from[i] * g;
  }
};

/** scatterAddRows through the device's own addScaled (so its arithmetic is the device's). */
export function scatterAddRowsVia(
  device: Pick<Device, "addScaled">,
  ...[dst, src, rows, count, dim, scales]: Parameters<RowsOp>
): void {
  checkRows(rows, count, dim, dst, src, "scatterAddRows");
  for (let r = 0; r < count; r++) {
    device.addScaled(
      dst.subarray(rows[r] * dim, (rows[r] + 1) * dim),
      src.subarray(r * dim, (r + 1) * dim),
      dim,
      scales ? scales[r] : 1,
    );
  }
}
