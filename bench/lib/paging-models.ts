/**
 * Checkpoints for the paging benchmark, made once into .cache/paging-models and reused:
 *   scout-u / scout-s      llama4 `bench` preset (Scout-like: hidden 1024, 16 layers, 16 experts
 *                          top-1 + shared, expert FFN 2048, vocab 8192), q8 experts (= Q8_0 size)
 *   maverick-u / maverick-s llama4 `maverick` preset (128 experts top-1 + shared, MoE every other
 *                          layer), q8
 * "-u" routers have no preference (uniform routing: the worst case for any cache); "-s" routers
 * have Zipf skew 1 (expert e picked with probability ~ 1/(e+1), see gpu-backend/model/init.ts),
 * our locality routing model: consecutive tokens repeat their first-choice expert about twice as
 * often as chance (measured and reported by the benchmark). The Scout-like uniform model is also
 * exported as a Q8_0 GGUF for llama.cpp.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { made, modelCli, ROOT } from "./model-tool.js";

export const PAGING_MODELS = join(ROOT, ".cache", "paging-models");

export interface PagingModel {
  name: string;
  family: "scout" | "maverick";
  routing: "uniform" | "locality";
  /** q8 checkpoint folder (what both our engine and the store page from). */
  dir: string;
  /** Q8_0 GGUF of the same weights (Scout-like uniform only). */
  gguf?: string;
}

export const MODEL_SPECS = [
  { name: "scout-u", family: "scout", preset: "bench", skew: 0, gguf: true },
  { name: "scout-s", family: "scout", preset: "bench", skew: 1, gguf: false },
  { name: "maverick-u", family: "maverick", preset: "maverick", skew: 0, gguf: false },
  { name: "maverick-s", family: "maverick", preset: "maverick", skew: 1, gguf: false },
] as const;

/** Make (or reuse) the benchmark checkpoints; bf16 sources are deleted once quantized. */
export function preparePagingModels(only?: string[]): PagingModel[] {
  mkdirSync(PAGING_MODELS, { recursive: true });
  const out: PagingModel[] = [];
  for (const s of MODEL_SPECS) {
    if (only && !only.includes(s.name)) continue;
    const q8 = join(PAGING_MODELS, `${s.name}-q8`);
    const gguf = s.gguf ? join(PAGING_MODELS, `${s.name}-q8_0.gguf`) : undefined;
    if (!made(q8) || (gguf && !made(gguf))) {
      const bf16 = join(PAGING_MODELS, `${s.name}-bf16`);
      if (!made(bf16)) {
        modelCli("paging", [
          "make",
          "--family",
          "llama4",
          "--preset",
          s.preset,
          "--seed",
          "1",
          "--router-skew",
          String(s.skew),
          "--out",
          bf16,
        ]);
      }
      if (!made(q8)) modelCli("paging", ["quantize", "--in", bf16, "--out", q8, "--bits", "8"]);
      if (gguf && !made(gguf))
        modelCli("paging", ["export-gguf", "--in", bf16, "--out", gguf, "--type", "q8_0"]);
      rmSync(bf16, { recursive: true, force: true });
    }
    out.push({
      name: s.name,
      family: s.family,
      routing: s.skew > 0 ? "locality" : "uniform",
      dir: q8,
      gguf,
    });
  }
  return out;
}

// `tsx bench/lib/paging-models.ts [names...]`: make them ahead of a benchmark run.
if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const made = preparePagingModels(process.argv.length > 2 ? process.argv.slice(2) : undefined);
  for (const m of made) console.log(m.name, m.dir, m.gguf ?? "");
}
