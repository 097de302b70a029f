/**
 * quantizeCheckpoint(inDir, outDir, bits): a quantized copy of a Hugging Face checkpoint in our
 * group-wise layout (read back by model/checkpoint-hf.ts):
 *   X.weight        I8 [rows, cols] (bits 8) or U8 [rows, cols/2] (bits 4; nibbles as GGUF Q4_0)
 *   X.weight_scale  F16 [rows, cols/32]
 * Quantized: every matrix (attention, dense/shared FFN, routed experts, embeddings and lm_head).
 * Kept as stored: routers (small, and routing decisions are sensitive to them) and norm vectors.
 * Llama 4 fused experts are rewritten first into per-expert `experts.{e}.{gate,up,down}_proj.weight`
 * [out,in], so groups run along the input dimension and each expert is one contiguous range.
 * Tensors stream one at a time; tokenizer and other side files are copied unchanged.
 */
import { copyFileSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Weight } from "../device/device.js";
import { dequantize, quantizeQ4, quantizeQ8 } from "../device/f16.js";
import { type TensorToWrite, writeShardedSafetensors } from "../formats/safetensors.js";
import { denseSpecs, EXPERT_PARTS } from "../model/canonical.js";
import { HfCheckpoint, perExpertDiskName, QUANT_METHOD } from "../model/checkpoint-hf.js";
import { stringifyConfig } from "../model/config-json.js";

export type QuantBits = 8 | 4;

export interface QuantizeOptions {
  /** Split into shards above this many bytes (default 4 GiB). */
  maxShardBytes?: number;
}

export interface QuantizeResult {
  files: string[];
  totalBytes: number;
  quantized: number;
  kept: number;
}

/** Skip these when copying side files: they are rewritten. */
function isModelFile(name: string): boolean {
  return name.endsWith(".safetensors") || name === "model.safetensors.index.json" || name === "config.json";
}

function quantizeWeight(w: Weight, bits: QuantBits): { data: Uint8Array; scales: Uint8Array } {
  const kind = bits === 8 ? "q8" : "q4";
  if (w.dtype === kind && w.scales) return { data: w.data, scales: w.scales }; // already in this layout
  const f = dequantize(w);
  return bits === 8 ? quantizeQ8(f, w.rows, w.cols) : quantizeQ4(f, w.rows, w.cols);
}

export function quantizeCheckpoint(
  inDir: string,
  outDir: string,
  bits: QuantBits,
  opts: QuantizeOptions = {},
): QuantizeResult {
  if (bits !== 8 && bits !== 4) throw new Error(`bits must be 8 or 4, got ${bits}`);
  const ckpt = new HfCheckpoint(inDir);
  try {
    const c = ckpt.config;
    const tensors: TensorToWrite[] = [];
    let quantized = 0;
    let kept = 0;
    // One source weight quantized at a time: the data and scale tensors that follow it share it.
    let cacheKey = "";
    let cacheVal: { data: Uint8Array; scales: Uint8Array } | null = null;
    const cached = (key: string, make: () => { data: Uint8Array; scales: Uint8Array }) => {
      if (cacheKey !== key) {
        cacheVal = make();
        cacheKey = key;
      }
      return cacheVal!;
    };
    const pushQuant = (name: string, rows: number, cols: number, key: string, load: () => Weight) => {
      if (cols % 32 !== 0) throw new Error(`${name}: cols ${cols} is not a multiple of 32, cannot quantize`);
      tensors.push({
        name,
        dtype: bits === 8 ? "I8" : "U8",
        shape: [rows, bits === 8 ? cols : cols / 2],
        fill: () => cached(key, () => quantizeWeight(load(), bits)).data,
      });
      tensors.push({
        name: `${name}_scale`,
        dtype: "F16",
        shape: [rows, cols / 32],
        fill: () => cached(key, () => quantizeWeight(load(), bits)).scales,
      });
      quantized++;
    };
    for (const spec of denseSpecs(c)) {
      const name = ckpt.diskName(spec.name);
      const keep = spec.vector || spec.name.endsWith(".router");
      if (keep) {
        const dt = ckpt.storedDtype(spec.name);
        if (dt === "q8" || dt === "q4")
          throw new Error(`${name}: router/norm stored quantized is not supported`);
        tensors.push({
          name,
          dtype: spec.vector ? "F32" : ({ f32: "F32", f16: "F16", bf16: "BF16" } as const)[dt],
          shape: spec.vector ? [spec.cols] : [spec.rows, spec.cols],
          fill: () => ckpt.loadDense(spec.name).data,
        });
        kept++;
      } else pushQuant(name, spec.rows, spec.cols, spec.name, () => ckpt.loadDense(spec.name));
    }
    c.moeLayers.forEach((moe, l) => {
      if (!moe) return;
      for (let e = 0; e < c.numExperts; e++) {
        // One positioned read per expert (all three parts), reused by its six output tensors.
        let trio: Record<string, Weight> | null = null;
        let trioKey = "";
        const part = (p: (typeof EXPERT_PARTS)[number]) => () => {
          const key = `${l}.${e}`;
          if (trioKey !== key) {
            const w = ckpt.loadExpert(l, e);
            trio = { gate: w.gate, up: w.up, down: w.down };
            trioKey = key;
          }
          return trio![p];
        };
        for (const p of EXPERT_PARTS) {
          const rows = p === "down" ? c.hiddenSize : c.expertFfn;
          const cols = p === "down" ? c.expertFfn : c.hiddenSize;
          pushQuant(
            perExpertDiskName(c.family, ckpt.prefix, l, e, p),
            rows,
            cols,
            `x${l}.${e}.${p}`,
            part(p),
          );
        }
      }
    });
    mkdirSync(outDir, { recursive: true });
    const res = writeShardedSafetensors(outDir, tensors, {
      maxShardBytes: opts.maxShardBytes ?? 4 * 1024 ** 3,
      keepOrder: true,
    });
    const raw = {
      ...c.raw,
      quantization_config: { quant_method: QUANT_METHOD, bits, group_size: 32, modules: "experts+dense" },
    };
    writeFileSync(join(outDir, "config.json"), stringifyConfig(raw));
    for (const f of readdirSync(inDir)) {
      if (isModelFile(f)) continue;
      const src = join(inDir, f);
      if (statSync(src).isFile()) copyFileSync(src, join(outDir, f));
    }
    return { files: res.files, totalBytes: res.totalSize, quantized, kept };
  } finally {
    ckpt.close();
  }
}
