/**
 * exportGguf(inDir, outFile, type): the weights of a Hugging Face checkpoint folder (ours or a
 * real download) as a GGUF file that llama.cpp loads: arch `llama` for Mixtral, `qwen3moe`,
 * `llama4`, with the metadata keys convert_hf_to_gguf.py writes and llama-model.cpp reads.
 *
 * Tensor types: norms, routers (ffn_gate_inp) and rope_freqs are always F32 (as llama.cpp's
 * converter keeps them); every other matrix gets `type`. From a checkpoint quantized by
 * tools/quantize.ts with the same bits, q8_0 / q4_0 blocks are copied bit-exactly (our layout is
 * GGUF's with scales split out). Mixtral q/k rows are permuted as llama.cpp's converter does.
 * Tensors stream one at a time (stacked experts expert by expert).
 */
import { basename } from "node:path";
import type { Weight } from "../device/device.js";
import { dequantize, quantizeQ4, quantizeQ8 } from "../device/f16.js";
import { GgmlType, type GgufTensorToWrite, type GgufValue, gv, writeGguf } from "../formats/gguf.js";
import { tokenizerMetadata } from "../formats/gguf-tokenizer.js";
import { denseSpecs, EXPERT_PARTS } from "../model/canonical.js";
import { HfCheckpoint } from "../model/checkpoint-hf.js";
import { baseInvFreq } from "../model/config.js";
import { GGUF_ARCH, GGUF_ROPE_FREQS, ggufDenseName, ggufExpertName } from "../model/gguf-names.js";
import type { ModelConfig } from "../model/types.js";
import {
  joinGgmlBlocks,
  llamaQkPermutation,
  permuteRows,
  toBf16Bytes,
  toF32Bytes,
} from "../model/weight-bytes.js";

export type GgufExportType = "f32" | "bf16" | "q8_0" | "q4_0";

export interface ExportGgufOptions {
  /** Override the detected tokenizer.ggml.pre. */
  tokenizerPre?: string;
  /** general.name (default: the folder name). */
  name?: string;
}

export interface ExportGgufResult {
  bytes: number;
  tensors: number;
  /** Config features llama.cpp hard-codes differently (the file loads, but llama.cpp may compute otherwise). */
  warnings: string[];
  /** Matrices that had to be re-quantized (not bit-exact copies). */
  requantized: number;
}

const FILE_TYPE: Record<GgufExportType, number> = { f32: 0, bf16: 32, q8_0: 7, q4_0: 2 };
const MATRIX_TYPE: Record<GgufExportType, number> = {
  f32: GgmlType.F32,
  bf16: GgmlType.BF16,
  q8_0: GgmlType.Q8_0,
  q4_0: GgmlType.Q4_0,
};

/** Llama 3 rope factors as convert_hf_to_gguf computes them (divisors of the base frequencies). */
function ropeFactors(c: ModelConfig): Float32Array | null {
  const raw = (c.raw.text_config ?? c.raw) as Record<string, unknown>;
  const s = (raw.rope_scaling ?? raw.rope_parameters ?? c.raw.rope_scaling) as Record<string, unknown> | null;
  if (!s || (s.rope_type ?? s.type) !== "llama3") return null;
  const factor = Number(s.factor ?? 8);
  const low = Number(s.low_freq_factor ?? 1);
  const high = Number(s.high_freq_factor ?? 4);
  const orig = Number(s.original_max_position_embeddings ?? 8192);
  return Float32Array.from(baseInvFreq(c.rope.theta, c.headDim), (f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < orig / high) return 1;
    if (wavelen > orig / low) return factor;
    const smooth = (orig / wavelen - low) / (high - low);
    return 1 / ((1 - smooth) / factor + smooth);
  });
}

/** Check what llama.cpp can represent; throw when even our own GGUF loader could not read it back. */
function compatibility(c: ModelConfig, warnings: string[]): void {
  if (c.family === "llama4") {
    const step = Number(
      ((c.raw.text_config ?? c.raw) as Record<string, unknown>).interleave_moe_layer_step ?? 1,
    );
    if (!c.moeLayers.every((m, i) => m === ((i + 1) % step === 0))) {
      throw new Error(`llama4: moe_layers must be every ${step}th layer ((i+1) % step == 0) for GGUF`);
    }
    const allRope = c.ropeLayers.every((r) => r);
    const std = c.ropeLayers.every((r, i) => r === ((i + 1) % 4 !== 0));
    if (!(std || (allRope && c.attentionChunk === 0))) {
      warnings.push(
        "llama4: llama.cpp hard-codes NoPE on every 4th layer; this config's no_rope_layers differ",
      );
    }
    if (std && c.attentionChunk !== 8192)
      warnings.push("llama4: llama.cpp hard-codes attention_chunk_size 8192");
    if (c.l2QkNorm !== (c.numExperts !== 128)) {
      warnings.push("llama4: llama.cpp enables the qk-norm exactly when expert_count != 128");
    }
    const t = c.attnTemperature;
    const llamaCppTemp = t !== null && t.floorScale === 8192 && Math.abs(t.attnScale - 0.1) < 1e-9;
    if (std && !llamaCppTemp) {
      warnings.push("llama4: llama.cpp hard-codes attention temperature tuning (floor 8192, scale 0.1)");
    }
  } else if (c.family === "qwen3moe") {
    if (!c.moeLayers.every((m) => m)) {
      // Our GGUF loader reads dense layers back (by tensor presence); llama.cpp's qwen3moe does not.
      warnings.push(
        "qwen3moe: dense layers (mlp_only_layers / decoder_sparse_step) will not load in llama.cpp",
      );
    }
    if (!c.normTopK) {
      warnings.push(
        "qwen3moe: norm_topk_prob=false is written as qwen3moe.expert_weights_norm; upstream llama.cpp may renormalise anyway",
      );
    }
    if (c.slidingWindow) warnings.push("qwen3moe: sliding window is not exported");
  } else if (c.slidingWindow) {
    warnings.push("mixtral: sliding_window is not exported (llama arch has none)");
  }
}

function metadata(c: ModelConfig, type: GgufExportType, name: string): [string, GgufValue][] {
  const a = GGUF_ARCH[c.family];
  const m: [string, GgufValue][] = [
    ["general.architecture", gv.str(a)],
    ["general.name", gv.str(name)],
    ["general.file_type", gv.u32(FILE_TYPE[type])],
  ];
  if (type === "q8_0" || type === "q4_0") m.push(["general.quantization_version", gv.u32(2)]);
  const k = (key: string, v: GgufValue) => m.push([`${a}.${key}`, v]);
  k("vocab_size", gv.u32(c.vocabSize));
  k("context_length", gv.u32(c.maxPositions));
  k("embedding_length", gv.u32(c.hiddenSize));
  k("block_count", gv.u32(c.numLayers));
  k("feed_forward_length", gv.u32(c.family === "mixtral" ? c.expertFfn : c.denseFfn));
  k("attention.head_count", gv.u32(c.numHeads));
  k("attention.head_count_kv", gv.u32(c.numKvHeads));
  k("rope.freq_base", gv.f32(c.rope.theta));
  k("attention.layer_norm_rms_epsilon", gv.f32(c.rmsNormEps));
  k("expert_count", gv.u32(c.numExperts));
  k("expert_used_count", gv.u32(c.topK));
  k("attention.key_length", gv.u32(c.headDim));
  k("attention.value_length", gv.u32(c.headDim));
  k("rope.dimension_count", gv.u32(c.headDim));
  if (c.family !== "mixtral") k("expert_feed_forward_length", gv.u32(c.expertFfn));
  if (c.family === "llama4") {
    const step = Number(
      ((c.raw.text_config ?? c.raw) as Record<string, unknown>).interleave_moe_layer_step ?? 1,
    );
    k("interleave_moe_layer_step", gv.u32(step));
    // llama.cpp's switch for "no chunking, no NoPE" (MobileLLM-style configs).
    if (c.ropeLayers.every((r) => r) && c.attentionChunk === 0) k("attention.sliding_window", gv.u32(0));
  }
  if (c.family === "qwen3moe") k("expert_weights_norm", gv.bool(c.normTopK));
  return m;
}

export function exportGguf(
  inDir: string,
  outFile: string,
  type: GgufExportType,
  opts: ExportGgufOptions = {},
): ExportGgufResult {
  if (!(type in MATRIX_TYPE)) throw new Error(`unknown GGUF type ${type} (f32, bf16, q8_0, q4_0)`);
  const ckpt = new HfCheckpoint(inDir);
  try {
    const c = ckpt.config;
    const warnings: string[] = [];
    compatibility(c, warnings);
    const meta = metadata(c, type, opts.name ?? basename(inDir));
    const eos = c.eosTokenIds[0] ?? null;
    meta.push(
      ...tokenizerMetadata(inDir, {
        vocabSize: c.vocabSize,
        pre: opts.tokenizerPre,
        bosTokenId: c.bosTokenId,
        eosTokenId: eos,
        defaultAddBos: c.family === "llama4" || c.family === "mixtral",
      }),
    );
    let requantized = 0;
    const mt = MATRIX_TYPE[type];
    /** A matrix Weight -> bytes of ggml type `t`. */
    const encode = (w: Weight, t: number): Uint8Array => {
      if (t === GgmlType.F32) return toF32Bytes(w);
      if (t === GgmlType.BF16) return toBf16Bytes(w);
      const kind = t === GgmlType.Q8_0 ? "q8" : "q4";
      if (w.dtype === kind && w.scales) return joinGgmlBlocks(w.data, w.scales, kind);
      if (w.dtype === "q8" || w.dtype === "q4") requantized++;
      const f = dequantize(w);
      const q = kind === "q8" ? quantizeQ8(f, w.rows, w.cols) : quantizeQ4(f, w.rows, w.cols);
      return joinGgmlBlocks(q.data, q.scales, kind);
    };
    const qPerm = c.family === "mixtral" ? llamaQkPermutation(c.numHeads, c.headDim) : null;
    const kPerm = c.family === "mixtral" ? llamaQkPermutation(c.numKvHeads, c.headDim) : null;
    const tensors: GgufTensorToWrite[] = [];
    const factors = ropeFactors(c);
    if (factors) {
      tensors.push({
        name: GGUF_ROPE_FREQS,
        type: GgmlType.F32,
        dims: [factors.length],
        data: new Uint8Array(factors.buffer),
      });
    }
    for (const spec of denseSpecs(c)) {
      const f32 = spec.vector || spec.name.endsWith(".router");
      const t = f32 ? GgmlType.F32 : mt;
      if (!f32 && (t === GgmlType.Q8_0 || t === GgmlType.Q4_0) && spec.cols % 32 !== 0) {
        throw new Error(`${spec.name}: cols ${spec.cols} is not a multiple of 32, cannot export ${type}`);
      }
      tensors.push({
        name: ggufDenseName(spec.name),
        type: t,
        dims: spec.vector ? [spec.cols] : [spec.cols, spec.rows],
        fill: () => {
          let w = ckpt.loadDense(spec.name);
          if (spec.vector) return toF32Bytes(w);
          if (qPerm && /^l\d+\.q$/.test(spec.name)) w = permuteRows(w, qPerm);
          if (kPerm && /^l\d+\.k$/.test(spec.name)) w = permuteRows(w, kPerm);
          return encode(w, t);
        },
      });
    }
    c.moeLayers.forEach((moe, l) => {
      if (!moe) return;
      for (const p of EXPERT_PARTS) {
        const rows = p === "down" ? c.hiddenSize : c.expertFfn;
        const cols = p === "down" ? c.expertFfn : c.hiddenSize;
        tensors.push({
          name: ggufExpertName(l, p),
          type: mt,
          dims: [cols, rows, c.numExperts],
          // One expert at a time: a stacked tensor never sits in memory whole.
          fill: function* () {
            for (let e = 0; e < c.numExperts; e++) yield encode(ckpt.loadExpert(l, e)[p], mt);
          },
        });
      }
    });
    const bytes = writeGguf(outFile, meta, tensors);
    return { bytes, tensors: tensors.length, warnings, requantized };
  } finally {
    ckpt.close();
  }
}
