/**
 * Small synthetic checkpoints in each family's real on-disk layouts, written with our own
 * safetensors writer (independent of the `make` tool). The canonical values are generated first,
 * so tests can compare what the loader returns against what was meant to be stored.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bf16ArrayToF32, f32ToBf16Array } from "../../../gpu-backend/device/f16.js";
import { type TensorToWrite, writeShardedSafetensors } from "../../../gpu-backend/formats/safetensors.js";
import { denseSpecs, EXPERT_PARTS, type ExpertPart } from "../../../gpu-backend/model/canonical.js";
import { parseConfig } from "../../../gpu-backend/model/config.js";
import type { Family, ModelConfig } from "../../../gpu-backend/model/types.js";
import { mulberry32 } from "../rng.js";

export type Variant =
  | "llama4-fused"
  | "llama4-fused-lm" // language_model.model. prefix
  | "llama4-per-expert"
  | "mixtral"
  | "mixtral-fused"
  | "qwen3moe"
  | "qwen3moe-fused";

export const VARIANTS: Variant[] = [
  "llama4-fused",
  "llama4-fused-lm",
  "llama4-per-expert",
  "mixtral",
  "mixtral-fused",
  "qwen3moe",
  "qwen3moe-fused",
];

export function familyOf(v: Variant): Family {
  return v.startsWith("llama4") ? "llama4" : v.startsWith("mixtral") ? "mixtral" : "qwen3moe";
}

export function rawConfig(family: Family): Record<string, unknown> {
  const common = {
    vocab_size: 300,
    hidden_size: 64,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    rms_norm_eps: 1e-5,
    max_position_embeddings: 2048,
    bos_token_id: 256,
    tie_word_embeddings: false,
  };
  if (family === "llama4") {
    return {
      model_type: "llama4",
      architectures: ["Llama4ForConditionalGeneration"],
      text_config: {
        ...common,
        model_type: "llama4_text",
        intermediate_size: 32,
        intermediate_size_mlp: 64,
        num_local_experts: 4,
        num_experts_per_tok: 1,
        interleave_moe_layer_step: 2,
        eos_token_id: [257, 258],
        rope_theta: 500000,
        rope_scaling: {
          rope_type: "llama3",
          factor: 8,
          low_freq_factor: 1,
          high_freq_factor: 4,
          original_max_position_embeddings: 64,
        },
      },
    };
  }
  if (family === "mixtral") {
    return {
      ...common,
      model_type: "mixtral",
      architectures: ["MixtralForCausalLM"],
      intermediate_size: 32,
      num_local_experts: 4,
      num_experts_per_tok: 2,
      eos_token_id: 257,
      rope_theta: 1e6,
    };
  }
  return {
    ...common,
    model_type: "qwen3_moe",
    architectures: ["Qwen3MoeForCausalLM"],
    intermediate_size: 64,
    moe_intermediate_size: 32,
    num_experts: 4,
    num_experts_per_tok: 2,
    norm_topk_prob: true,
    eos_token_id: 257,
    rope_parameters: { rope_type: "default", rope_theta: 1e6 },
  };
}

/** Deterministic pseudo-random values (mulberry32), scaled like a small init. */
function rand(seed: number, n: number, scale: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

export interface Mat {
  rows: number;
  cols: number;
  /** bf16-representable values (already rounded through bf16). */
  values: Float32Array;
}

export interface Synthetic {
  config: ModelConfig;
  dense: Map<string, Mat>;
  experts: Map<string, Mat>; // key `${l}.${e}.${part}`
}

export function synthesize(family: Family, overrides: Record<string, unknown> = {}): Synthetic {
  const config = parseConfig({ ...rawConfig(family), ...overrides });
  const dense = new Map<string, Mat>();
  let seed = 1;
  const mk = (rows: number, cols: number, vector: boolean): Mat => {
    const v = rand(seed++, rows * cols, vector ? 0.1 : 0.5);
    if (vector) for (let i = 0; i < v.length; i++) v[i] += 1; // norms near 1
    return { rows, cols, values: bf16ArrayToF32(f32ToBf16Array(v)) };
  };
  for (const s of denseSpecs(config)) dense.set(s.name, mk(s.rows, s.cols, s.vector));
  const experts = new Map<string, Mat>();
  config.moeLayers.forEach((moe, l) => {
    if (!moe) return;
    for (let e = 0; e < config.numExperts; e++) {
      for (const p of EXPERT_PARTS) {
        const [r, c] =
          p === "down" ? [config.hiddenSize, config.expertFfn] : [config.expertFfn, config.hiddenSize];
        experts.set(`${l}.${e}.${p}`, mk(r, c, false));
      }
    }
  });
  return { config, dense, experts };
}

const bf16 = (v: Float32Array) => new Uint8Array(f32ToBf16Array(v).buffer);

function hfDenseName(family: Family, prefix: string, lm: string, name: string): string {
  if (name === "embed") return `${prefix}embed_tokens.weight`;
  if (name === "norm") return `${prefix}norm.weight`;
  if (name === "lm_head") return lm;
  const [, l, rest] = /^l(\d+)\.(.+)$/.exec(name)!;
  const b = `${prefix}layers.${l}.`;
  const ffn = family === "llama4" ? "feed_forward" : "mlp";
  const map: Record<string, string> = {
    attn_norm: "input_layernorm.weight",
    ffn_norm: "post_attention_layernorm.weight",
    q: "self_attn.q_proj.weight",
    k: "self_attn.k_proj.weight",
    v: "self_attn.v_proj.weight",
    o: "self_attn.o_proj.weight",
    q_norm: "self_attn.q_norm.weight",
    k_norm: "self_attn.k_norm.weight",
    router:
      family === "llama4"
        ? "feed_forward.router.weight"
        : family === "mixtral"
          ? "block_sparse_moe.gate.weight"
          : "mlp.gate.weight",
    "shexp.gate": "feed_forward.shared_expert.gate_proj.weight",
    "shexp.up": "feed_forward.shared_expert.up_proj.weight",
    "shexp.down": "feed_forward.shared_expert.down_proj.weight",
    "mlp.gate": `${ffn}.gate_proj.weight`,
    "mlp.up": `${ffn}.up_proj.weight`,
    "mlp.down": `${ffn}.down_proj.weight`,
  };
  return b + map[rest];
}

/** A minimal byte-level BPE tokenizer.json (GPT-2 byte alphabet, Llama 3 split regex). */
export function tokenizerJson(): Record<string, unknown> {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const vocab: Record<string, number> = {};
  const order = bs.map((b, i) => [b, String.fromCodePoint(cs[i])] as const).sort((x, y) => x[0] - y[0]);
  for (const [b, ch] of order) vocab[ch] = b;
  Object.assign(vocab, { "\u0120t": 259, he: 260 }); // "Ġt" = byte-level " t"
  return {
    version: "1.0",
    added_tokens: [
      { id: 256, content: "<|begin_of_text|>", special: true },
      { id: 257, content: "<|eot|>", special: true },
      { id: 258, content: "<|end_of_text|>", special: true },
    ],
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        {
          type: "Split",
          pattern: {
            Regex:
              "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
          },
          behavior: "Isolated",
          invert: false,
        },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    decoder: { type: "ByteLevel" },
    model: { type: "BPE", vocab, merges: ["Ġ t", "h e"], byte_fallback: false, ignore_merges: true },
  };
}

/** Write a synthetic checkpoint in the given on-disk layout. */
export function writeHf(dir: string, variant: Variant, syn: Synthetic, maxShardBytes?: number): void {
  const family = familyOf(variant);
  const c = syn.config;
  const lmPrefix = variant === "llama4-fused-lm";
  const prefix = lmPrefix ? "language_model.model." : "model.";
  const lm = lmPrefix ? "language_model.lm_head.weight" : "lm_head.weight";
  const tensors: TensorToWrite[] = [];
  for (const s of denseSpecs(c)) {
    const m = syn.dense.get(s.name)!;
    tensors.push({
      name: hfDenseName(family, prefix, lm, s.name),
      dtype: "BF16",
      shape: s.vector ? [s.cols] : [s.rows, s.cols],
      data: bf16(m.values),
    });
  }
  const E = c.numExperts;
  const I = c.expertFfn;
  const H = c.hiddenSize;
  const ex = (l: number, e: number, p: ExpertPart) => syn.experts.get(`${l}.${e}.${p}`)!.values;
  c.moeLayers.forEach((moe, l) => {
    if (!moe) return;
    const b = `${prefix}layers.${l}.`;
    if (variant === "llama4-fused" || variant === "llama4-fused-lm") {
      const gu = new Float32Array(E * H * 2 * I);
      const dn = new Float32Array(E * I * H);
      for (let e = 0; e < E; e++) {
        for (let h = 0; h < H; h++) {
          for (let j = 0; j < I; j++) {
            gu[e * H * 2 * I + h * 2 * I + j] = ex(l, e, "gate")[j * H + h];
            gu[e * H * 2 * I + h * 2 * I + I + j] = ex(l, e, "up")[j * H + h];
            dn[e * I * H + j * H + h] = ex(l, e, "down")[h * I + j];
          }
        }
      }
      tensors.push({
        name: `${b}feed_forward.experts.gate_up_proj`,
        dtype: "BF16",
        shape: [E, H, 2 * I],
        data: bf16(gu),
      });
      tensors.push({
        name: `${b}feed_forward.experts.down_proj`,
        dtype: "BF16",
        shape: [E, I, H],
        data: bf16(dn),
      });
    } else if (variant === "mixtral-fused" || variant === "qwen3moe-fused") {
      const gu = new Float32Array(E * 2 * I * H);
      const dn = new Float32Array(E * H * I);
      for (let e = 0; e < E; e++) {
        gu.set(ex(l, e, "gate"), e * 2 * I * H);
        gu.set(ex(l, e, "up"), e * 2 * I * H + I * H);
        dn.set(ex(l, e, "down"), e * H * I);
      }
      const mlpBase = `${b}mlp.experts.`;
      tensors.push({ name: `${mlpBase}gate_up_proj`, dtype: "BF16", shape: [E, 2 * I, H], data: bf16(gu) });
      tensors.push({ name: `${mlpBase}down_proj`, dtype: "BF16", shape: [E, H, I], data: bf16(dn) });
      if (variant === "mixtral-fused") {
        // transformers v5 saves the router as mlp.gate too
        const r = tensors.find((t) => t.name === `${b}block_sparse_moe.gate.weight`)!;
        r.name = `${b}mlp.gate.weight`;
      }
    } else {
      for (let e = 0; e < E; e++) {
        for (const p of EXPERT_PARTS) {
          const m = syn.experts.get(`${l}.${e}.${p}`)!;
          const name =
            family === "mixtral"
              ? `${b}block_sparse_moe.experts.${e}.${{ gate: "w1", up: "w3", down: "w2" }[p]}.weight`
              : family === "llama4"
                ? `${b}feed_forward.experts.${e}.${p}_proj.weight`
                : `${b}mlp.experts.${e}.${p}_proj.weight`;
          tensors.push({ name, dtype: "BF16", shape: [m.rows, m.cols], data: bf16(m.values) });
        }
      }
    }
  });
  mkdirSync(dir, { recursive: true });
  writeShardedSafetensors(dir, tensors, { maxShardBytes });
  writeFileSync(join(dir, "config.json"), JSON.stringify(c.raw, null, 2));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson()));
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({
      bos_token: "<|begin_of_text|>",
      eos_token: "<|eot|>",
      add_bos_token: true,
      chat_template: "{% for m in messages %}{{ m.content }}{% endfor %}",
    }),
  );
}
