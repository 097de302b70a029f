import type { ModelConfig } from "../model/types.js";

/**
 * KV cache of one sequence: per layer [capacity, nKvHeads, headDim] keys and values (f32).
 * Grows by doubling up to the model's context so short requests stay small.
 */
export class KvCache {
  readonly k: Float32Array[] = [];
  readonly v: Float32Array[] = [];
  private cap = 0;
  /** Tokens whose K/V are written. */
  length = 0;

  constructor(
    private readonly config: ModelConfig,
    initialCapacity: number,
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
      const k = new Float32Array(cap * this.rowFloats);
      const v = new Float32Array(cap * this.rowFloats);
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
    return this.cap * this.rowFloats * 4 * 2 * this.config.numLayers;
  }
}
