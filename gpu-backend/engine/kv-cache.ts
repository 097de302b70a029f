import type { KvArray } from "../device/device.js";
import type { ModelConfig } from "../model/types.js";

/**
 * Element type of a KV cache: f32, or f16 (IEEE half, round to nearest even when stored: half
 * the memory and half the bytes each decode step reads; llama.cpp's default too).
 */
export type KvDtype = "f32" | "f16";

export const KV_DTYPES: readonly KvDtype[] = ["f32", "f16"];

export function isKvDtype(s: string): s is KvDtype {
  return (KV_DTYPES as readonly string[]).includes(s);
}

/** Bytes per element of a KV array of this type. */
export function kvElementBytes(dtype: KvDtype): number {
  return dtype === "f16" ? 2 : 4;
}

/** A zeroed KV array of `n` elements. */
export function newKvArray(dtype: KvDtype, n: number): KvArray {
  return dtype === "f16" ? new Uint16Array(n) : new Float32Array(n);
}

/**
 * KV cache of one sequence: per layer [capacity, nKvHeads, headDim] keys and values.
 * Grows by doubling up to the model's context so short requests stay small.
 */
export class KvCache {
  readonly k: KvArray[] = [];
  readonly v: KvArray[] = [];
  private cap = 0;
  /** Tokens whose K/V are written. */
  length = 0;

  constructor(
    private readonly config: ModelConfig,
    initialCapacity: number,
    readonly dtype: KvDtype = "f32",
  ) {
    this.reserve(initialCapacity);
  }

  get capacity(): number {
    return this.cap;
  }

  private get rowFloats(): number {
    return this.config.numKvHeads * this.config.headDim;
  }

  /** Make room for `tokens` positions in total. */
  reserve(tokens: number): void {
    if (tokens <= this.cap) return;
    if (tokens > this.config.maxPositions) {
      throw new RangeError(
        `sequence of ${tokens} tokens exceeds the model context of ${this.config.maxPositions}`,
      );
    }
    const cap = Math.min(this.config.maxPositions, Math.max(tokens, this.cap * 2, 64));
    for (let l = 0; l < this.config.numLayers; l++) {
      const k = newKvArray(this.dtype, cap * this.rowFloats);
      const v = newKvArray(this.dtype, cap * this.rowFloats);
      if (this.k[l]) {
        k.set(this.k[l].subarray(0, this.length * this.rowFloats));
        v.set(this.v[l].subarray(0, this.length * this.rowFloats));
      }
      this.k[l] = k;
      this.v[l] = v;
    }
    this.cap = cap;
  }

  bytes(): number {
    return this.cap * this.rowFloats * kvElementBytes(this.dtype) * 2 * this.config.numLayers;
  }
}
