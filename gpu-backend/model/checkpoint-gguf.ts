/**
 * A GGUF file (arches llama = Mixtral, qwen3moe, llama4) behind the Checkpoint interface.
 *
 * RoPE convention: llama.cpp's converter permutes q/k rows of the llama arch so that llama.cpp can
 * rotate adjacent pairs (RoPE "NORM"). We undo that permutation when loading l{i}.q / l{i}.k, so
 * the canonical tensors are exactly the Hugging Face ones and config.rope.style stays "neox"
 * (rotate_half) for Mixtral, as for an HF folder. qwen3moe is NEOX in both worlds; llama4 is not
 * permuted by the converter and is "interleaved" in both.
 *
 * Stacked `blk.N.ffn_{gate,up,down}_exps.weight` tensors ([in, out, E]) are sliced per expert:
 * expert e is one contiguous byte range of each.
 */
import type { Weight } from "../device/device.js";
import { f32View } from "../device/f16.js";
import { FormatError } from "../formats/errors.js";
import { GgmlType, GgufFile, type GgufTensorInfo, ggmlTypeName } from "../formats/gguf.js";
import { type DenseSpec, denseSpecs, EXPERT_PARTS, expertShapes } from "./canonical.js";
import { baseInvFreq, parseConfig } from "./config.js";
import { GGUF_ROPE_FREQS, ggufDenseName, ggufExpertName } from "./gguf-names.js";
import type { ByteRange, Checkpoint, ExpertWeights, ModelConfig } from "./types.js";
import {
  invertPermutation,
  llamaQkPermutation,
  permuteRows,
  splitGgmlBlocks,
  vectorWeight,
} from "./weight-bytes.js";

/** Build a config.json-like object from GGUF metadata, then normalise it like an HF config. */
export function configFromGguf(f: GgufFile): ModelConfig {
  const arch = f.meta("general.architecture");
  const m = (k: string): unknown => f.meta(`${arch}.${k}`);
  const need = (k: string): number => {
    const v = m(k);
    if (typeof v !== "number") throw new FormatError(f.path, `missing or non-numeric metadata ${arch}.${k}`);
    return v;
  };
  const opt = (k: string): number | undefined => {
    const v = m(k);
    return typeof v === "number" ? v : undefined;
  };
  const tokens = f.meta("tokenizer.ggml.tokens");
  const nExpert = opt("expert_count") ?? 0;
  const H = need("embedding_length");
  const heads = need("attention.head_count");
  const raw: Record<string, unknown> = {
    vocab_size:
      opt("vocab_size") ?? (Array.isArray(tokens) ? tokens.length : f.info("token_embd.weight").dims[1]),
    hidden_size: H,
    num_hidden_layers: need("block_count"),
    num_attention_heads: heads,
    num_key_value_heads: opt("attention.head_count_kv") ?? heads,
    head_dim: opt("attention.key_length") ?? opt("rope.dimension_count") ?? H / heads,
    rms_norm_eps: opt("attention.layer_norm_rms_epsilon"),
    max_position_embeddings: opt("context_length"),
    rope_theta: opt("rope.freq_base") ?? 10000,
    num_experts_per_tok: opt("expert_used_count"),
    tie_word_embeddings: !f.header.tensors.has("output.weight"),
    bos_token_id: f.meta("tokenizer.ggml.bos_token_id"),
    eos_token_id: f.meta("tokenizer.ggml.eos_token_id"),
  };
  if (arch === "llama") {
    if (nExpert === 0)
      throw new FormatError(f.path, "dense llama GGUF is not supported (need a Mixtral-style MoE)");
    Object.assign(raw, {
      model_type: "mixtral",
      num_local_experts: nExpert,
      intermediate_size: opt("expert_feed_forward_length") ?? need("feed_forward_length"),
    });
  } else if (arch === "qwen3moe") {
    Object.assign(raw, {
      model_type: "qwen3_moe",
      num_experts: nExpert,
      moe_intermediate_size: need("expert_feed_forward_length"),
      intermediate_size: opt("feed_forward_length") ?? need("expert_feed_forward_length"),
      // llama.cpp's qwen3moe graph always renormalises the top-k weights; our exporter records
      // norm_topk_prob in {arch}.expert_weights_norm so a round trip keeps the HF value.
      norm_topk_prob: m("expert_weights_norm") ?? true,
      // llama.cpp's qwen3moe has MoE on every layer; files from our exporter may carry dense
      // layers (mlp_only_layers), recognisable by a missing router.
      mlp_only_layers: Array.from({ length: need("block_count") }, (_, i) => i).filter(
        (i) => !f.header.tensors.has(`blk.${i}.ffn_gate_inp.weight`),
      ),
    });
  } else if (arch === "llama4") {
    // llama.cpp hard-codes chunked attention, NoPE every 4th layer and temperature tuning unless
    // attention.sliding_window == 0, and turns the qk-norm off for the 128-expert model.
    const swa = opt("attention.sliding_window");
    const plain = swa === 0;
    const L = need("block_count");
    Object.assign(raw, {
      model_type: "llama4_text",
      num_local_experts: nExpert,
      intermediate_size: need("expert_feed_forward_length"),
      intermediate_size_mlp: need("feed_forward_length"),
      interleave_moe_layer_step: opt("interleave_moe_layer_step") ?? 1,
      use_qk_norm: nExpert !== 128,
      attention_chunk_size: plain ? null : 8192,
      attn_temperature_tuning: !plain,
      no_rope_layers: plain ? new Array(L).fill(1) : undefined,
    });
  } else {
    throw new FormatError(
      f.path,
      `unsupported GGUF architecture ${JSON.stringify(arch)} (need llama, qwen3moe, llama4)`,
    );
  }
  const cfg = parseConfig(raw, f.path);
  const rf = f.header.tensors.get(GGUF_ROPE_FREQS);
  if (rf) {
    if (rf.type !== GgmlType.F32 || rf.dims[0] !== cfg.headDim / 2) {
      throw new FormatError(f.path, `expected F32 [${cfg.headDim / 2}]`, GGUF_ROPE_FREQS);
    }
    const factors = f32View(f.read(GGUF_ROPE_FREQS));
    const base = baseInvFreq(cfg.rope.theta, cfg.headDim);
    cfg.rope.invFreq = Float32Array.from(base, (x, j) => x / factors[j]);
  }
  return cfg;
}

const DECODABLE = new Set<number>([GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0]);

function bytesToWeight(type: number, rows: number, cols: number, bytes: Uint8Array): Weight {
  switch (type) {
    case GgmlType.F32:
      return { dtype: "f32", rows, cols, data: bytes };
    case GgmlType.F16:
      return { dtype: "f16", rows, cols, data: bytes };
    case GgmlType.BF16:
      return { dtype: "bf16", rows, cols, data: bytes };
    case GgmlType.Q8_0:
      return { dtype: "q8", rows, cols, ...splitGgmlBlocks(bytes, "q8") };
    case GgmlType.Q4_0:
      return { dtype: "q4", rows, cols, ...splitGgmlBlocks(bytes, "q4") };
    default:
      throw new Error(`unsupported ggml type ${ggmlTypeName(type)}`);
  }
}

export class GgufCheckpoint implements Checkpoint {
  readonly config: ModelConfig;
  private readonly file: GgufFile;
  private readonly dense = new Map<string, { spec: DenseSpec; info: GgufTensorInfo }>();
  private readonly experts = new Map<number, GgufTensorInfo[]>();
  private readonly unpermute: { q: Int32Array; k: Int32Array } | null;

  constructor(readonly path: string) {
    this.file = new GgufFile(path);
    try {
      this.config = configFromGguf(this.file);
      const c = this.config;
      for (const spec of denseSpecs(c)) {
        const info = this.check(ggufDenseName(spec.name), spec.vector ? [spec.cols] : [spec.cols, spec.rows]);
        if (spec.vector && ![GgmlType.F32, GgmlType.F16, GgmlType.BF16].includes(info.type as 0)) {
          throw new FormatError(
            path,
            `norm weight must be F32/F16/BF16, got ${ggmlTypeName(info.type)}`,
            info.name,
          );
        }
        this.dense.set(spec.name, { spec, info });
      }
      const shapes = expertShapes(c);
      c.moeLayers.forEach((moe, l) => {
        if (!moe) return;
        this.experts.set(
          l,
          EXPERT_PARTS.map((p) =>
            this.check(ggufExpertName(l, p), [shapes[p][1], shapes[p][0], c.numExperts]),
          ),
        );
      });
      this.unpermute = GGUF_ARCH_PERMUTED.has(String(this.file.meta("general.architecture")))
        ? {
            q: invertPermutation(llamaQkPermutation(c.numHeads, c.headDim)),
            k: invertPermutation(llamaQkPermutation(c.numKvHeads, c.headDim)),
          }
        : null;
    } catch (e) {
      this.file.close();
      throw e;
    }
  }

  private check(name: string, dims: number[]): GgufTensorInfo {
    const info = this.file.header.tensors.get(name);
    if (!info) throw new FormatError(this.path, "missing tensor", name);
    if (info.dims.length !== dims.length || info.dims.some((d, i) => d !== dims[i])) {
      throw new FormatError(
        this.path,
        `dims [${info.dims}] disagree with the metadata (expected [${dims}])`,
        name,
      );
    }
    if (!DECODABLE.has(info.type)) {
      throw new FormatError(
        this.path,
        `unsupported ggml type ${ggmlTypeName(info.type)} (need F32/F16/BF16/Q8_0/Q4_0)`,
        name,
      );
    }
    return info;
  }

  has(name: string): boolean {
    return this.dense.has(name);
  }

  loadDense(name: string): Weight {
    const d = this.dense.get(name);
    if (!d) throw new FormatError(this.path, "no such dense tensor in this model", name);
    const bytes = this.file.read(d.info.name);
    if (d.spec.vector) {
      if (d.info.type === GgmlType.F32) return vectorWeight("f32", bytes);
      return vectorWeight(d.info.type === GgmlType.F16 ? "f16" : "bf16", bytes);
    }
    let w = bytesToWeight(d.info.type, d.spec.rows, d.spec.cols, bytes);
    const m = /^l\d+\.(q|k)$/.exec(name);
    if (m && this.unpermute) w = permuteRows(w, m[1] === "q" ? this.unpermute.q : this.unpermute.k);
    return w;
  }

  private infos(layer: number, expert: number): GgufTensorInfo[] {
    const infos = this.experts.get(layer);
    if (!infos) throw new FormatError(this.path, `layer ${layer} has no routed experts`);
    if (!Number.isInteger(expert) || expert < 0 || expert >= this.config.numExperts) {
      throw new FormatError(this.path, `expert ${expert} out of range (0..${this.config.numExperts - 1})`);
    }
    return infos;
  }

  expertRanges(layer: number, expert: number): ByteRange[] {
    return this.infos(layer, expert).map((t) => {
      const per = t.nbytes / this.config.numExperts;
      return { file: this.path, offset: t.offset + expert * per, length: per };
    });
  }

  decodeExpert(layer: number, expert: number, bytes: Uint8Array[]): ExpertWeights {
    const infos = this.infos(layer, expert);
    const per = infos.map((t) => t.nbytes / this.config.numExperts);
    if (bytes.length !== 3 || bytes.some((b, i) => b.length !== per[i])) {
      throw new FormatError(
        this.path,
        `decodeExpert(${layer}, ${expert}): byte buffers do not match expertRanges`,
      );
    }
    const s = expertShapes(this.config);
    const [gate, up, down] = EXPERT_PARTS.map((p, i) =>
      bytesToWeight(infos[i].type, s[p][0], s[p][1], bytes[i]),
    );
    return { gate, up, down };
  }

  loadExpert(layer: number, expert: number): ExpertWeights {
    const bytes = this.expertRanges(layer, expert).map((r) => this.file.readRange(r.offset, r.length));
    return this.decodeExpert(layer, expert, bytes);
  }

  close(): void {
    this.file.close();
  }
}

/** Arches whose converter permuted q/k for adjacent-pair RoPE. */
const GGUF_ARCH_PERMUTED = new Set(["llama"]);
