/**
 * A Hugging Face checkpoint folder (config.json + model.safetensors, or shards +
 * model.safetensors.index.json) behind the Checkpoint interface. On-disk names are mapped to the
 * canonical names of types.ts for llama4 (both `language_model.model.` and `model.` prefixes; fused
 * or per-expert experts), mixtral (block_sparse_moe.* and transformers-v5 fused mlp.experts.*) and
 * qwen3moe, plus our own quantized layout (`X.weight` I8/U8 + `X.weight_scale` F16, written by
 * tools/quantize.ts). Every tensor is checked against config.json when the folder is opened.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Weight, WeightDType } from "../device/device.js";
import { FormatError } from "../formats/errors.js";
import { SafetensorsFile, type SafetensorsTensorInfo } from "../formats/safetensors.js";
import { type DenseSpec, denseSpecs, EXPERT_PARTS, type ExpertPart, expertShapes } from "./canonical.js";
import { loadConfig } from "./config.js";
import type { ByteRange, Checkpoint, ExpertWeights, ModelConfig } from "./types.js";
import { floatElemBytes, sliceColumns, transposeBytes, vectorWeight } from "./weight-bytes.js";

interface StRef {
  file: SafetensorsFile;
  info: SafetensorsTensorInfo;
}

/** A matrix on disk: float, or our quantized data + f16 scales. */
interface MatRef {
  dtype: WeightDType;
  rows: number;
  cols: number;
  data: StRef;
  scale?: StRef;
}

interface ExpertLayout {
  ranges(e: number): ByteRange[];
  decode(e: number, bytes: Uint8Array[]): ExpertWeights;
}

/** quantization_config.quant_method of checkpoints written by tools/quantize.ts. */
export const QUANT_METHOD = "moe-edge-groupwise";

/** Per-expert on-disk names ([out,in] layout) for a family: what quantize writes. */
export function perExpertDiskName(
  family: ModelConfig["family"],
  prefix: string,
  layer: number,
  expert: number,
  part: ExpertPart,
): string {
  const b = `${prefix}layers.${layer}.`;
  if (family === "llama4") return `${b}feed_forward.experts.${expert}.${part}_proj.weight`;
  if (family === "mixtral") {
    return `${b}block_sparse_moe.experts.${expert}.${{ gate: "w1", up: "w3", down: "w2" }[part]}.weight`;
  }
  return `${b}mlp.experts.${expert}.${part}_proj.weight`;
}

const FLOAT_DTYPES: Record<string, WeightDType> = { F32: "f32", F16: "f16", BF16: "bf16" };

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export class HfCheckpoint implements Checkpoint {
  readonly config: ModelConfig;
  private readonly files: SafetensorsFile[] = [];
  private readonly byPath = new Map<string, SafetensorsFile>();
  private readonly tensors = new Map<string, StRef>();
  private readonly dense = new Map<string, { spec: DenseSpec; ref: MatRef }>();
  private readonly experts = new Map<number, ExpertLayout>();
  /** On-disk prefix of the decoder: "model." or "language_model.model." (Llama 4 multimodal). */
  readonly prefix: string;
  private readonly lmHeadName: string;

  /** Opens the folder; on any error every file opened so far is closed again. */
  constructor(readonly path: string) {
    this.config = loadConfig(path);
    const q = this.config.raw.quantization_config as { quant_method?: unknown } | undefined;
    if (q && q.quant_method !== QUANT_METHOD) {
      throw new FormatError(
        join(path, "config.json"),
        `unsupported quantization_config.quant_method ${JSON.stringify(q.quant_method)} (only ${QUANT_METHOD})`,
      );
    }
    try {
      this.openFiles();
      const hasLm = this.tensors.has("language_model.model.embed_tokens.weight");
      this.prefix = hasLm ? "language_model.model." : "model.";
      this.lmHeadName = hasLm ? "language_model.lm_head.weight" : "lm_head.weight";
      for (const spec of denseSpecs(this.config))
        this.dense.set(spec.name, { spec, ref: this.resolveDense(spec) });
      this.config.moeLayers.forEach((moe, l) => {
        if (moe) this.experts.set(l, this.resolveExperts(l));
      });
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private openFiles(): void {
    const indexPath = join(this.path, "model.safetensors.index.json");
    const single = join(this.path, "model.safetensors");
    let shards: string[];
    let weightMap: Record<string, string> | null = null;
    if (existsSync(indexPath)) {
      let idx: unknown;
      try {
        idx = JSON.parse(readFileSync(indexPath, "utf8"));
      } catch (e) {
        throw new FormatError(indexPath, `invalid JSON (${(e as Error).message})`);
      }
      const wm = (idx as { weight_map?: unknown })?.weight_map;
      if (typeof wm !== "object" || wm === null)
        throw new FormatError(indexPath, "missing weight_map object");
      weightMap = wm as Record<string, string>;
      shards = [...new Set(Object.values(weightMap))].sort();
    } else if (existsSync(single)) {
      shards = ["model.safetensors"];
    } else {
      throw new FormatError(
        this.path,
        "no model.safetensors or model.safetensors.index.json in checkpoint folder",
      );
    }
    for (const s of shards) {
      if (typeof s !== "string" || s.includes("/") || s.includes("\\")) {
        throw new FormatError(indexPath, `invalid shard file name ${JSON.stringify(s)}`);
      }
      const f = new SafetensorsFile(join(this.path, s));
      this.files.push(f);
      this.byPath.set(f.path, f);
      for (const info of f.header.tensors.values()) {
        const prev = this.tensors.get(info.name);
        if (prev) throw new FormatError(f.path, `tensor also present in ${prev.file.path}`, info.name);
        this.tensors.set(info.name, { file: f, info });
      }
    }
    if (weightMap) {
      for (const [name, shard] of Object.entries(weightMap)) {
        const ref = this.tensors.get(name);
        if (!ref || ref.file.path !== join(this.path, shard)) {
          throw new FormatError(indexPath, `weight_map says ${shard} but the tensor is not there`, name);
        }
      }
    }
  }

  // ------------------------------------------------------------ name mapping

  private layerBase(l: number): string {
    return `${this.prefix}layers.${l}.`;
  }

  /** On-disk name candidates for a dense canonical name, most common first. */
  private diskNames(name: string): string[] {
    const fam = this.config.family;
    if (name === "embed") return [`${this.prefix}embed_tokens.weight`];
    if (name === "norm") return [`${this.prefix}norm.weight`];
    if (name === "lm_head") return [this.lmHeadName];
    const m = /^l(\d+)\.(.+)$/.exec(name);
    if (!m) throw new Error(`unknown canonical tensor ${name}`);
    const b = this.layerBase(Number(m[1]));
    const rest = m[2];
    const attn: Record<string, string> = {
      attn_norm: "input_layernorm.weight",
      ffn_norm: "post_attention_layernorm.weight",
      q: "self_attn.q_proj.weight",
      k: "self_attn.k_proj.weight",
      v: "self_attn.v_proj.weight",
      o: "self_attn.o_proj.weight",
      q_norm: "self_attn.q_norm.weight",
      k_norm: "self_attn.k_norm.weight",
    };
    if (attn[rest]) return [b + attn[rest]];
    const ffn = fam === "llama4" ? "feed_forward" : "mlp";
    if (rest === "router") {
      if (fam === "llama4") return [`${b}feed_forward.router.weight`];
      if (fam === "mixtral") return [`${b}block_sparse_moe.gate.weight`, `${b}mlp.gate.weight`];
      return [`${b}mlp.gate.weight`];
    }
    const sh = /^shexp\.(gate|up|down)$/.exec(rest);
    if (sh) return [`${b}feed_forward.shared_expert.${sh[1]}_proj.weight`];
    const mlp = /^mlp\.(gate|up|down)$/.exec(rest);
    if (mlp) return [`${b}${ffn}.${mlp[1]}_proj.weight`];
    throw new Error(`unknown canonical tensor ${name}`);
  }

  private find(cands: string[], canonical: string): string {
    for (const c of cands) if (this.tensors.has(c)) return c;
    throw new FormatError(this.path, `missing tensor (looked for ${cands.join(" or ")})`, canonical);
  }

  /** Resolve and shape-check a matrix stored as float, or as our q8/q4 layout. */
  private matrix(name: string, rows: number, cols: number): MatRef {
    const data = this.tensors.get(name)!;
    const { dtype, shape } = data.info;
    const where = data.file.path;
    const scale = this.tensors.get(`${name}_scale`);
    if (scale) {
      const kind = dtype === "I8" ? "q8" : dtype === "U8" ? "q4" : null;
      if (!kind) throw new FormatError(where, `quantized tensor must be I8 or U8, got ${dtype}`, name);
      if (cols % 32 !== 0)
        throw new FormatError(where, `quantized tensor needs cols % 32 == 0 (cols ${cols})`, name);
      const want = kind === "q8" ? [rows, cols] : [rows, cols / 2];
      if (!sameShape(shape, want)) {
        throw new FormatError(
          where,
          `shape [${shape}] disagrees with config.json (expected [${want}] for ${kind})`,
          name,
        );
      }
      if (scale.info.dtype !== "F16" || !sameShape(scale.info.shape, [rows, cols / 32])) {
        throw new FormatError(
          scale.file.path,
          `scale must be F16 [${rows},${cols / 32}], got ${scale.info.dtype} [${scale.info.shape}]`,
          `${name}_scale`,
        );
      }
      return { dtype: kind, rows, cols, data, scale };
    }
    const fd = FLOAT_DTYPES[dtype];
    if (!fd)
      throw new FormatError(
        where,
        `unsupported dtype ${dtype} (need F32, F16, BF16, or I8/U8 with _scale)`,
        name,
      );
    if (!sameShape(shape, [rows, cols])) {
      throw new FormatError(
        where,
        `shape [${shape}] disagrees with config.json (expected [${rows},${cols}])`,
        name,
      );
    }
    return { dtype: fd, rows, cols, data };
  }

  private resolveDense(spec: DenseSpec): MatRef {
    const name = this.find(this.diskNames(spec.name), spec.name);
    if (!spec.vector) return this.matrix(name, spec.rows, spec.cols);
    const data = this.tensors.get(name)!;
    const fd = FLOAT_DTYPES[data.info.dtype];
    if (!fd)
      throw new FormatError(data.file.path, `unsupported dtype ${data.info.dtype} for a norm weight`, name);
    if (!sameShape(data.info.shape, [spec.cols])) {
      throw new FormatError(
        data.file.path,
        `shape [${data.info.shape}] disagrees with config.json (expected [${spec.cols}])`,
        name,
      );
    }
    return { dtype: fd, rows: 1, cols: spec.cols, data };
  }

  private resolveExperts(l: number): ExpertLayout {
    const c = this.config;
    const b = this.layerBase(l);
    const E = c.numExperts;
    const I = c.expertFfn;
    const H = c.hiddenSize;
    const shapes = expertShapes(c);
    // Fused stacks: Llama 4 [E,H,2I] + [E,I,H] (in,out); transformers v5 [E,2I,H] + [E,H,I] (out,in).
    const fusedBase = c.family === "llama4" ? `${b}feed_forward.experts.` : `${b}mlp.experts.`;
    const gu = this.tensors.get(`${fusedBase}gate_up_proj`);
    if (gu) {
      const down = this.tensors.get(`${fusedBase}down_proj`);
      if (!down) throw new FormatError(this.path, "missing tensor", `${fusedBase}down_proj`);
      return this.fusedLayout(gu, down, c.family === "llama4", E, I, H);
    }
    const perExpert = (e: number, part: ExpertPart): string[] => {
      if (c.family === "mixtral") {
        const w = { gate: "w1", up: "w3", down: "w2" }[part];
        return [`${b}block_sparse_moe.experts.${e}.${w}.weight`, `${b}mlp.experts.${e}.${part}_proj.weight`];
      }
      return [`${fusedBase}${e}.${part}_proj.weight`];
    };
    const refs: MatRef[][] = [];
    for (let e = 0; e < E; e++) {
      refs.push(
        EXPERT_PARTS.map((p) => {
          const canonical = `l${l}.expert${e}.${p}`;
          const n = this.find(perExpert(e, p), canonical);
          return this.matrix(n, shapes[p][0], shapes[p][1]);
        }),
      );
    }
    return {
      ranges: (e) =>
        refs[e].flatMap((r) => [
          { file: r.data.file.path, offset: r.data.info.offset, length: r.data.info.nbytes },
          ...(r.scale
            ? [{ file: r.scale.file.path, offset: r.scale.info.offset, length: r.scale.info.nbytes }]
            : []),
        ]),
      decode: (e, bytes) => {
        let k = 0;
        const take = (r: MatRef): Weight => {
          const data = bytes[k++];
          const w: Weight = { dtype: r.dtype, rows: r.rows, cols: r.cols, data };
          if (r.scale) w.scales = bytes[k++];
          return w;
        };
        const [gate, up, down] = refs[e].map(take);
        return { gate, up, down };
      },
    };
  }

  private fusedLayout(gu: StRef, down: StRef, inOut: boolean, E: number, I: number, H: number): ExpertLayout {
    const guShape = inOut ? [E, H, 2 * I] : [E, 2 * I, H];
    const dnShape = inOut ? [E, I, H] : [E, H, I];
    for (const [ref, want] of [
      [gu, guShape],
      [down, dnShape],
    ] as const) {
      if (!FLOAT_DTYPES[ref.info.dtype]) {
        throw new FormatError(
          ref.file.path,
          `unsupported dtype ${ref.info.dtype} for fused experts`,
          ref.info.name,
        );
      }
      if (!sameShape(ref.info.shape, want)) {
        throw new FormatError(
          ref.file.path,
          `shape [${ref.info.shape}] disagrees with config.json (expected [${want}])`,
          ref.info.name,
        );
      }
    }
    const dtype = FLOAT_DTYPES[gu.info.dtype];
    const dDtype = FLOAT_DTYPES[down.info.dtype];
    const es = floatElemBytes(dtype);
    const des = floatElemBytes(dDtype);
    const guLen = gu.info.nbytes / E;
    const dnLen = down.info.nbytes / E;
    return {
      ranges: (e) => [
        { file: gu.file.path, offset: gu.info.offset + e * guLen, length: guLen },
        { file: down.file.path, offset: down.info.offset + e * dnLen, length: dnLen },
      ],
      decode: (_e, [g, d]) => {
        if (inOut) {
          // [H, 2I] (in,out): gate = first I columns, up = last I; transpose to [out,in].
          const gate = transposeBytes(sliceColumns(g, H, 2 * I, 0, I, es), H, I, es);
          const up = transposeBytes(sliceColumns(g, H, 2 * I, I, I, es), H, I, es);
          return {
            gate: { dtype, rows: I, cols: H, data: gate },
            up: { dtype, rows: I, cols: H, data: up },
            down: { dtype: dDtype, rows: H, cols: I, data: transposeBytes(d, I, H, des) },
          };
        }
        // [2I, H] (out,in): gate rows first.
        return {
          gate: { dtype, rows: I, cols: H, data: g.slice(0, I * H * es) },
          up: { dtype, rows: I, cols: H, data: g.slice(I * H * es) },
          down: { dtype: dDtype, rows: H, cols: I, data: d },
        };
      },
    };
  }

  /** The on-disk name holding a dense canonical tensor (its data part when quantized). */
  diskName(canonical: string): string {
    const d = this.dense.get(canonical);
    if (!d) throw new FormatError(this.path, "no such dense tensor in this model", canonical);
    return d.ref.data.info.name;
  }

  /** Element dtype of a dense tensor as stored (vectors report their stored float type). */
  storedDtype(canonical: string): WeightDType {
    const d = this.dense.get(canonical);
    if (!d) throw new FormatError(this.path, "no such dense tensor in this model", canonical);
    return d.ref.dtype;
  }

  // ------------------------------------------------------------ Checkpoint

  has(name: string): boolean {
    return this.dense.has(name);
  }

  loadDense(name: string): Weight {
    const d = this.dense.get(name);
    if (!d) throw new FormatError(this.path, "no such dense tensor in this model", name);
    const { ref, spec } = d;
    const data = ref.data.file.read(ref.data.info.name);
    if (spec.vector) return vectorWeight(ref.dtype as "f32" | "f16" | "bf16", data);
    const w: Weight = { dtype: ref.dtype, rows: ref.rows, cols: ref.cols, data };
    if (ref.scale) w.scales = ref.scale.file.read(ref.scale.info.name);
    return w;
  }

  private layout(layer: number, expert: number): ExpertLayout {
    const lay = this.experts.get(layer);
    if (!lay) throw new FormatError(this.path, `layer ${layer} has no routed experts`);
    if (!Number.isInteger(expert) || expert < 0 || expert >= this.config.numExperts) {
      throw new FormatError(this.path, `expert ${expert} out of range (0..${this.config.numExperts - 1})`);
    }
    return lay;
  }

  expertRanges(layer: number, expert: number): ByteRange[] {
    return this.layout(layer, expert).ranges(expert);
  }

  decodeExpert(layer: number, expert: number, bytes: Uint8Array[]): ExpertWeights {
    const lay = this.layout(layer, expert);
    const ranges = lay.ranges(expert);
    if (bytes.length !== ranges.length || bytes.some((b, i) => b.length !== ranges[i].length)) {
      throw new FormatError(
        this.path,
        `decodeExpert(${layer}, ${expert}): byte buffers do not match expertRanges`,
      );
    }
    return lay.decode(expert, bytes);
  }

  loadExpert(layer: number, expert: number): ExpertWeights {
    const ranges = this.expertRanges(layer, expert);
    const bytes = ranges.map((r) => this.byPath.get(r.file)!.readRange(r.offset, r.length));
    return this.decodeExpert(layer, expert, bytes);
  }

  close(): void {
    for (const f of this.files) {
      try {
        f.close();
      } catch {
        // keep closing the rest
      }
    }
  }
}
