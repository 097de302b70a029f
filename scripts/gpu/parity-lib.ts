/**
 * Greedy decode of a checkpoint on a given device, and the comparison of two such runs: the
 * CUDA-vs-CPU parity check of the GPU script (and of the emulated-addon test here).
 */
import type { Device } from "../../gpu-backend/device/device.js";
import { KvCache, type KvDtype } from "../../gpu-backend/engine/kv-cache.js";
import { MoeTransformer } from "../../gpu-backend/engine/model.js";
import { EagerExpertProvider } from "../../gpu-backend/experts/eager-provider.js";
import type { ExpertProvider } from "../../gpu-backend/experts/provider.js";
import { ExpertStore } from "../../gpu-backend/experts/store.js";
import { openCheckpoint } from "../../gpu-backend/model/checkpoint.js";

export interface GreedyRun {
  tokens: number[];
  /** Logits of the prompt's last position, then of every generated step but the last. */
  logits: Float32Array[];
  ms: number;
}

export interface GreedyOptions {
  /** Expert budget for a lazy ExpertStore ("50%"); omitted = eager provider. */
  expertBudget?: string;
  /** KV cache element type (default f32). */
  kvDtype?: KvDtype;
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

export async function greedy(
  dir: string,
  device: Device,
  prompt: number[],
  steps: number,
  opts: GreedyOptions = {},
): Promise<GreedyRun> {
  const ckpt = openCheckpoint(dir);
  const c = ckpt.config;
  const experts: ExpertProvider = opts.expertBudget
    ? new ExpertStore(ckpt, {
        budget: opts.expertBudget,
        maxExpertsPerStep: Math.min(c.numExperts, 256 * c.topK),
      })
    : new EagerExpertProvider(ckpt, device);
  const t0 = performance.now();
  try {
    const model = new MoeTransformer(ckpt, device, experts);
    const cache = new KvCache(c, 64, opts.kvDtype);
    const logits: Float32Array[] = [];
    const tokens: number[] = [];
    let l = await model.forward(prompt, cache);
    for (let s = 0; s < steps; s++) {
      logits.push(l.slice());
      const t = argmax(l);
      tokens.push(t);
      if (s + 1 < steps) l = await model.forward([t], cache);
    }
    return { tokens, logits, ms: performance.now() - t0 };
  } finally {
    experts.close();
    if (!opts.expertBudget) ckpt.close();
  }
}

export interface Comparison {
  tokensEqual: boolean;
  /** Generated steps until the first differing token (= steps when equal). */
  agreeSteps: number;
  /** max |a - b| over compared logits, divided by max |b| of the same step (worst step). */
  maxRelErr: number;
  /** The relative error of each compared step (prompt's last position first). */
  stepRelErr: number[];
}

/**
 * Logits are compared only while the tokens agree (after a different token the inputs differ).
 * bf16 tolerance: a relative error of 2^-8 per weight; the check uses 1e-2 of the logit scale.
 */
export function compareRuns(a: GreedyRun, b: GreedyRun): Comparison {
  let agree = 0;
  while (agree < a.tokens.length && a.tokens[agree] === b.tokens[agree]) agree++;
  const stepRelErr: number[] = [];
  for (let s = 0; s < Math.min(a.logits.length, b.logits.length, agree + 1); s++) {
    stepRelErr.push(relErr(a.logits[s], b.logits[s]));
  }
  return {
    tokensEqual: agree === a.tokens.length && a.tokens.length === b.tokens.length,
    agreeSteps: agree,
    maxRelErr: Math.max(0, ...stepRelErr),
    stepRelErr,
  };
}

export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

export const BF16_LOGIT_TOLERANCE = 1e-2;
