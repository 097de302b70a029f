/**
 * The compute-device interface (ggml-style: a small set of ops). TypeScript decides what runs;
 * each device decides how fast. All activations are f32; weights may be quantized.
 *
 * Weight matrices are row-major [rows = out, cols = in]: y = W x.
 * Quantized layouts match GGUF blocks of 32 along a row, with the scales kept in their own array
 * so a safetensors checkpoint maps onto them without repacking:
 *  - q8: data = int8 [rows*cols]; scales = f16 [rows*cols/32]; value = q * d        (== GGUF Q8_0)
 *  - q4: data = u8 [rows*cols/2], per block of 32: byte j holds element j (low nibble) and
 *        element j+16 (high nibble); scales = f16 [rows*cols/32]; value = (nib - 8) * d (== GGUF Q4_0)
 */
export type WeightDType = "f32" | "f16" | "bf16" | "q8" | "q4";

export interface Weight {
  dtype: WeightDType;
  rows: number;
  cols: number;
  /** Raw element bytes (see layouts above). Device-owned memory when the device allocated it. */
  data: Uint8Array;
  /** f16 scales, one per 32 elements of a row (q8 / q4 only). */
  scales?: Uint8Array;
  /**
   * Set by a device that re-laid the bytes out for its own kernels (upload / adopt): only that
   * device can compute with the weight (the CPU device's int8 dot-product layout for q8/q4).
   */
  packed?: boolean;
}

/** One product of Device.matmulMany: out[n, rows] = x[n, cols] . W^T. */
export interface MatmulJob {
  out: Float32Array;
  x: Float32Array;
  n: number;
  w: Weight;
}

export type RopeStyle = "interleaved" | "neox";

/** A KV cache array: f32, or f16 as IEEE half bits. */
export type KvArray = Float32Array | Uint16Array;

export interface AttentionArgs {
  /** [nTok, nHeads, headDim] queries (already roped / normed / scaled by the caller's choices). */
  q: Float32Array;
  /**
   * KV cache of one sequence: [maxCtx, nKvHeads, headDim] each, f32 or IEEE half bits (an f16
   * cache: half the memory and half the bytes a step reads). Both of one type.
   */
  kCache: KvArray;
  vCache: KvArray;
  /** Output [nTok, nHeads, headDim]. */
  out: Float32Array;
  nTok: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Absolute position of the first query token; keys 0..pos0+nTok-1 are in the cache. */
  pos0: number;
  scale: number;
  /** Chunked local attention (Llama 4): query at p sees keys k with floor(k/c) == floor(p/c). 0 = off. */
  chunkSize: number;
  /** Sliding window (Mistral style): keys with p - k < window. 0 = off. */
  window: number;
  /**
   * This call's keys and values, [nTok, nKvHeads, headDim] each: stored at rows pos0.. of kCache
   * and vCache before attending (one call instead of a copy per sequence and layer), rounded to
   * nearest even for an f16 cache. Both or none.
   */
  kNew?: Float32Array;
  vNew?: Float32Array;
}

/** A row op: `rows` lists `count` row indices, `scales` one factor per listed row (or null). */
export type RowsOp = (
  dst: Float32Array,
  src: Float32Array,
  rows: Int32Array,
  count: number,
  dim: number,
  scales: Float32Array | null,
) => void;

export interface Device {
  readonly name: string;
  /** Threads the device uses for one op. */
  readonly threads: number;
  /** Allocate device memory for a weight of this shape (64-byte aligned) and copy `src` into it. */
  upload(src: Weight): Weight;
  /**
   * Take a weight in host memory the caller hands over (an expert store's slot) for use in place:
   * a device with its own compute layout rewrites the bytes (no copy) and returns the weight to
   * use. Absent: weights are used as they are.
   */
  adopt?(w: Weight): Weight;
  /** out[n, rows] = x[n, cols] . W^T  (n = 1 is a matvec). */
  matmul(out: Float32Array, x: Float32Array, n: number, w: Weight): void;
  /**
   * Weights the next ops read, in order: a device whose threads wait between ops may pull them
   * into its caches meanwhile. A hint only (replaces the previous one); results never change.
   */
  prefetchWhenIdle?(ws: readonly Weight[]): void;
  /**
   * Several independent matmuls at once (q/k/v, gate/up, all experts of a step): one dispatch
   * instead of one per matrix. Results equal matmul()'s, bit for bit. No job's `out` may overlap
   * another job's `out` or `x`.
   */
  matmulMany(jobs: readonly MatmulJob[]): void;
  /** out[i] = x[i] / rms(x row) * weight (weight may be null: parameter-free). Rows of length dim. */
  rmsnorm(
    out: Float32Array,
    x: Float32Array,
    weight: Float32Array | null,
    rows: number,
    dim: number,
    eps: number,
  ): void;
  /** In-place rotary embedding on x [nTok, nHeads, headDim]; positions[t]; invFreq [rotDim/2]. */
  rope(
    x: Float32Array,
    nTok: number,
    nHeads: number,
    headDim: number,
    positions: Int32Array,
    invFreq: Float32Array,
    style: RopeStyle,
  ): void;
  /** Causal grouped-query attention over a sequence's KV cache. */
  attention(args: AttentionArgs): void;
  /** Several sequences' attention (a continuous-batching step) in one dispatch. */
  attentionMany(seqs: readonly AttentionArgs[]): void;
  /** out = silu(gate) * up, elementwise over len. */
  swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, len: number): void;
  /** out += a * scale (scale defaults to 1), elementwise over len. */
  addScaled(out: Float32Array, a: Float32Array, len: number, scale?: number): void;
  /** dst row r = src row rows[r] * scales[r] (scales null: a copy), for r < count; rows of dim. */
  gatherRows: RowsOp;
  /**
   * dst row rows[r] += src row r * scales[r] (null: 1) for r = 0, 1, .. count - 1 in that order,
   * each row exactly as addScaled() adds it (a row listed twice gets both, the first one first).
   */
  scatterAddRows: RowsOp;
  /**
   * Router: logits [nTok, nExperts] -> for each token its top-k expert ids and weights.
   * mode "softmax": softmax over all experts, top-k, renormalise iff `renormalize`.
   * mode "sigmoid": top-k of raw logits, weight = sigmoid(logit) (Llama 4).
   */
  route(
    logits: Float32Array,
    nTok: number,
    nExperts: number,
    k: number,
    mode: "softmax" | "sigmoid",
    renormalize: boolean,
    outIds: Int32Array,
    outWeights: Float32Array,
  ): void;
}
