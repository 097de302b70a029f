/**
 * Child-process side of the paging benchmark (one process per model or per capped / cold run, so
 * memory and page cache state are the run's own). Prints one JSON object per line on stdout.
 *
 *   tsx bench/lib/paging-worker.ts sweep MODEL CONFIGS_JSON   budget sweep rows
 *   tsx bench/lib/paging-worker.ts once MODEL CONFIG_JSON      one timed run (capped / cold)
 *   tsx bench/lib/paging-worker.ts trace MODEL TOKENS          first-choice repeat rate per layer
 */
import { CpuDevice } from "../../gpu-backend/device/cpu/cpu-device.js";
import type { Device } from "../../gpu-backend/device/device.js";
import { greedyParams } from "../../gpu-backend/engine/greedy.js";
import { KvCache } from "../../gpu-backend/engine/kv-cache.js";
import { loadEngine } from "../../gpu-backend/engine/load-engine.js";
import { MoeTransformer } from "../../gpu-backend/engine/model.js";
import type { ExpertProvider } from "../../gpu-backend/experts/provider.js";
import { ExpertStore } from "../../gpu-backend/experts/store.js";
import { openCheckpoint } from "../../gpu-backend/model/checkpoint.js";
import type { ExpertWeights } from "../../gpu-backend/model/types.js";
import { measureRamBandwidth } from "./paging-measure.js";

export const THREADS = 2;

/** A full GC, where the worker runs with --expose-gc (the benchmark starts it so). */
const collect = () => (globalThis as { gc?: () => void }).gc?.();

export interface RunConfig {
  /** undefined = eager. */
  budget?: string;
  policy?: string;
  prefetch?: boolean;
  promptLen: number;
  /** Tokens generated before the measured run (fills the cache: steady state); 0 = cold. */
  warmTokens: number;
  /** Prompt length of the warm-up request (a long one touches most experts; default promptLen). */
  warmPromptLen?: number;
  /**
   * After the warm-up, fill whatever budget is still free with experts nobody asked for yet
   * (ExpertStore.fill), so the measured request sees a full cache: its steady state, not the
   * first touches of a cache still filling (those are what the cold-start runs measure).
   */
  fill?: boolean;
  tokens: number;
  seed: number;
  /**
   * Measured requests after the warm-up, each on its own prompt (default 1). This VM's speed
   * moves from one 40-token window to the next (1.6-2.4 ms/token for the same Maverick-like
   * decode), so a sweep row takes several windows and reports the one nearest its limit.
   */
  requests?: number;
  /**
   * Probe RAM bandwidth right before and after each measured request (sweep rows: their T(h)).
   * Off for capped and cold runs: the 1 GiB probe would not fit under a memory cap and would
   * count in the time to first token.
   */
  probeRam?: boolean;
}

export interface RunResult {
  config: RunConfig;
  ready_ms: number;
  /** From the start of loading to the first generated token of the measured prompt. */
  first_token_from_start_ms: number;
  prefill_ms: number;
  decode_tps: number;
  decode_ms: number;
  /** Paging counters over the measured decode phase only (prefill excluded). */
  decode_paging: Record<string, number>;
  /** Counters over the measured request (prefill + decode). */
  request_paging: Record<string, number>;
  ids: number[];
  /** "direct" (O_DIRECT) or "buffered": how the store read experts; null when eager. */
  reader: string | null;
  /** RAM read bandwidth (bytes/s) probed right before and right after the request (probeRam). */
  ram_Bps: [number, number] | null;
}

function promptIds(len: number, vocab: number, seed: number): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: len }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % vocab;
  });
}

const params = (maxTokens: number) => greedyParams(maxTokens);

function diff(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(b)) out[k] = /^(resident|budget|capacity)_/.test(k) ? b[k] : b[k] - (a[k] ?? 0);
  return out;
}

/** One result per measured request (cfg.requests), all on the same engine after one warm-up. */
export async function runOnce(model: string, cfg: RunConfig): Promise<RunResult[]> {
  const t0 = performance.now();
  const engine = await loadEngine(model, {
    threads: THREADS,
    expertBudget: cfg.budget,
    policy: cfg.policy,
    prefetch: cfg.prefetch,
  });
  const ready = performance.now() - t0;
  const vocab = engine.model.config.vocabSize;
  if (cfg.warmTokens > 0) {
    for await (const _ of engine.generate(
      promptIds(cfg.warmPromptLen ?? cfg.promptLen, vocab, cfg.seed + 1),
      params(cfg.warmTokens),
    )) {
      // run to the end: the cache fills as serving would fill it
    }
  }
  if (cfg.fill && engine.experts instanceof ExpertStore) await engine.experts.fill();
  const out: RunResult[] = [];
  for (let k = 0; k < (cfg.requests ?? 1); k++) {
    out.push(await measureRequest(engine, cfg, cfg.seed + 1000 * k, t0, ready));
  }
  engine.close();
  return out;
}

async function measureRequest(
  engine: Awaited<ReturnType<typeof loadEngine>>,
  cfg: RunConfig,
  seed: number,
  t0: number,
  ready: number,
): Promise<RunResult> {
  const prompt = promptIds(cfg.promptLen, engine.model.config.vocabSize, seed);
  const ramBefore = cfg.probeRam ? measureRamBandwidth(THREADS) : 0;
  // Collect now, not in the measured window: the probe's buffer (and the previous request's
  // garbage) would otherwise trigger a full GC in the middle of a ~50 ms decode.
  collect();
  const s0 = engine.experts.stats();
  const tReq = performance.now();
  let tFirst = 0;
  let s1 = s0;
  const ids: number[] = [];
  for await (const ev of engine.generate(prompt, params(cfg.tokens))) {
    if (ids.length === 0) {
      tFirst = performance.now();
      s1 = engine.experts.stats();
    }
    ids.push(ev.tokenId);
  }
  const tEnd = performance.now();
  const s2 = engine.experts.stats();
  const ramAfter = cfg.probeRam ? measureRamBandwidth(THREADS) : 0;
  const reader = engine.experts instanceof ExpertStore ? engine.experts.report().reader : null;
  return {
    config: cfg,
    ready_ms: ready,
    first_token_from_start_ms: tFirst - t0,
    prefill_ms: tFirst - tReq,
    decode_tps: ((ids.length - 1) / (tEnd - tFirst)) * 1000,
    decode_ms: tEnd - tFirst,
    decode_paging: diff(s1, s2),
    request_paging: diff(s0, s2),
    ids,
    reader,
    ram_Bps: cfg.probeRam ? [ramBefore, ramAfter] : null,
  };
}

/** Records the experts each decode step asks for (layer by layer), passing through to a store. */
class Tracer implements ExpertProvider {
  readonly steps: Map<number, number[]>[] = [];
  current = new Map<number, number[]>();
  constructor(private readonly inner: ExpertStore) {}
  get maxExpertsPerAcquire(): number {
    return this.inner.maxExpertsPerAcquire;
  }
  acquire(layer: number, experts: number[]): Promise<ExpertWeights[]> {
    this.current.set(layer, [...(this.current.get(layer) ?? []), ...experts]);
    return this.inner.acquire(layer, experts);
  }
  hint(): void {}
  useDevice(device: Device): void {
    this.inner.useDevice(device);
  }
  stats(): Record<string, number> {
    return this.inner.stats();
  }
  close(): void {
    this.inner.close();
  }
}

/**
 * Locality of the routing: how often a decoded token's first-choice expert in a layer equals the
 * previous token's, against chance (1/E) and against independent draws from the observed
 * popularity (sum of p_e^2). With top-1 the step's single expert is its first choice.
 */
export async function traceLocality(model: string, tokens: number) {
  const ckpt = openCheckpoint(model);
  const c = ckpt.config;
  const tracer = new Tracer(
    new ExpertStore(ckpt, { budget: "100%", maxExpertsPerStep: c.topK, prefetch: false }),
  );
  const m = new MoeTransformer(ckpt, new CpuDevice({ threads: THREADS }), tracer);
  const cache = new KvCache(c, 16 + tokens);
  let logits = await m.forward(promptIds(16, c.vocabSize, 7), cache);
  for (let i = 0; i < tokens; i++) {
    let best = 0;
    for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
    tracer.current = new Map();
    logits = await m.forward([best], cache);
    tracer.steps.push(tracer.current);
  }
  tracer.close();
  let same = 0;
  let pairs = 0;
  const counts = new Map<string, number>();
  let picks = 0;
  for (let t = 0; t < tracer.steps.length; t++) {
    for (const [l, ids] of tracer.steps[t]) {
      counts.set(`${l}:${ids[0]}`, (counts.get(`${l}:${ids[0]}`) ?? 0) + 1);
      picks++;
      const prev = t > 0 ? tracer.steps[t - 1].get(l) : undefined;
      if (prev) {
        pairs++;
        if (prev[0] === ids[0]) same++;
      }
    }
  }
  const layers = new Set([...counts.keys()].map((k) => k.split(":")[0])).size;
  let sumP2 = 0;
  for (const n of counts.values()) sumP2 += (n / (picks / layers)) ** 2;
  return {
    repeat_rate: same / pairs,
    chance_uniform: 1 / c.numExperts,
    chance_popularity: sumP2 / layers,
    tokens,
  };
}

async function main(): Promise<void> {
  const [mode, model, arg] = process.argv.slice(2);
  if (mode === "sweep") {
    const configs = JSON.parse(arg) as RunConfig[];
    // A throw-away run first: a fresh process's first engine decodes with code V8 has not
    // optimized yet, and the first configuration of every sweep came out ~10-25% slower than the
    // same configuration run again (Maverick-like, 100% LRU: best request 471 vs 534 tok/s).
    // Each engine's memory is collected before the next one loads: one still held (its weights
    // and slabs wait for a GC) would leave the next fewer free huge pages, and slower.
    if (configs.length > 0) await runOnce(model, { ...configs[0], requests: 1, probeRam: false });
    collect();
    for (const cfg of configs) {
      for (const r of await runOnce(model, cfg)) console.log(JSON.stringify(r));
      collect();
    }
  } else if (mode === "once") {
    console.log(JSON.stringify((await runOnce(model, JSON.parse(arg) as RunConfig))[0]));
  } else if (mode === "trace") {
    console.log(JSON.stringify(await traceLocality(model, Number(arg))));
  } else {
    throw new Error(`unknown worker mode ${mode}`);
  }
}

if (process.argv[1]?.endsWith("paging-worker.ts")) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  });
}
