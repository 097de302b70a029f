import { basename } from "node:path";
import type { Device } from "../device/device.js";
import { type DeviceKind, selectDevice } from "../device/select.js";
import { EagerExpertProvider } from "../experts/eager-provider.js";
import type { ExpertProvider } from "../experts/provider.js";
import { ExpertStore } from "../experts/store.js";
import { openCheckpoint } from "../model/checkpoint.js";
import { loadModelTokenizer } from "../tokenizer/from-gguf.js";
import { type EngineOptions, MoeEngine } from "./engine.js";
import { MoeTransformer } from "./model.js";

export interface LoadEngineOptions {
  /** Compute threads (default: all cores). */
  threads?: number;
  /** Routed-expert budget: bytes ("512MiB", "1073741824") or a share of all experts ("25%"). Omitted = eager. */
  expertBudget?: string;
  /** Eviction policy of the lazy expert store: "lru" or "lfu" (default). */
  policy?: string;
  /** Lazy mode: act on the engine's prefetch hints (default true). */
  prefetch?: boolean;
  /** Name reported in /v1/models (default: the folder name). */
  modelId?: string;
  /** Compute device: "auto" (CUDA when a GPU and the CUDA addon are present, else CPU), "cpu", "cuda". */
  device?: DeviceKind;
  /** Scheduler limits and prefix-cache size. */
  engine?: EngineOptions;
}

/** Open a checkpoint folder or GGUF file (tokenizer: see loadModelTokenizer) and build a ready engine. */
export async function loadEngine(modelPath: string, opts: LoadEngineOptions = {}): Promise<MoeEngine> {
  const ckpt = openCheckpoint(modelPath);
  try {
    const { device } = selectDevice({ device: opts.device, threads: opts.threads });
    const experts: ExpertProvider = opts.expertBudget
      ? await createLazyProvider(ckpt, device, opts)
      : new EagerExpertProvider(ckpt, device);
    const model = new MoeTransformer(ckpt, device, experts);
    // A .gguf without tokenizer.json beside it uses the tokenizer in its metadata.
    const tokenizer = await loadModelTokenizer(modelPath);
    const id = opts.modelId ?? basename(modelPath).replace(/\.gguf$/, "");
    return new MoeEngine(id, model, tokenizer, experts, opts.engine);
  } finally {
    // Eager weights are copied into device memory; the lazy store keeps its own file handles.
    if (!opts.expertBudget) ckpt.close();
  }
}

/**
 * Lazy mode: the expert store pages routed experts from the checkpoint files within the budget.
 * The store keeps the checkpoint (its expert ranges and decoders) and closes it on close().
 */
async function createLazyProvider(
  ckpt: ReturnType<typeof openCheckpoint>,
  _device: Device,
  opts: LoadEngineOptions,
): Promise<ExpertProvider> {
  const c = ckpt.config;
  try {
    return new ExpertStore(ckpt, {
      budget: opts.expertBudget!,
      policy: opts.policy,
      prefetch: opts.prefetch,
      // The engine splits a step's expert set into groups of the store's capacity, so the floor
      // is one token's experts in one layer (top-k): a smaller budget would serialize them.
      maxExpertsPerStep: c.topK,
    });
  } catch (err) {
    ckpt.close();
    throw err;
  }
}
