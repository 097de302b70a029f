/**
 * Hugging Face config.json -> ModelConfig for llama4 / llama4_text / mixtral / qwen3_moe
 * (facts: shared/reference/model-formats.md section 1). Every default here is the transformers
 * default for that family, so a config.json that omits a key means what it means in transformers.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { FormatError } from "../formats/errors.js";
import type { Family, ModelConfig } from "./types.js";

type Raw = Record<string, unknown>;

function isObj(v: unknown): v is Raw {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function detectFamily(raw: Raw, source = "config.json"): Family {
  const mt = raw.model_type;
  if (mt === "llama4" || mt === "llama4_text") return "llama4";
  if (mt === "mixtral") return "mixtral";
  if (mt === "qwen3_moe") return "qwen3moe";
  const arch = Array.isArray(raw.architectures) ? String(raw.architectures[0]) : "";
  if (arch.startsWith("Llama4")) return "llama4";
  if (arch === "MixtralForCausalLM") return "mixtral";
  if (arch === "Qwen3MoeForCausalLM") return "qwen3moe";
  throw new FormatError(
    source,
    `unsupported architecture (model_type ${JSON.stringify(mt)}, architectures ${JSON.stringify(
      raw.architectures,
    )}); supported: llama4, llama4_text, mixtral, qwen3_moe`,
  );
}

/** Base RoPE inverse frequencies theta^(-2j/d), j < d/2 (computed in f64, stored f32). */
export function baseInvFreq(theta: number, dim: number): Float64Array {
  const out = new Float64Array(dim / 2);
  for (let j = 0; j < dim / 2; j++) out[j] = 1 / theta ** ((2 * j) / dim);
  return out;
}

/** transformers' llama3 rope scaling (_compute_llama3_parameters). */
export function llama3InvFreq(base: Float64Array, s: Raw): Float64Array {
  const factor = num(s.factor, 8);
  const low = num(s.low_freq_factor, 1);
  const high = num(s.high_freq_factor, 4);
  const orig = num(s.original_max_position_embeddings, 8192);
  const lowWavelen = orig / low;
  const highWavelen = orig / high;
  return base.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowWavelen) return f / factor;
    if (wavelen < highWavelen) return f;
    const smooth = (orig / wavelen - low) / (high - low);
    return ((1 - smooth) * f) / factor + smooth * f;
  });
}

function num(v: unknown, dflt: number): number {
  return typeof v === "number" && Number.isFinite(v) ? v : dflt;
}

/**
 * Normalise a config.json object. `source` names the file in errors. A llama4 config with a
 * nested `text_config` is read from that (top-level keys fill what the text config lacks).
 */
export function parseConfig(rawIn: Raw, source = "config.json"): ModelConfig {
  const family = detectFamily(rawIn, source);
  const raw: Raw = isObj(rawIn.text_config) ? { ...rawIn, ...rawIn.text_config } : rawIn;

  const int = (key: string, dflt?: number): number => {
    const v = raw[key] ?? dflt;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      throw new FormatError(source, `${key} must be a non-negative integer, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const pos = (key: string, dflt?: number): number => {
    const v = int(key, dflt);
    if (v === 0) throw new FormatError(source, `${key} must be positive`);
    return v;
  };

  const hiddenSize = pos("hidden_size");
  const numLayers = pos("num_hidden_layers");
  const numHeads = pos("num_attention_heads");
  const numKvHeads = raw.num_key_value_heads == null ? numHeads : pos("num_key_value_heads");
  if (numHeads % numKvHeads !== 0) {
    throw new FormatError(
      source,
      `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  }
  let headDim: number;
  if (raw.head_dim == null) {
    if (hiddenSize % numHeads !== 0) {
      throw new FormatError(
        source,
        `head_dim absent and hidden_size ${hiddenSize} not divisible by ${numHeads} heads`,
      );
    }
    headDim = hiddenSize / numHeads;
  } else headDim = pos("head_dim");
  if (headDim % 2 !== 0) throw new FormatError(source, `head_dim ${headDim} must be even for RoPE`);
  const vocabSize = pos("vocab_size");

  const defaults = {
    llama4: { eps: 1e-5, theta: 500000, maxPos: 4096 * 32 },
    mixtral: { eps: 1e-5, theta: 1e6, maxPos: 4096 * 32 },
    qwen3moe: { eps: 1e-6, theta: 10000, maxPos: 32768 },
  }[family];

  // Experts.
  const numExperts = family === "qwen3moe" ? int("num_experts", 128) : int("num_local_experts", 8);
  const topK = pos("num_experts_per_tok", family === "llama4" ? 1 : family === "mixtral" ? 2 : 8);
  if (numExperts > 0 && topK > numExperts) {
    throw new FormatError(source, `num_experts_per_tok ${topK} exceeds the ${numExperts} experts`);
  }
  let expertFfn: number;
  let denseFfn: number;
  let moeLayers: boolean[];
  if (family === "llama4") {
    expertFfn = pos("intermediate_size", 8192);
    denseFfn = pos("intermediate_size_mlp", 16384);
    const explicit = raw.moe_layers;
    if (Array.isArray(explicit)) {
      moeLayers = new Array(numLayers).fill(false);
      for (const i of explicit) {
        if (!Number.isInteger(i) || i < 0 || i >= numLayers) {
          throw new FormatError(source, `moe_layers entry ${JSON.stringify(i)} is not a layer index`);
        }
        moeLayers[i] = true;
      }
    } else {
      const step = pos("interleave_moe_layer_step", 1);
      moeLayers = Array.from({ length: numLayers }, (_, i) => i >= step - 1 && (i - (step - 1)) % step === 0);
    }
  } else if (family === "mixtral") {
    expertFfn = pos("intermediate_size", 14336);
    denseFfn = expertFfn;
    moeLayers = new Array(numLayers).fill(true);
  } else {
    expertFfn = pos("moe_intermediate_size", 768);
    denseFfn = pos("intermediate_size", 6144);
    const mlpOnly = Array.isArray(raw.mlp_only_layers) ? (raw.mlp_only_layers as unknown[]) : [];
    const step = pos("decoder_sparse_step", 1);
    moeLayers = Array.from(
      { length: numLayers },
      (_, i) => !mlpOnly.includes(i) && numExperts > 0 && (i + 1) % step === 0,
    );
  }
  if (moeLayers.some((m) => m) && numExperts === 0) {
    throw new FormatError(source, "MoE layers configured but the expert count is 0");
  }

  // RoPE: theta may sit in rope_parameters (transformers v5) or at top level.
  const ropeParams = isObj(raw.rope_parameters) ? raw.rope_parameters : null;
  const theta = num(raw.rope_theta, num(ropeParams?.rope_theta, defaults.theta));
  const scaling = isObj(raw.rope_scaling) ? raw.rope_scaling : ropeParams;
  const ropeType = scaling ? (scaling.rope_type ?? scaling.type ?? "default") : "default";
  let inv = baseInvFreq(theta, headDim);
  if (ropeType === "llama3") inv = llama3InvFreq(inv, scaling as Raw);
  else if (ropeType === "linear") {
    const f = num(scaling?.factor, 1);
    inv = inv.map((x) => x / f);
  } else if (ropeType !== "default") {
    throw new FormatError(source, `unsupported rope scaling type ${JSON.stringify(ropeType)}`);
  }

  let ropeLayers: boolean[];
  if (family === "llama4") {
    const nr = raw.no_rope_layers;
    if (Array.isArray(nr) && nr.length > 0) {
      if (nr.length !== numLayers) {
        throw new FormatError(source, `no_rope_layers has ${nr.length} entries for ${numLayers} layers`);
      }
      ropeLayers = nr.map((v) => Boolean(v)); // 1 = layer uses RoPE
    } else {
      const interval = pos("no_rope_layer_interval", 4);
      ropeLayers = Array.from({ length: numLayers }, (_, i) => (i + 1) % interval !== 0);
    }
  } else ropeLayers = new Array(numLayers).fill(true);

  const eos = raw.eos_token_id;
  const eosTokenIds = Array.isArray(eos)
    ? eos.filter((x): x is number => typeof x === "number")
    : typeof eos === "number"
      ? [eos]
      : [];
  const bos = typeof raw.bos_token_id === "number" ? raw.bos_token_id : null;

  let slidingWindow = 0;
  if (family === "mixtral" && typeof raw.sliding_window === "number") slidingWindow = raw.sliding_window;
  if (family === "qwen3moe" && raw.use_sliding_window === true && typeof raw.sliding_window === "number") {
    slidingWindow = raw.sliding_window;
  }

  const tt = raw.attn_temperature_tuning;
  return {
    family,
    vocabSize,
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: num(raw.rms_norm_eps, defaults.eps),
    maxPositions: num(raw.max_position_embeddings, defaults.maxPos),
    tieWordEmbeddings: raw.tie_word_embeddings === true,
    numExperts,
    topK,
    expertFfn,
    denseFfn,
    moeLayers,
    sharedExpert: family === "llama4",
    routing: family === "llama4" ? "sigmoid" : "softmax",
    normTopK: family === "mixtral" ? true : family === "qwen3moe" ? raw.norm_topk_prob === true : false,
    scoreOnInput: family === "llama4",
    rope: { style: family === "llama4" ? "interleaved" : "neox", theta, invFreq: Float32Array.from(inv) },
    ropeLayers,
    l2QkNorm: family === "llama4" ? raw.use_qk_norm !== false : false,
    headQkNorm: family === "qwen3moe",
    attentionChunk:
      family === "llama4" && raw.attention_chunk_size !== null ? num(raw.attention_chunk_size, 8192) : 0,
    // Released configs store an int (4) here: any truthy value means "on".
    attnTemperature:
      family === "llama4" && (tt === undefined || Boolean(tt))
        ? { floorScale: num(raw.floor_scale, 8192), attnScale: num(raw.attn_scale, 0.1) }
        : null,
    slidingWindow,
    bosTokenId: bos,
    eosTokenIds,
    raw: rawIn,
  };
}

/** Read and parse `dir/config.json`. */
export function loadConfig(dir: string): ModelConfig {
  const path = join(dir, "config.json");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new FormatError(path, `cannot read config.json (${(e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FormatError(path, `invalid JSON (${(e as Error).message})`);
  }
  if (!isObj(raw)) throw new FormatError(path, "config.json is not a JSON object");
  return parseConfig(raw, path);
}
