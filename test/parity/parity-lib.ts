import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type LlamaCppResult, runLlamaCpp } from "../../bench/lib/llamacpp.js";
import { CpuDevice } from "../../gpu-backend/device/cpu/cpu-device.js";
import type { Device } from "../../gpu-backend/device/device.js";
import { f32ToBf16Array } from "../../gpu-backend/device/f16.js";
import { greedyParams } from "../../gpu-backend/engine/greedy.js";
import { KvCache } from "../../gpu-backend/engine/kv-cache.js";
import { loadEngine } from "../../gpu-backend/engine/load-engine.js";
import { MoeTransformer } from "../../gpu-backend/engine/model.js";
import { EagerExpertProvider } from "../../gpu-backend/experts/eager-provider.js";
import { openCheckpoint } from "../../gpu-backend/model/checkpoint.js";

/**
 * Greedy parity of our engine against llama.cpp on the same weights: generate checkpoints with
 * `npm run model -- make`, export them to GGUF, run both from token ids, compare ids and logits.
 */

export const ROOT = resolve(import.meta.dirname, "..", "..");

export interface ParityCase {
  /** Case name (family + variant). */
  name: string;
  family: "llama4" | "mixtral" | "qwen3moe";
  preset: string;
  /**
   * config.json overrides, chosen within what the real family allows so that llama.cpp's
   * hard-coded assumptions hold (see the notes beside each case).
   */
  config: Record<string, unknown>;
  seed: number;
  /**
   * A case that differs from llama.cpp on purpose (a config llama.cpp cannot express): not run by
   * default; it shows the harness notices a real semantic difference.
   */
  diagnostic?: string;
  /** A larger model (the `default` preset, ~100 MB): run by `npm run parity`, not by the test. */
  larger?: boolean;
}

/**
 * llama.cpp hard-codes parts of each architecture instead of reading them from GGUF metadata
 * (read in the bundled llama.cpp source, node-llama-cpp 3.22.1 = llama.cpp release v0.5.0):
 * - llama4 (src/models/llama4.cpp): chunked attention of 8192 on RoPE layers, NoPE on every
 *   4th layer ((il+1) % 4 == 0), temperature tuning floor 8192 / scale 0.1, qk-norm on RoPE
 *   layers unless the model has exactly 128 experts, MoE layer iff (il+1) % interleave_step == 0.
 * - qwen3moe (src/models/qwen3moe.cpp): every layer MoE; top-k weights always renormalised
 *   (norm_w = true) whatever norm_topk_prob says.
 * - llama (Mixtral): softmax routing, renormalised top-k; RoPE NORM (adjacent pairs), so the
 *   exporter must permute q/k rows from the Hugging Face rotate_half order.
 */
export const PARITY_CASES: ParityCase[] = [
  {
    name: "llama4-scout-like",
    family: "llama4",
    preset: "tiny",
    // Scout: every layer MoE, qk-norm, llama3 RoPE scaling, NoPE on layer 3. The tiny preset's
    // chunk of 16 (to exercise chunking) is replaced by llama.cpp's hard-coded 8192.
    config: { attention_chunk_size: 8192 },
    seed: 11,
  },
  {
    name: "llama4-maverick-like",
    family: "llama4",
    preset: "tiny-maverick",
    // Maverick: MoE on odd layers (dense FFN of intermediate_size_mlp on the others), no qk-norm.
    // llama.cpp turns the qk-norm off only for exactly 128 experts (Maverick's count).
    config: { attention_chunk_size: 8192, num_local_experts: 128 },
    seed: 12,
  },
  { name: "mixtral", family: "mixtral", preset: "tiny", config: {}, seed: 13 },
  // The `default` presets (hidden 256, 8 layers, vocab 4096): wider heads and matrices than tiny.
  { name: "llama4-default", family: "llama4", preset: "default", config: {}, seed: 21, larger: true },
  { name: "mixtral-default", family: "mixtral", preset: "default", config: {}, seed: 23, larger: true },
  { name: "qwen3moe-default", family: "qwen3moe", preset: "default", config: {}, seed: 24, larger: true },
  {
    name: "llama4-chunk16",
    family: "llama4",
    preset: "tiny",
    // The tiny preset as is: chunked attention of 16 on RoPE layers. llama.cpp ignores the
    // config and uses 8192, so positions >= 16 attend differently.
    config: {},
    seed: 15,
    diagnostic: "llama.cpp hard-codes attention_chunk_size 8192; this model uses 16",
  },
  {
    name: "qwen3moe",
    family: "qwen3moe",
    preset: "tiny",
    // llama.cpp's qwen3moe has no dense layers: drop the tiny preset's mlp_only_layers [0].
    // norm_topk_prob stays true (as in Qwen3-30B-A3B; llama.cpp always renormalises).
    config: { mlp_only_layers: [], norm_topk_prob: true },
    seed: 14,
  },
];

/** Deterministic prompts of different lengths (ids spread over the vocabulary). */
export function parityPrompts(vocab: number, lengths: number[], seed: number): number[][] {
  let s = seed >>> 0 || 1;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
  return lengths.map((n) => Array.from({ length: n }, () => next() % vocab));
}

function run(args: string[]): void {
  const r = spawnSync(process.execPath, ["--import", "tsx", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
  });
  if (r.status !== 0) {
    throw new Error(`${args.join(" ")} failed (${r.status}):\n${(r.stderr || r.stdout).slice(-3000)}`);
  }
}

/** Make the checkpoint and its GGUF exports under `dir` (reused when already there). */
export function prepareCase(
  c: ParityCase,
  dir: string,
  ggufTypes: string[],
): { hf: string; gguf: Record<string, string> } {
  const hf = join(dir, "hf");
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(hf, "config.json"))) {
    const cfgPath = join(dir, "overrides.json");
    writeFileSync(cfgPath, JSON.stringify(c.config));
    run([
      "gpu-backend/tools/model-cli.ts",
      "make",
      "--family",
      c.family,
      "--preset",
      c.preset,
      "--config",
      cfgPath,
      "--seed",
      String(c.seed),
      "--dtype",
      "f32",
      "--out",
      hf,
    ]);
  }
  const gguf: Record<string, string> = {};
  for (const t of ggufTypes) {
    // Inside the HF folder: our GGUF loader reads the tokenizer files beside the .gguf.
    const file = join(hf, `model-${t}.gguf`);
    if (!existsSync(file) || statSync(file).size === 0) {
      run(["gpu-backend/tools/model-cli.ts", "export-gguf", "--in", hf, "--out", file, "--type", t]);
    }
    gguf[t] = file;
  }
  return { hf, gguf };
}

export interface OursResult {
  ids: number[];
  firstLogits: Float32Array;
  /** Logits after each of `teacher`'s tokens but the last (teacher-forced), when asked. */
  stepLogits?: Float32Array[];
}

/** Our engine, greedy through the product path (engine.generate) + raw logits from the model. */
export async function runOurs(
  modelPath: string,
  prompts: number[][],
  maxTokens: number,
  teachers?: number[][],
): Promise<OursResult[]> {
  const engine = await loadEngine(modelPath, { threads: 2 });
  try {
    const params = greedyParams(maxTokens);
    const out: OursResult[] = [];
    for (let p = 0; p < prompts.length; p++) {
      const ids: number[] = [];
      for await (const ev of engine.generate(prompts[p], params)) ids.push(ev.tokenId);
      const cache = new KvCache(engine.model.config, prompts[p].length + maxTokens);
      const firstLogits = Float32Array.from(await engine.model.forward(prompts[p], cache));
      const r: OursResult = { ids, firstLogits };
      const teacher = teachers?.[p];
      if (teacher) {
        r.stepLogits = [];
        for (let i = 0; i + 1 < teacher.length; i++) {
          r.stepLogits.push(Float32Array.from(await engine.model.forward([teacher[i]], cache)));
        }
      }
      out.push(r);
    }
    return out;
  } finally {
    engine.close();
  }
}

/**
 * llama.cpp's CPU backend multiplies BF16 weights by activations rounded to BF16 (ggml-cpu.c:
 * type_traits_cpu[GGML_TYPE_BF16].vec_dot_type = GGML_TYPE_BF16); we keep f32 activations. This
 * device does what llama.cpp does (round x to bf16, round-to-nearest-even, before a bf16
 * matmul), so a bf16 difference can be attributed to that rounding alone.
 */
function bf16ActivationDevice(inner: CpuDevice): Device {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === "matmul") {
        return (out: Float32Array, x: Float32Array, n: number, w: Parameters<Device["matmul"]>[3]) => {
          let xx = x;
          if (w.dtype === "bf16") {
            const len = n * w.cols;
            const b = f32ToBf16Array(x.subarray(0, len));
            xx = new Float32Array(new Uint32Array(Array.from(b, (h) => h << 16)).buffer);
          }
          target.matmul(out, xx, n, w);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  }) as Device;
}

/** Greedy with our model on a device that rounds bf16-matmul inputs like llama.cpp. */
export async function runOursBf16Activations(
  modelPath: string,
  prompts: number[][],
  maxTokens: number,
  teachers?: number[][],
): Promise<OursResult[]> {
  const ckpt = openCheckpoint(modelPath);
  const device = bf16ActivationDevice(new CpuDevice({ threads: 2 }));
  const experts = new EagerExpertProvider(ckpt, device);
  const model = new MoeTransformer(ckpt, device, experts);
  ckpt.close();
  const out: OursResult[] = [];
  for (let p = 0; p < prompts.length; p++) {
    let cache = new KvCache(model.config, prompts[p].length + maxTokens);
    const firstLogits = Float32Array.from(await model.forward(prompts[p], cache));
    const ids = [argmax(firstLogits)];
    while (ids.length < maxTokens) ids.push(argmax(await model.forward([ids[ids.length - 1]], cache)));
    const r: OursResult = { ids, firstLogits };
    const teacher = teachers?.[p];
    if (teacher) {
      cache = new KvCache(model.config, prompts[p].length + maxTokens);
      await model.forward(prompts[p], cache);
      r.stepLogits = [];
      for (let i = 0; i + 1 < teacher.length; i++) {
        r.stepLogits.push(Float32Array.from(await model.forward([teacher[i]], cache)));
      }
    }
    out.push(r);
  }
  experts.close();
  return out;
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** Largest minus second-largest logit: how close a greedy choice was to a tie. */
export function topMargin(a: ArrayLike<number>): number {
  let m1 = Number.NEGATIVE_INFINITY;
  let m2 = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < a.length; i++) {
    if (a[i] > m1) {
      m2 = m1;
      m1 = a[i];
    } else if (a[i] > m2) m2 = a[i];
  }
  return m1 - m2;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export interface PromptComparison {
  case: string;
  /** Which weights each side ran: "hf" (our loader on the HF folder) or "gguf-<type>". */
  ours: string;
  llamacpp: string;
  promptLen: number;
  match: boolean;
  /** Distinct ids in llama.cpp's generation (a model stuck on one token would prove little). */
  distinctIds: number;
  /** First generated position where the ids differ (-1 = none). */
  firstDiff: number;
  firstLogitsMaxAbsDiff: number;
  /** Scale of the logits (max |logit| of llama.cpp's first logits), to read the diff against. */
  firstLogitsMaxAbs: number;
  /** Largest teacher-forced logit difference over the compared steps (when step logits ran). */
  stepLogitsMaxAbsDiff?: number;
  /** At the first differing step: llama.cpp's top-1 minus top-2 logit (tiny = near-tie). */
  marginAtDiff?: number;
  /** Largest logit difference from the first token up to and including the first differing step. */
  diffUpToDiff?: number;
  /**
   * identical: same ids. near-tie: the ids part where llama.cpp's top-2 logits are closer than
   * twice the engines' logit difference up to that step (rounding decides the tie), and those
   * logits agree to 2% of their scale. DIVERGED: anything else (a semantic difference). Later
   * steps may differ more (a rounding-level flip of a router choice changes a whole expert).
   */
  status?: "identical" | "near-tie" | "DIVERGED";
}

export function classify(r: PromptComparison): NonNullable<PromptComparison["status"]> {
  if (r.match) return "identical";
  const d = r.diffUpToDiff;
  const small = d !== undefined && d <= 0.02 * Math.max(1, r.firstLogitsMaxAbs);
  if (small && r.marginAtDiff !== undefined && r.marginAtDiff <= 2 * d) return "near-tie";
  return "DIVERGED";
}

/** Compare one side's generations with llama.cpp's for the same prompts. */
export function compare(
  caseName: string,
  oursLabel: string,
  llamaLabel: string,
  ours: OursResult[],
  ref: LlamaCppResult[],
): PromptComparison[] {
  return ref.map((r, p) => {
    const o = ours[p];
    let firstDiff = -1;
    for (let i = 0; i < r.ids.length; i++) {
      if (o.ids[i] !== r.ids[i]) {
        firstDiff = i;
        break;
      }
    }
    const first = r.first_logits ?? [];
    const cmp: PromptComparison = {
      case: caseName,
      ours: oursLabel,
      llamacpp: llamaLabel,
      promptLen: r.prompt_ids.length,
      match: firstDiff === -1 && o.ids.length === r.ids.length,
      distinctIds: new Set(r.ids).size,
      firstDiff,
      firstLogitsMaxAbsDiff: maxAbsDiff(o.firstLogits, first),
      firstLogitsMaxAbs: first.reduce((m, x) => Math.max(m, Math.abs(x)), 0),
    };
    if (o.stepLogits && r.step_logits) {
      let m = 0;
      for (let i = 0; i < Math.min(o.stepLogits.length, r.step_logits.length); i++) {
        m = Math.max(m, maxAbsDiff(o.stepLogits[i], r.step_logits[i]));
      }
      cmp.stepLogitsMaxAbsDiff = m;
      if (firstDiff >= 0) {
        const at = firstDiff === 0 ? first : r.step_logits[firstDiff - 1];
        if (at) cmp.marginAtDiff = topMargin(at);
        let upTo = cmp.firstLogitsMaxAbsDiff;
        for (let i = 0; i < firstDiff && i < o.stepLogits.length; i++) {
          upTo = Math.max(upTo, maxAbsDiff(o.stepLogits[i], r.step_logits[i]));
        }
        cmp.diffUpToDiff = upTo;
      }
    }
    return cmp;
  });
}

export interface ParityOptions {
  cacheDir: string;
  maxTokens: number;
  promptLengths: number[];
  ggufTypes: string[];
  cases: ParityCase[];
  /** Also compute teacher-forced logits at every step (slower; locates divergences). */
  stepLogits: boolean;
  /** Also run ours with llama.cpp's bf16 activation rounding on bf16 GGUFs (diagnosis). */
  emulateBf16?: boolean;
  log?: (line: string) => void;
}

/** Run every case: ours (HF folder and each GGUF) against llama.cpp (each GGUF). */
export async function runParity(opts: ParityOptions): Promise<PromptComparison[]> {
  const log = opts.log ?? (() => {});
  const rows: PromptComparison[] = [];
  for (const c of opts.cases) {
    const dir = join(opts.cacheDir, c.name);
    log(`[${c.name}] make + export (${opts.ggufTypes.join(", ")})`);
    let prepared: ReturnType<typeof prepareCase>;
    try {
      prepared = prepareCase(c, dir, opts.ggufTypes);
    } catch (e) {
      log(`[${c.name}] preparation failed: ${(e as Error).message}`);
      throw e;
    }
    const { vocab, hfDtype } = readHfFacts(prepared.hf);
    const prompts = parityPrompts(vocab, opts.promptLengths, c.seed * 7919);
    for (const t of opts.ggufTypes) {
      log(`[${c.name}] llama.cpp on gguf-${t}`);
      const ref = await runLlamaCpp({
        model: prepared.gguf[t],
        prompts,
        maxTokens: opts.maxTokens,
        threads: 2,
        logits: opts.stepLogits ? "all" : "first",
        kvType: "F32",
      });
      const teachers = opts.stepLogits ? ref.results.map((r) => r.ids) : undefined;
      const side = async (
        path: string,
        label: string,
        runner: typeof runOurs = runOurs,
      ): Promise<PromptComparison[]> => {
        log(`[${c.name}] ours on ${label}`);
        const cmp = compare(
          c.name,
          label,
          `gguf-${t}`,
          await runner(path, prompts, opts.maxTokens, teachers),
          ref.results,
        );
        const bad = cmp.flatMap((r, i) => (r.match || r.stepLogitsMaxAbsDiff !== undefined ? [] : [i]));
        if (bad.length > 0) {
          // Locate each divergence: logits at every step, both engines fed llama.cpp's ids.
          log(`[${c.name}] ${label}: ${bad.length} generation(s) differ; comparing teacher-forced logits`);
          const sub = bad.map((i) => prompts[i]);
          const refSteps = await runLlamaCpp({
            model: prepared.gguf[t],
            prompts: sub,
            maxTokens: opts.maxTokens,
            threads: 2,
            logits: "all",
            kvType: "F32",
          });
          const again = compare(
            c.name,
            label,
            `gguf-${t}`,
            await runner(
              path,
              sub,
              opts.maxTokens,
              refSteps.results.map((r) => r.ids),
            ),
            refSteps.results,
          );
          bad.forEach((i, j) => {
            cmp[i].stepLogitsMaxAbsDiff = again[j].stepLogitsMaxAbsDiff;
            cmp[i].marginAtDiff = again[j].marginAtDiff;
            cmp[i].diffUpToDiff = again[j].diffUpToDiff;
          });
        }
        for (const r of cmp) r.status = classify(r);
        return cmp;
      };
      rows.push(...(await side(prepared.gguf[t], `gguf-${t}`)));
      if (opts.emulateBf16 && t === "bf16") {
        rows.push(...(await side(prepared.gguf[t], "gguf-bf16+bf16-act", runOursBf16Activations)));
      }
      // Our loader on the HF folder holds the same values as the GGUF of the same dtype.
      if (t === hfDtype) rows.push(...(await side(prepared.hf, `hf-${hfDtype}`)));
    }
  }
  return rows;
}

/** vocab size and the dtype of the safetensors weights ("f32" | "bf16" | other). */
function readHfFacts(hf: string): { vocab: number; hfDtype: string } {
  const cfg = JSON.parse(readFileSync(join(hf, "config.json"), "utf8")) as Record<string, unknown>;
  const text = (cfg.text_config as Record<string, unknown> | undefined) ?? cfg;
  const vocab = Number(text.vocab_size ?? cfg.vocab_size);
  const dt = String(text.torch_dtype ?? cfg.torch_dtype ?? cfg.dtype ?? "bfloat16");
  const hfDtype = dt === "float32" ? "f32" : dt === "bfloat16" ? "bf16" : dt;
  return { vocab, hfDtype };
}
