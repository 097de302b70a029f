/**
 * makeModel: writes a complete Hugging Face-layout checkpoint folder for a family and preset:
 * config.json, generation_config.json, tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json and model.safetensors (or shards + model.safetensors.index.json).
 * Tensor names and shapes are exactly the released ones (shared/reference/model-formats.md):
 *   llama4   Llama4ForCausalLM: model.layers.N.feed_forward.{router, experts.gate_up_proj [E,H,2I],
 *            experts.down_proj [E,I,H], shared_expert.*}, dense layers feed_forward.{gate,up,down}_proj
 *   mixtral  model.layers.N.block_sparse_moe.{gate, experts.J.w1/w2/w3}
 *   qwen3moe model.layers.N.mlp.{gate, experts.J.{gate,up,down}_proj}, self_attn.{q,k}_norm
 * Tensors are generated and written one at a time (weights: model/init.ts), so multi-GB presets
 * never sit in memory.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type TensorToWrite, writeShardedSafetensors } from "../formats/safetensors.js";
import { parseConfig } from "../model/config.js";
import { stringifyConfig } from "../model/config-json.js";
import { dtypeBytes, fillTensor, type GenDType, type InitSpec, type Scratch } from "../model/init.js";
import { type ConfigJson, type PresetName, presetConfig } from "../model/presets.js";
import type { Family, ModelConfig } from "../model/types.js";
import { type BuiltTokenizer, buildTokenizer } from "../tokenizer/build.js";
import { TOKENIZER_SPECS } from "../tokenizer/families.js";

export interface MakeModelOptions {
  family: Family;
  preset: PresetName;
  out: string;
  /** Weight seed (default 0). Same seed, same bytes. */
  seed?: number;
  dtype?: GenDType;
  /** Zipf exponent of expert popularity (0 = no preference), see model/init.ts. */
  routerSkew?: number;
  /** Deep-merged over the preset's config.json (any key). */
  overrides?: ConfigJson;
  /** Shard above this many bytes (default 2e9). */
  maxShardBytes?: number;
  /** Called after each tensor is generated (bytes so far, total bytes, tensor name). */
  onProgress?: (doneBytes: number, totalBytes: number, tensor: string) => void;
}

export interface MakeModelResult {
  dir: string;
  config: ConfigJson;
  /** Safetensors file names written. */
  files: string[];
  /** Bytes of tensor data. */
  totalBytes: number;
  params: number;
  tensors: number;
  seconds: number;
}

export interface PlannedTensor {
  name: string;
  shape: number[];
  init: InitSpec;
}

const DTYPE_NAMES: Record<GenDType, TensorToWrite["dtype"]> = { bf16: "BF16", f16: "F16", f32: "F32" };
const TORCH_DTYPE: Record<GenDType, string> = { bf16: "bfloat16", f16: "float16", f32: "float32" };

function isObject(v: unknown): v is ConfigJson {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; anything else (arrays, scalars, null) replaces. */
export function deepMerge(base: ConfigJson, over: ConfigJson): ConfigJson {
  const out: ConfigJson = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isObject(v) && isObject(out[k]) ? deepMerge(out[k] as ConfigJson, v) : structuredClone(v);
  }
  return out;
}

/** The final config.json: preset, token ids from the tokenizer, overrides, derived per-layer lists. */
export function resolveConfig(
  family: Family,
  preset: PresetName,
  overrides: ConfigJson,
  dtype: GenDType,
  tok: (vocabSize: number) => BuiltTokenizer,
): { config: ConfigJson; tokenizer: BuiltTokenizer } {
  const base = presetConfig(family, preset);
  const sized = deepMerge(base, overrides);
  const vocab = sized.vocab_size;
  if (typeof vocab !== "number" || !Number.isInteger(vocab))
    throw new Error("config: vocab_size must be an integer");
  const tokenizer = tok(vocab);
  const ids: ConfigJson = {
    bos_token_id: family === "qwen3moe" ? tokenizer.specialIds["<|endoftext|>"] : tokenizer.bosTokenId,
    eos_token_id: family === "mixtral" ? tokenizer.eosTokenIds[0] : tokenizer.eosTokenIds,
  };
  if (family === "llama4") ids.pad_token_id = tokenizer.padTokenId;
  if (family === "qwen3moe") ids.eos_token_id = tokenizer.specialIds["<|im_end|>"];
  const config = deepMerge({ ...base, ...ids, torch_dtype: TORCH_DTYPE[dtype] }, overrides);
  // Llama 4 spells out which layers use RoPE (1) or are NoPE (0), from the interval unless given.
  if (family === "llama4" && !Array.isArray(overrides.no_rope_layers)) {
    const L = config.num_hidden_layers as number;
    const interval = (config.no_rope_layer_interval as number) ?? 4;
    config.no_rope_layers = Array.from({ length: L }, (_, i) => ((i + 1) % interval !== 0 ? 1 : 0));
  }
  return { config: sortKeys(config), tokenizer };
}

function sortKeys(o: ConfigJson): ConfigJson {
  return Object.fromEntries(
    Object.keys(o)
      .sort()
      .map((k) => [k, o[k]]),
  );
}

/** Every tensor of the checkpoint in file order (layer by layer), with its on-disk name and init. */
export function planTensors(c: ModelConfig, routerSkew: number): PlannedTensor[] {
  const H = c.hiddenSize;
  const L = c.numLayers;
  const E = c.numExperts;
  const I = c.expertFfn;
  const residual = 1 / Math.sqrt(2 * L);
  const inStd = (fanIn: number): InitSpec => ({ kind: "normal", std: 1 / Math.sqrt(fanIn) });
  const outStd = (fanIn: number): InitSpec => ({ kind: "normal", std: residual / Math.sqrt(fanIn) });
  const norm: InitSpec = { kind: "norm" };
  const out: PlannedTensor[] = [];
  const t = (name: string, shape: number[], init: InitSpec) => out.push({ name, shape, init });

  t("model.embed_tokens.weight", [c.vocabSize, H], { kind: "embed", hidden: H });
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    t(`${p}input_layernorm.weight`, [H], norm);
    t(`${p}self_attn.q_proj.weight`, [qDim, H], inStd(H));
    t(`${p}self_attn.k_proj.weight`, [kvDim, H], inStd(H));
    t(`${p}self_attn.v_proj.weight`, [kvDim, H], inStd(H));
    t(`${p}self_attn.o_proj.weight`, [H, qDim], outStd(qDim));
    if (c.family === "qwen3moe") {
      t(`${p}self_attn.q_norm.weight`, [c.headDim], norm);
      t(`${p}self_attn.k_norm.weight`, [c.headDim], norm);
    }
    t(`${p}post_attention_layernorm.weight`, [H], norm);
    const router: InitSpec = { kind: "router", hidden: H, experts: E, layer: l, layers: L, skew: routerSkew };
    const ffn = c.family === "llama4" ? `${p}feed_forward.` : `${p}mlp.`;
    if (!c.moeLayers[l]) {
      const D = c.denseFfn;
      t(`${ffn}gate_proj.weight`, [D, H], inStd(H));
      t(`${ffn}up_proj.weight`, [D, H], inStd(H));
      t(`${ffn}down_proj.weight`, [H, D], outStd(D));
    } else if (c.family === "llama4") {
      t(`${ffn}router.weight`, [E, H], router);
      // Fused experts are stored (in, out) for bmm; gate = first I columns, up = last I.
      t(`${ffn}experts.gate_up_proj`, [E, H, 2 * I], inStd(H));
      t(`${ffn}experts.down_proj`, [E, I, H], outStd(I));
      t(`${ffn}shared_expert.gate_proj.weight`, [I, H], inStd(H));
      t(`${ffn}shared_expert.up_proj.weight`, [I, H], inStd(H));
      t(`${ffn}shared_expert.down_proj.weight`, [H, I], outStd(I));
    } else if (c.family === "mixtral") {
      const m = `${p}block_sparse_moe.`;
      t(`${m}gate.weight`, [E, H], router);
      for (let e = 0; e < E; e++) {
        t(`${m}experts.${e}.w1.weight`, [I, H], inStd(H));
        t(`${m}experts.${e}.w2.weight`, [H, I], outStd(I));
        t(`${m}experts.${e}.w3.weight`, [I, H], inStd(H));
      }
    } else {
      t(`${ffn}gate.weight`, [E, H], router);
      for (let e = 0; e < E; e++) {
        t(`${ffn}experts.${e}.gate_proj.weight`, [I, H], inStd(H));
        t(`${ffn}experts.${e}.up_proj.weight`, [I, H], inStd(H));
        t(`${ffn}experts.${e}.down_proj.weight`, [H, I], outStd(I));
      }
    }
  }
  t("model.norm.weight", [H], norm);
  if (!c.tieWordEmbeddings) t("lm_head.weight", [c.vocabSize, H], inStd(H));
  return out;
}

function generationConfig(family: Family, config: ConfigJson, tokenizer: BuiltTokenizer): ConfigJson {
  const spec = TOKENIZER_SPECS[family];
  const g: ConfigJson = {};
  if (config.bos_token_id !== null && config.bos_token_id !== undefined) g.bos_token_id = config.bos_token_id;
  g.eos_token_id = tokenizer.eosTokenIds.length === 1 ? tokenizer.eosTokenIds[0] : tokenizer.eosTokenIds;
  if (tokenizer.padTokenId !== null) g.pad_token_id = tokenizer.padTokenId;
  Object.assign(g, spec.generationDefaults);
  g.transformers_version = config.transformers_version;
  return g;
}

function specialTokensMap(family: Family): ConfigJson {
  const spec = TOKENIZER_SPECS[family];
  const m: ConfigJson = {};
  if (spec.bosToken) m.bos_token = spec.bosToken;
  m.eos_token = spec.eosToken;
  if (spec.padToken) m.pad_token = spec.padToken;
  if (spec.unkToken) m.unk_token = spec.unkToken;
  return m;
}

const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

/** Remove model files a previous run may have left (a stale shard next to a new index misleads loaders). */
function clearModelFiles(dir: string): void {
  for (const f of readdirSync(dir)) {
    if (/^model(-\d+-of-\d+)?\.safetensors$/.test(f) || f === "model.safetensors.index.json") {
      rmSync(join(dir, f));
    }
  }
}

export function makeModel(opts: MakeModelOptions): MakeModelResult {
  const t0 = performance.now();
  const seed = opts.seed ?? 0;
  const dtype = opts.dtype ?? "bf16";
  const skew = opts.routerSkew ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new Error(`seed must be a non-negative integer, got ${seed}`);
  if (!(dtype in DTYPE_NAMES)) throw new Error(`dtype must be bf16, f16 or f32, got ${dtype}`);
  if (!Number.isFinite(skew) || skew < 0) throw new Error(`router skew must be a number >= 0, got ${skew}`);

  const { config, tokenizer } = resolveConfig(
    opts.family,
    opts.preset,
    opts.overrides ?? {},
    dtype,
    (vocabSize) => buildTokenizer({ family: opts.family, vocabSize }),
  );
  const mc = parseConfig(config, "generated config.json");
  if (mc.family !== opts.family) {
    throw new Error(`overrides changed the family to ${mc.family}; use --family ${mc.family} instead`);
  }
  const plan = planTensors(mc, skew);
  const st = DTYPE_NAMES[dtype];
  const bytesPer = dtypeBytes(dtype);
  let params = 0;
  for (const p of plan) params += p.shape.reduce((a, b) => a * b, 1);
  const total = params * bytesPer;

  mkdirSync(opts.out, { recursive: true });
  clearModelFiles(opts.out);
  let done = 0;
  // writeShardedSafetensors writes each tensor before filling the next, so one buffer serves all.
  const scratch: Scratch = { buf: null };
  const tensors: TensorToWrite[] = plan.map((p) => ({
    name: p.name,
    dtype: st,
    shape: p.shape,
    fill: () => {
      const data = fillTensor(seed, p.name, p.shape, p.init, dtype, scratch);
      done += data.length;
      opts.onProgress?.(done, total, p.name);
      return data;
    },
  }));
  const written = writeShardedSafetensors(opts.out, tensors, {
    maxShardBytes: opts.maxShardBytes ?? 2e9,
    metadata: { generator: "moe-edge make-model", seed: String(seed), router_skew: String(skew) },
  });

  const tokCfg = { ...tokenizer.tokenizerConfig, model_max_length: mc.maxPositions };
  writeFileSync(join(opts.out, "config.json"), stringifyConfig(config));
  writeFileSync(
    join(opts.out, "generation_config.json"),
    json(generationConfig(opts.family, config, tokenizer)),
  );
  writeFileSync(join(opts.out, "tokenizer.json"), json(tokenizer.tokenizerJson));
  writeFileSync(join(opts.out, "tokenizer_config.json"), json(tokCfg));
  writeFileSync(join(opts.out, "special_tokens_map.json"), json(specialTokensMap(opts.family)));
  return {
    dir: opts.out,
    config,
    files: written.files,
    totalBytes: written.totalSize,
    params,
    tensors: plan.length,
    seconds: (performance.now() - t0) / 1000,
  };
}
