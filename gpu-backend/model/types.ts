import type { Weight } from "../device/device.js";

export type Family = "llama4" | "mixtral" | "qwen3moe";

/** One normalized view of the three families' config.json (see shared/reference/model-formats.md). */
export interface ModelConfig {
  family: Family;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  maxPositions: number;
  tieWordEmbeddings: boolean;
  /** Routed experts per MoE layer and how many fire per token. */
  numExperts: number;
  topK: number;
  /** Width of each routed expert (and Llama 4's shared expert). */
  expertFfn: number;
  /** Width of dense (non-MoE) FFN layers. */
  denseFfn: number;
  /** Per layer: true if the FFN is a routed MoE. */
  moeLayers: boolean[];
  /** Llama 4 only: a shared expert beside the routed ones on MoE layers. */
  sharedExpert: boolean;
  routing: "softmax" | "sigmoid";
  /** Renormalise top-k weights (Mixtral: always; Qwen3: norm_topk_prob). */
  normTopK: boolean;
  /** Llama 4 applies the router score to the expert input; the others to the output. */
  scoreOnInput: boolean;
  rope: {
    style: "interleaved" | "neox";
    theta: number;
    /** inverse frequencies, length headDim/2 (llama3 scaling already applied). */
    invFreq: Float32Array;
  };
  /** Per layer: does this layer apply RoPE (Llama 4 NoPE layers: false). */
  ropeLayers: boolean[];
  /** Llama 4: parameter-free L2/RMS norm of q,k after RoPE on RoPE layers. */
  l2QkNorm: boolean;
  /** Qwen3: learned per-head RMSNorm of q,k before RoPE. */
  headQkNorm: boolean;
  /** Llama 4: chunked attention on RoPE layers (0 = off). */
  attentionChunk: number;
  /** Llama 4 NoPE-layer temperature tuning; null = off. */
  attnTemperature: { floorScale: number; attnScale: number } | null;
  slidingWindow: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** The original config.json object. */
  raw: Record<string, unknown>;
}

/** Where an expert's bytes live on disk: what the expert store reads when it pages one in. */
export interface ByteRange {
  file: string;
  offset: number;
  length: number;
}

export interface ExpertWeights {
  gate: Weight;
  up: Weight;
  down: Weight;
}

/**
 * An opened checkpoint (HF folder or GGUF file): the config plus access to weights by our own
 * canonical names, independent of the on-disk naming:
 *   embed [V,H], norm [H], lm_head [V,H] (absent when tied),
 *   l{i}.attn_norm, l{i}.ffn_norm [H], l{i}.q [nH*hd,H], l{i}.k, l{i}.v [nKv*hd,H], l{i}.o [H,nH*hd],
 *   l{i}.q_norm, l{i}.k_norm [hd] (Qwen3), l{i}.router [E,H],
 *   l{i}.shexp.{gate,up,down} (Llama 4), l{i}.mlp.{gate,up,down} (dense layers).
 * Routed experts are separate (expertRanges / loadExpert) so the expert store can page them.
 * Matrices are returned as [out,in] Weights; vectors (norms) as f32 Weights with rows = 1.
 */
export interface Checkpoint {
  readonly path: string;
  readonly config: ModelConfig;
  has(name: string): boolean;
  /** Read and convert one dense tensor. Throws a clear error naming file and tensor. */
  loadDense(name: string): Weight;
  /** Byte ranges holding expert e of layer l (what a positioned read must fetch). */
  expertRanges(layer: number, expert: number): ByteRange[];
  /** Turn bytes read for expertRanges(l, e) (same order) into the expert's three weights. */
  decodeExpert(layer: number, expert: number, bytes: Uint8Array[]): ExpertWeights;
  /** Convenience: read ranges synchronously and decode. */
  loadExpert(layer: number, expert: number): ExpertWeights;
  close(): void;
}
