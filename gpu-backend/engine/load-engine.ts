import { basename, dirname } from "node:path";
import { statSync } from "node:fs";
import { CpuDevice } from "../device/cpu/cpu-device.js";
import { EagerExpertProvider } from "../experts/eager-provider.js";
import type { ExpertProvider } from "../experts/provider.js";
import { openCheckpoint } from "../model/checkpoint.js";
import { loadTokenizer } from "../tokenizer/load.js";
import { MoeEngine } from "./engine.js";
import { MoeTransformer } from "./model.js";

export interface LoadEngineOptions {
  /** Compute threads (default: all cores). */
  threads?: number;
  /** Routed-expert budget: bytes ("512MiB", "1073741824") or a share of all experts ("25%"). Omitted = eager. */
  expertBudget?: string;
  /** Eviction policy of the lazy expert store. */
  policy?: string;
  /** Name reported in /v1/models (default: the folder name). */
  modelId?: string;
}

/** Open a checkpoint folder (or GGUF file beside its tokenizer files) and build a ready engine. */
export async function loadEngine(modelPath: string, opts: LoadEngineOptions = {}): Promise<MoeEngine> {
  const ckpt = openCheckpoint(modelPath);
  try {
    const device = new CpuDevice({ threads: opts.threads });
    const experts: ExpertProvider = opts.expertBudget
      ? await createLazyProvider(ckpt, device, opts)
      : new EagerExpertProvider(ckpt, device);
    const model = new MoeTransformer(ckpt, device, experts);
    const dir = statSync(modelPath).isDirectory() ? modelPath : dirname(modelPath);
    const tokenizer = await loadTokenizer(dir);
    const id = opts.modelId ?? basename(modelPath).replace(/\.gguf$/, "");
    return new MoeEngine(id, model, tokenizer, experts);
  } finally {
    // Eager weights are copied into device memory; the lazy store keeps its own file handles.
    if (!opts.expertBudget) ckpt.close();
  }
}

async function createLazyProvider(
  ..._args: [ReturnType<typeof openCheckpoint>, CpuDevice, LoadEngineOptions]
): Promise<ExpertProvider> {
  throw new Error("--expert-budget needs the lazy expert store, which is not built yet");
}
