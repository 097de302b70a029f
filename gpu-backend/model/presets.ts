/**
 * config.json presets for generated models, per family, with the real Hugging Face key names and
 * model_type values (shared/reference/model-formats.md section 1). Token ids (bos/eos/pad) are not
 * here: they come from the generated tokenizer, whose id layout depends on vocab_size.
 *
 *   tiny      tests: a few seconds at most; exercises every structural feature of the family
 *             (Llama 4: NoPE layer 3, chunked attention with chunk 16, llama3 RoPE scaling, qk-norm;
 *             Qwen3: a dense mlp_only layer, head_dim != hidden/heads).
 *   tiny-maverick (llama4) Maverick-like tiny: MoE every other layer, 8 experts, no qk-norm.
 *   default   `npm start`'s model: ~100 MB, generated in seconds.
 *   bench     Scout-like proportions for benchmarks (llama4: ~3.5 GB bf16, 16 experts top-1 + shared).
 *   maverick  (llama4) 128 experts top-1 + shared, MoE every other layer, ~3.3 GB bf16.
 */
import type { Family } from "./types.js";

export type ConfigJson = Record<string, unknown>;

export const PRESET_NAMES = ["tiny", "tiny-maverick", "default", "bench", "maverick"] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export const FAMILIES: readonly Family[] = ["llama4", "mixtral", "qwen3moe"];

const TRANSFORMERS_VERSION = "4.51.0";

/** Scout's released RoPE scaling. */
const LLAMA3_ROPE_SCALING = {
  factor: 8.0,
  high_freq_factor: 4.0,
  low_freq_factor: 1.0,
  original_max_position_embeddings: 8192,
  rope_type: "llama3",
};

interface Size {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  experts: number;
  topK: number;
  /** Routed expert width (and Llama 4 shared expert). */
  expertFfn: number;
  /** Dense FFN width (Llama 4 intermediate_size_mlp, Qwen3 intermediate_size). */
  denseFfn: number;
  maxPos: number;
}

function llama4(s: Size, extra: ConfigJson = {}): ConfigJson {
  return {
    architectures: ["Llama4ForCausalLM"],
    attention_bias: false,
    attention_chunk_size: 8192,
    attention_dropout: 0.0,
    attn_scale: 0.1,
    attn_temperature_tuning: true,
    floor_scale: 8192,
    head_dim: s.headDim,
    hidden_act: "silu",
    hidden_size: s.hidden,
    initializer_range: 0.02,
    interleave_moe_layer_step: 1,
    intermediate_size: s.expertFfn,
    intermediate_size_mlp: s.denseFfn,
    max_position_embeddings: s.maxPos,
    model_type: "llama4_text",
    no_rope_layer_interval: 4,
    num_attention_heads: s.heads,
    num_experts_per_tok: s.topK,
    num_hidden_layers: s.layers,
    num_key_value_heads: s.kvHeads,
    num_local_experts: s.experts,
    output_router_logits: false,
    rms_norm_eps: 1e-5,
    rope_scaling: LLAMA3_ROPE_SCALING,
    rope_theta: 500000.0,
    router_aux_loss_coef: 0.001,
    router_jitter_noise: 0.0,
    tie_word_embeddings: false,
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
    use_qk_norm: true,
    vocab_size: s.vocab,
    ...extra,
  };
}

function mixtral(s: Size, extra: ConfigJson = {}): ConfigJson {
  return {
    architectures: ["MixtralForCausalLM"],
    attention_dropout: 0.0,
    hidden_act: "silu",
    hidden_size: s.hidden,
    initializer_range: 0.02,
    intermediate_size: s.expertFfn,
    max_position_embeddings: s.maxPos,
    model_type: "mixtral",
    num_attention_heads: s.heads,
    num_experts_per_tok: s.topK,
    num_hidden_layers: s.layers,
    num_key_value_heads: s.kvHeads,
    num_local_experts: s.experts,
    output_router_logits: false,
    rms_norm_eps: 1e-5,
    rope_theta: 1000000.0,
    router_aux_loss_coef: 0.02,
    router_jitter_noise: 0.0,
    sliding_window: null,
    tie_word_embeddings: false,
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
    vocab_size: s.vocab,
    ...extra,
  };
}

function qwen3moe(s: Size, extra: ConfigJson = {}): ConfigJson {
  return {
    architectures: ["Qwen3MoeForCausalLM"],
    attention_bias: false,
    attention_dropout: 0.0,
    decoder_sparse_step: 1,
    head_dim: s.headDim,
    hidden_act: "silu",
    hidden_size: s.hidden,
    initializer_range: 0.02,
    intermediate_size: s.denseFfn,
    max_position_embeddings: s.maxPos,
    max_window_layers: s.layers,
    mlp_only_layers: [],
    model_type: "qwen3_moe",
    moe_intermediate_size: s.expertFfn,
    norm_topk_prob: true,
    num_attention_heads: s.heads,
    num_experts: s.experts,
    num_experts_per_tok: s.topK,
    num_hidden_layers: s.layers,
    num_key_value_heads: s.kvHeads,
    output_router_logits: false,
    rms_norm_eps: 1e-6,
    rope_scaling: null,
    rope_theta: 1000000.0,
    router_aux_loss_coef: 0.001,
    sliding_window: null,
    tie_word_embeddings: false,
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
    use_sliding_window: false,
    vocab_size: s.vocab,
    ...extra,
  };
}

const TINY = { vocab: 512, hidden: 64, layers: 4, heads: 4, kvHeads: 2, headDim: 16, maxPos: 4096 };

const PRESETS: Record<Family, Partial<Record<PresetName, () => ConfigJson>>> = {
  llama4: {
    // Layer 3 is NoPE (interval 4); RoPE layers use chunked attention with chunk 16.
    tiny: () =>
      llama4({ ...TINY, experts: 4, topK: 1, expertFfn: 64, denseFfn: 128 }, { attention_chunk_size: 16 }),
    "tiny-maverick": () =>
      llama4(
        { ...TINY, experts: 8, topK: 1, expertFfn: 64, denseFfn: 128 },
        { attention_chunk_size: 16, interleave_moe_layer_step: 2, use_qk_norm: false, rope_scaling: null },
      ),
    default: () =>
      llama4({
        vocab: 4096,
        hidden: 256,
        layers: 8,
        heads: 8,
        kvHeads: 4,
        headDim: 32,
        experts: 16,
        topK: 1,
        expertFfn: 512,
        denseFfn: 1024,
        maxPos: 32768,
      }),
    bench: () =>
      llama4({
        vocab: 8192,
        hidden: 1024,
        layers: 16,
        heads: 16,
        kvHeads: 8,
        headDim: 64,
        experts: 16,
        topK: 1,
        expertFfn: 2048,
        denseFfn: 4096,
        maxPos: 32768,
      }),
    maverick: () =>
      llama4(
        {
          vocab: 8192,
          hidden: 512,
          layers: 16,
          heads: 8,
          kvHeads: 4,
          headDim: 64,
          experts: 128,
          topK: 1,
          expertFfn: 1024,
          denseFfn: 2048,
          maxPos: 32768,
        },
        { interleave_moe_layer_step: 2, use_qk_norm: false, rope_scaling: null },
      ),
  },
  mixtral: {
    tiny: () => mixtral({ ...TINY, experts: 8, topK: 2, expertFfn: 128, denseFfn: 128 }),
    default: () =>
      mixtral({
        vocab: 4096,
        hidden: 256,
        layers: 8,
        heads: 8,
        kvHeads: 4,
        headDim: 32,
        experts: 8,
        topK: 2,
        expertFfn: 1024,
        denseFfn: 1024,
        maxPos: 32768,
      }),
    bench: () =>
      mixtral({
        vocab: 8192,
        hidden: 1024,
        layers: 16,
        heads: 16,
        kvHeads: 8,
        headDim: 64,
        experts: 8,
        topK: 2,
        expertFfn: 3584,
        denseFfn: 3584,
        maxPos: 32768,
      }),
  },
  qwen3moe: {
    // Layer 0 is a dense MLP (mlp_only_layers); head_dim 32 != hidden/heads = 16, as in Qwen3-30B-A3B.
    tiny: () =>
      qwen3moe(
        { ...TINY, headDim: 32, experts: 8, topK: 2, expertFfn: 32, denseFfn: 128 },
        { mlp_only_layers: [0] },
      ),
    default: () =>
      qwen3moe({
        vocab: 4096,
        hidden: 256,
        layers: 8,
        heads: 8,
        kvHeads: 4,
        headDim: 64,
        experts: 32,
        topK: 4,
        expertFfn: 256,
        denseFfn: 1024,
        maxPos: 32768,
      }),
    bench: () =>
      qwen3moe({
        vocab: 8192,
        hidden: 1024,
        layers: 16,
        heads: 16,
        kvHeads: 4,
        headDim: 128,
        experts: 64,
        topK: 8,
        expertFfn: 512,
        denseFfn: 3072,
        maxPos: 32768,
      }),
  },
};

export function presetNames(family: Family): PresetName[] {
  return PRESET_NAMES.filter((p) => PRESETS[family][p] !== undefined);
}

export function isFamily(s: string): s is Family {
  return (FAMILIES as readonly string[]).includes(s);
}

export function isPresetName(s: string): s is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(s);
}

/** A fresh copy of a preset's config.json keys (without token ids). */
export function presetConfig(family: Family, preset: PresetName): ConfigJson {
  const make = PRESETS[family][preset];
  if (!make) {
    throw new Error(
      `preset ${preset} does not exist for ${family}; choose one of ${presetNames(family).join(", ")}`,
    );
  }
  return structuredClone(make());
}
