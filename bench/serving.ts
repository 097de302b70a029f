/**
 * Serving benchmark (issue 5): aggregate decode throughput and TTFT at 1..16 concurrent streams
 * on the Scout-like bench model, each next to its bandwidth bound, and TTFT of a request sharing
 * a 1,000-token system prompt with and without the prefix KV cache.
 *
 * Bound for a decode step of c sequences: it must read the dense weights once plus every
 * distinct routed expert the c tokens select (measured: acquired experts per step), so
 *   bound tok/s = c * readBandwidth / (denseBytes + distinctExperts * expertBytes).
 *
 * On two cores a batch soon runs out of arithmetic instead: each token multiplies every active
 * weight once (2 flops per weight), and the kernels top out at the rate measured on an
 * L2-resident q8 matrix with c tokens. That compute bound is reported next to it, and the
 * roofline (the lower of the two) says how close each row runs to what this machine allows.
 */
import { CpuDevice } from "../gpu-backend/device/cpu/cpu-device.js";
import { loadNative } from "../gpu-backend/device/cpu/native.js";
import { makeWeight } from "../gpu-backend/device/f16.js";
import type { MoeEngine } from "../gpu-backend/engine/engine.js";
import { greedyParams } from "../gpu-backend/engine/greedy.js";
import { loadEngine } from "../gpu-backend/engine/load-engine.js";
import type { SamplingParams } from "../gpu-backend/engine/types.js";
import { openCheckpoint } from "../gpu-backend/model/checkpoint.js";
import { bytesPerToken, prepareBenchModels } from "./decode.js";

const THREADS = 2;
const CONCURRENCY = (process.env.BENCH_SERVING_CONC ?? "1,2,4,8,16").split(",").map(Number);
const GEN_TOKENS = Number(process.env.BENCH_SERVING_TOKENS ?? 48);
const PROMPT_LEN = 32;
const REPEATS = Number(process.env.BENCH_SERVING_REPEATS ?? 3);

const params = greedyParams(GEN_TOKENS);

function prompt(seed: number, len: number, vocab: number): number[] {
  let x = seed * 2654435761;
  return Array.from({ length: len }, () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return 10 + (x % (vocab - 1000));
  });
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

interface StreamTiming {
  ttft: number;
  firstAt: number;
  /** When each token arrived, with the engine's step and expert-hit counters at that moment. */
  marks: { at: number; steps: number; hits: number }[];
}

async function stream(engine: MoeEngine, ids: number[], p: SamplingParams): Promise<StreamTiming> {
  const t0 = performance.now();
  const marks: StreamTiming["marks"] = [];
  for await (const _ of engine.generate(ids, p)) {
    marks.push({
      at: performance.now(),
      steps: engine.scheduler.stats().steps,
      hits: engine.experts.stats().hits ?? 0,
    });
  }
  const firstAt = marks[0]?.at ?? t0;
  return { ttft: firstAt - t0, firstAt, marks };
}

/**
 * The steady decode window of c concurrent streams: from the moment the last stream has its
 * first token (before then, steps still carry other streams' prefill chunks) to the moment the
 * first stream ends (after it, fewer than c streams decode). Tokens, steps and expert hits are
 * counted inside it, so every step counted is a decode step of all c sequences.
 */
function decodeWindow(timings: StreamTiming[]) {
  const start = Math.max(...timings.map((t) => t.firstAt));
  const end = Math.min(...timings.map((t) => t.marks[t.marks.length - 1].at));
  let tokens = 0;
  let first = { steps: Number.POSITIVE_INFINITY, hits: 0 };
  let last = { steps: Number.NEGATIVE_INFINITY, hits: 0 };
  for (const t of timings) {
    for (const m of t.marks) {
      if (m.at > start && m.at <= end) tokens++;
      if (m.at >= start && m.at <= end) {
        if (m.steps < first.steps) first = m;
        if (m.steps > last.steps) last = m;
      }
    }
  }
  return {
    tokens,
    seconds: (end - start) / 1000,
    steps: last.steps - first.steps,
    hits: last.hits - first.hits,
  };
}

/** Dense bytes per step and bytes of one routed expert. */
function modelBytes(path: string): { dense: number; expert: number; moeLayers: number; topK: number } {
  const ck = openCheckpoint(path);
  try {
    const c = ck.config;
    const expert = ck.expertRanges(c.moeLayers.indexOf(true), 0).reduce((s, r) => s + r.length, 0);
    const moeLayers = c.moeLayers.filter(Boolean).length;
    return { dense: bytesPerToken(path) - c.topK * moeLayers * expert, expert, moeLayers, topK: c.topK };
  } finally {
    ck.close();
  }
}

/** Best q8 matmul GFLOP/s with n tokens on a weight that stays in L2 (the kernels' compute ceiling). */
function hotGflops(n: number): number {
  const dev = new CpuDevice({ threads: THREADS });
  const rows = 512;
  const cols = 1024;
  const w = dev.upload(
    makeWeight(
      Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i)),
      rows,
      cols,
      "q8",
    ),
  );
  const x = Float32Array.from({ length: n * cols }, (_, i) => Math.cos(i));
  const out = new Float32Array(n * rows);
  let best = Number.POSITIVE_INFINITY;
  for (let rep = 0; rep < 5; rep++) {
    const t = performance.now();
    for (let i = 0; i < 200; i++) dev.matmul(out, x, n, w);
    best = Math.min(best, (performance.now() - t) / 200);
  }
  return (2 * rows * cols * n) / (best / 1000) / 1e9;
}

export async function run() {
  const { int8 } = prepareBenchModels();
  const native = loadNative();
  const measureBw = () => native.memReadBandwidth(1 << 29, THREADS) * 1e9;
  const bws: number[] = [];
  const mb = modelBytes(int8);
  // Tokens/s if a step took only its reads: dense weights once plus each distinct expert once.
  const boundOf = (conc: number, bw: number, distinctPerStep: number) =>
    (conc * bw) / (mb.dense + distinctPerStep * mb.expert);
  // Weights one token multiplies: its q8 bytes over 34/32 bytes per weight (int8 + an f16 scale per 32).
  const flopsPerToken = (2 * bytesPerToken(int8) * 32) / 34;
  const engine = await loadEngine(int8, { threads: THREADS });
  const vocab = engine.model.config.vocabSize;
  const rows: Record<string, unknown>[] = [];
  await stream(engine, prompt(999, PROMPT_LEN, vocab), { ...params, maxTokens: 4 }); // warm-up
  let single = 0;
  let minFraction = Number.POSITIVE_INFINITY;
  let minRoofline = Number.POSITIVE_INFINITY;
  let eight = 0;
  for (const conc of CONCURRENCY) {
    // Best of REPEATS runs (the same prompts each time): timings on this VM swing from run to run,
    // and so does its read bandwidth (about 45 or 80 GB/s for minutes at a time), so runs are
    // compared by their share of their own bound, as the paging bench compares its rows.
    let best: {
      tps: number;
      timings: StreamTiming[];
      steps: number;
      acquired: number;
      wall: number;
      bw: number;
    } | null = null;
    for (let r = 0; r < REPEATS; r++) {
      // Read bandwidth moves with the VM's neighbours: probe it right before and after each run and
      // bound the run by the better of the two (a slow probe must not flatter a row).
      const bwBefore = measureBw();
      const t0 = performance.now();
      const timings = await Promise.all(
        Array.from({ length: conc }, (_, i) =>
          stream(engine, prompt(conc * 100 + i, PROMPT_LEN, vocab), params),
        ),
      );
      const t1 = performance.now();
      const bw = Math.max(bwBefore, measureBw());
      const win = decodeWindow(timings);
      const tps = win.tokens / win.seconds;
      const share = (x: { tps: number; bw: number; steps: number; acquired: number }) =>
        x.tps / boundOf(conc, x.bw, x.acquired / x.steps);
      if (!best || share({ tps, bw, steps: win.steps, acquired: win.hits }) > share(best)) {
        best = { tps, timings, steps: win.steps, acquired: win.hits, wall: t1 - t0, bw };
      }
    }
    if (!best) throw new Error("BENCH_SERVING_REPEATS must be at least 1");
    const { tps, timings, steps, acquired, bw } = best;
    bws.push(bw);
    const distinctPerStep = acquired / steps;
    const bound = boundOf(conc, bw, distinctPerStep);
    const fraction = tps / bound;
    const computeBound = (hotGflops(conc) * 1e9) / flopsPerToken;
    const roofline = Math.min(bound, computeBound);
    if (conc === 1) single = tps;
    if (conc === 8) eight = tps;
    minFraction = Math.min(minFraction, fraction);
    minRoofline = Math.min(minRoofline, tps / roofline);
    rows.push({
      streams: conc,
      "decode tok/s": +tps.toFixed(1),
      "bound tok/s": +bound.toFixed(1),
      fraction: +fraction.toFixed(3),
      "compute bound tok/s": +computeBound.toFixed(1),
      "of roofline": +(tps / roofline).toFixed(3),
      "experts/step": +distinctPerStep.toFixed(2),
      "read GB/s": +(bw / 1e9).toFixed(1),
      "TTFT p50 ms": +percentile(
        timings.map((t) => t.ttft),
        0.5,
      ).toFixed(1),
      "TTFT p99 ms": +percentile(
        timings.map((t) => t.ttft),
        0.99,
      ).toFixed(1),
      "wall s": +(best.wall / 1000).toFixed(2),
    });
  }
  engine.close();

  // Prefix cache: a 1,000-token system prompt shared by two requests with different questions.
  const system = prompt(4242, 1000, vocab);
  const ask = (q: number) => [...system, ...prompt(q, 16, vocab)];
  const short = { ...params, maxTokens: 1 };
  const cold = await loadEngine(int8, { threads: THREADS });
  const noCache = new (cold.constructor as typeof MoeEngine)(
    "nocache",
    cold.model,
    cold.tokenizer,
    cold.experts,
    {
      prefixCacheBytes: 0,
    },
  );
  const ttftNoCache = (await stream(noCache, ask(1), short)).ttft;
  await stream(cold, ask(2), short); // fills the cache
  const warm = await stream(cold, ask(3), short);
  cold.close();
  rows.push({ streams: "prefix: no cache", "TTFT p50 ms": +ttftNoCache.toFixed(1) });
  rows.push({ streams: "prefix: cached", "TTFT p50 ms": +warm.ttft.toFixed(1) });

  return {
    name: "serving",
    rows,
    summary: {
      throughput_8_vs_1: eight && single ? eight / single : 0,
      fraction_of_bound_min: minFraction,
      fraction_of_roofline_min: minRoofline,
      prefix_cache_ttft_speedup: ttftNoCache / warm.ttft,
      read_bandwidth_gbs_min: Math.min(...bws) / 1e9,
      read_bandwidth_gbs_max: Math.max(...bws) / 1e9,
    },
  };
}
