/**
 * The one prepared script for the GPU machine (bundled by prepare.sh into .carry/gpu-main.mjs and
 * started by run.sh; see README.md). In one call it:
 *  1. probes the GPU through the CUDA addon;
 *  2. parity: q8 / q4 matmuls op by op (op-parity.ts), and tiny models of each family (bf16, plus Q8_0 / Q4_0 copies of llama4, plus llama4
 *     through the lazy expert store) decode greedily on the CPU device and the CUDA device:
 *     tokens must be identical, logits within bf16 tolerance;
 *  3. compares the CUDA device's logits and tokens with Hugging Face transformers (python3) on the
 *     same checkpoint files;
 *  4. times each op at the Scout layer's shapes (ops-bench.ts; int8 vs f32 activations);
 *  5. runs the Scout-layer paging benchmark (bench-scout.ts) at budgets 100/50/25%;
 * and writes everything as JSON after every phase (so a time-out still leaves results).
 *
 *   node gpu-main.mjs --out DIR [--work DIR] [--deadline-s 420] [--layers 48] [--tokens 32]
 *                     [--hf-script scripts/gpu/hf_logits.py] [--skip-hf] [--skip-bench]
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CpuDevice } from "../../gpu-backend/device/cpu/cpu-device.js";
import { CudaDevice } from "../../gpu-backend/device/cuda/cuda-device.js";
import { loadCuda } from "../../gpu-backend/device/cuda/native.js";
import type { Device } from "../../gpu-backend/device/device.js";
import { openCheckpoint } from "../../gpu-backend/model/checkpoint.js";
import type { Family } from "../../gpu-backend/model/types.js";
import { makeModel } from "../../gpu-backend/tools/make-model.js";
import { quantizeCheckpoint } from "../../gpu-backend/tools/quantize.js";
import { runScoutBench, type ScoutBenchResult } from "./bench-scout.js";
import { checkpointOpParity, type OpParityRow, opParity, type TensorParityRow } from "./op-parity.js";
import { type Divergence, firstDivergence, type OpRecord, tracingDevice } from "./op-trace.js";
import { type OpRow, runOpsBench } from "./ops-bench.js";
import {
  BF16_LOGIT_TOLERANCE,
  compareRuns,
  type GreedyOptions,
  type GreedyRun,
  greedy,
  relErr,
} from "./parity-lib.js";

const { values: args } = parseArgs({
  options: {
    out: { type: "string", default: "." },
    work: { type: "string", default: "/tmp/moe-gpu-work" },
    "deadline-s": { type: "string", default: "420" },
    layers: { type: "string", default: "48" },
    tokens: { type: "string", default: "32" },
    "hf-script": { type: "string", default: "scripts/gpu/hf_logits.py" },
    "skip-hf": { type: "boolean", default: false },
    "skip-bench": { type: "boolean", default: false },
    /** No GPU needed: the parity phase runs CPU vs CPU (checks the bundle and the plumbing). */
    selftest: { type: "boolean", default: false },
  },
});

const start = performance.now();
const deadline = Number(args["deadline-s"]);
const elapsed = () => (performance.now() - start) / 1000;
const log = (s: string) => console.log(`[${elapsed().toFixed(1)}s] ${s}`);

interface ParityRow {
  model: string;
  provider: string;
  tokens_equal: boolean;
  agree_steps: number;
  max_rel_err: number;
  step_rel_err?: number[];
  ok: boolean;
  cpu_tokens: number[];
  cuda_tokens: number[];
  cpu_ms: number;
  cuda_ms: number;
  error?: string;
}
interface HfRow {
  model: string;
  ok: boolean;
  tokens_equal?: boolean;
  max_rel_err?: number;
  hf_tokens?: number[];
  cuda_tokens?: number[];
  versions?: string;
  error?: string;
}

const report: {
  summary: Record<string, unknown>;
  probe?: unknown;
  parity: ParityRow[];
  hf: HfRow[];
  bench?: ScoutBenchResult;
  ops?: OpRow[];
  op_parity?: OpParityRow[];
  tensor_parity?: TensorParityRow[];
  op_trace?: (Divergence & { model: string })[];
  errors: string[];
  command: string;
} = {
  summary: { device: null, fraction_of_limit_min: null },
  parity: [],
  hf: [],
  errors: [],
  command: "scripts/gpu/run.sh (see scripts/gpu/README.md)",
};

function save(): void {
  mkdirSync(args.out!, { recursive: true });
  report.summary.elapsed_s = Number(elapsed().toFixed(1));
  writeFileSync(join(args.out!, "gpu.json"), `${JSON.stringify(report, null, 2)}\n`);
}

function prompt(n: number, vocab: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return 3 + (s % (vocab - 3));
  });
}

async function main(): Promise<number> {
  if (args.selftest) return selftest();
  const cuda = loadCuda();
  if (!cuda.ok) {
    report.errors.push(cuda.reason);
    report.summary.error = cuda.reason;
    save();
    log(`no GPU: ${cuda.reason}`);
    return 1;
  }
  report.probe = cuda.info;
  report.summary.device = cuda.info.name;
  report.summary.cublas = cuda.info.cublasInfo;
  log(
    `GPU: ${cuda.info.name} (${((cuda.info.totalBytes ?? 0) / 2 ** 30).toFixed(0)} GiB), cuBLAS: ${cuda.info.cublasInfo}`,
  );
  save();

  const { models, ids, cudaRuns } = await parity(() => new CudaDevice(cuda.addon, cuda.info));

  // ---- Hugging Face transformers ----
  if (!args["skip-hf"]) {
    for (const m of models.filter((x) => x.bf16)) {
      const r = spawnSync(
        "python3",
        [args["hf-script"]!, "--model", m.dir, "--ids", ids.join(","), "--steps", "8"],
        {
          encoding: "utf8",
          timeout: 120_000,
          maxBuffer: 64 << 20,
          env: { ...process.env, PYTHONPATH: process.env.PYTHONPATH ?? "" },
        },
      );
      const row: HfRow = { model: m.name, ok: false };
      try {
        const hf = JSON.parse(r.stdout) as {
          ok: boolean;
          tokens?: number[];
          logits?: number[][];
          error?: string;
          torch?: string;
          transformers?: string;
        };
        row.versions = `torch ${hf.torch}, transformers ${hf.transformers}`;
        const ours = cudaRuns.get(m.name);
        if (!hf.ok || !hf.tokens || !hf.logits) row.error = hf.error ?? "no output";
        else if (!ours) row.error = "no CUDA run to compare";
        else {
          const n = hf.tokens.length;
          let agree = 0;
          while (agree < n && hf.tokens[agree] === ours.tokens[agree]) agree++;
          let err = 0;
          for (let s = 0; s < Math.min(n, agree + 1); s++)
            err = Math.max(err, relErr(ours.logits[s], hf.logits[s]));
          row.tokens_equal = agree === n;
          row.max_rel_err = err;
          row.hf_tokens = hf.tokens;
          row.cuda_tokens = ours.tokens.slice(0, n);
          row.ok = row.tokens_equal && err < BF16_LOGIT_TOLERANCE;
        }
      } catch {
        row.error = `python3 failed (status ${r.status}): ${(r.stderr || r.error?.message || "").slice(-2000)}`;
      }
      report.hf.push(row);
      log(
        `HF ${m.name}: ${row.ok ? "OK" : "FAIL"} ${row.error ?? `tokens_equal=${row.tokens_equal} rel_err=${row.max_rel_err?.toExponential(2)}`}`,
      );
      save();
    }
    report.summary.hf_ok = report.hf.length > 0 && report.hf.every((r) => r.ok);
    save();
  }

  // ---- Per-op timings at the Scout shapes ----
  if (!args["skip-bench"]) {
    try {
      report.ops = runOpsBench(cuda.addon, log);
    } catch (err) {
      report.errors.push(`ops: ${(err as Error).stack ?? err}`);
      log(`ops failed: ${(err as Error).message}`);
    }
    save();
  }

  // ---- Scout-layer paging benchmark ----
  if (!args["skip-bench"]) {
    const left = deadline - elapsed();
    if (left < 90) {
      report.errors.push(`bench skipped: only ${left.toFixed(0)}s left`);
    } else {
      try {
        const bench = runScoutBench(cuda.addon, {
          layers: Number(args.layers),
          tokens: Number(args.tokens),
          warmup: 8,
          budgets: [100, 50, 25],
          skews: [1, 0],
          prefetch: true,
          seed: 1,
          setupSeconds: Math.max(20, Math.min(150, left - 150)),
          log,
        });
        report.bench = bench;
        const fr = bench.rows.map((r) => r.fraction_of_limit);
        report.summary.fraction_of_limit_min = Math.min(...fr);
        report.summary.bench_layers = bench.shape.layers;
        report.summary.b_mem_gbps = bench.b_mem_gbps;
        report.summary.b_link_gbps = bench.b_link_gbps;
        report.summary.rows = bench.rows.map((r) => ({
          budget_pct: r.budget_pct,
          routing: r.routing,
          tok_s: Number(r.tok_s.toFixed(2)),
          hit_rate: Number(r.hit_rate.toFixed(3)),
          limit_tok_s: Number(r.limit_tok_s.toFixed(2)),
          fraction_of_limit: Number(r.fraction_of_limit.toFixed(3)),
          copy_hidden_fraction:
            r.copy_hidden_fraction === null ? null : Number(r.copy_hidden_fraction.toFixed(3)),
          measured_copy_gbps: r.measured_copy_gbps === null ? null : Number(r.measured_copy_gbps.toFixed(1)),
        }));
      } catch (err) {
        report.errors.push(`bench: ${(err as Error).stack ?? err}`);
        log(`bench failed: ${(err as Error).message}`);
      }
    }
    save();
  }
  log("done");
  return report.summary.parity_ok ? 0 : 3;
}

/** CPU vs `makeDevice()` greedy parity on the tiny models; returns what the HF phase compares. */
async function parity(makeDevice: () => Device) {
  const work = args.work!;

  mkdirSync(work, { recursive: true });
  const models: { name: string; dir: string; bf16: boolean }[] = [];
  for (const family of ["llama4", "mixtral", "qwen3moe"] as Family[]) {
    const dir = join(work, family);
    makeModel({ family, preset: "tiny", out: dir, seed: 5 });
    models.push({ name: `${family}-tiny-bf16`, dir, bf16: true });
  }
  for (const bits of [8, 4] as const) {
    const dir = join(work, `llama4-q${bits}`);
    quantizeCheckpoint(join(work, "llama4"), dir, bits);
    models.push({ name: `llama4-tiny-q${bits}`, dir, bf16: false });
  }
  const cpu = new CpuDevice({ threads: Math.min(8, cpus().length) });
  const ids = prompt(24, 512, 7); // 24 > the GEMM threshold: prefill takes the GEMM path
  const steps = 16;
  const cudaRuns = new Map<string, GreedyRun>();
  const parityCase = async (name: string, dir: string, provider: string, opts: GreedyOptions = {}) => {
    try {
      const a = await greedy(dir, cpu, ids, steps, opts);
      const dev = makeDevice();
      const b = await greedy(dir, dev, ids, steps, opts);
      if (provider === "eager") cudaRuns.set(name, b);
      const c = compareRuns(b, a);
      const ok = c.tokensEqual && c.maxRelErr < BF16_LOGIT_TOLERANCE;
      report.parity.push({
        model: name,
        provider,
        tokens_equal: c.tokensEqual,
        agree_steps: c.agreeSteps,
        max_rel_err: c.maxRelErr,
        step_rel_err: c.stepRelErr.map((e) => Number(e.toExponential(2))),
        ok,
        cpu_tokens: a.tokens,
        cuda_tokens: b.tokens,
        cpu_ms: a.ms,
        cuda_ms: b.ms,
      });
      log(
        `parity ${name} (${provider}): ${ok ? "OK" : "FAIL"} tokens_equal=${c.tokensEqual} rel_err=${c.maxRelErr.toExponential(2)}` +
          (c.maxRelErr > 1e-5 ? ` per step ${c.stepRelErr.map((e) => e.toExponential(1)).join(" ")}` : ""),
      );
    } catch (err) {
      const msg = (err as Error).stack ?? String(err);
      report.parity.push({
        model: name,
        provider,
        tokens_equal: false,
        agree_steps: 0,
        max_rel_err: Number.NaN,
        ok: false,
        cpu_tokens: [],
        cuda_tokens: [],
        cpu_ms: 0,
        cuda_ms: 0,
        error: msg,
      });
      log(`parity ${name} (${provider}): ERROR ${msg}`);
    }
    save();
  };
  for (const m of models) await parityCase(m.name, m.dir, "eager");
  await parityCase("llama4-tiny-bf16", join(work, "llama4"), "lazy store 50%", { expertBudget: "50%" });
  // The engine's default KV cache: f16 on the host, widened to f32 in the CUDA device's mirror.
  await parityCase("llama4-tiny-bf16", join(work, "llama4"), "eager, f16 KV", { kvDtype: "f16" });
  report.summary.parity_ok = report.parity.every((r) => r.ok);
  try {
    await diagnose(
      cpu,
      makeDevice,
      models.filter((m) => !m.bf16),
      ids,
    );
  } catch (err) {
    report.errors.push(`op parity: ${(err as Error).stack ?? err}`);
  }
  save();
  return { models, ids, cudaRuns };
}

/**
 * Where quantized models part between the devices: q8/q4 matmuls on random and on the models' own
 * tensors, then both devices traced op by op on each model (the first differing op).
 */
async function diagnose(
  cpu: Device,
  makeDevice: () => Device,
  quantized: { name: string; dir: string }[],
  ids: number[],
): Promise<void> {
  report.op_parity = opParity(cpu, makeDevice());
  for (const r of report.op_parity)
    log(`op parity ${r.dtype} matmul n=${r.n}: rel diff ${r.rel_diff.toExponential(2)}`);
  report.tensor_parity = [];
  for (const m of quantized) {
    const ckpt = openCheckpoint(m.dir);
    try {
      for (const r of checkpointOpParity(ckpt, cpu, makeDevice())) {
        report.tensor_parity.push(r);
        if (r.rel_diff > 1e-4)
          log(
            `tensor parity ${m.name} ${r.tensor} [${r.rows}x${r.cols}] n=${r.n}: rel diff ${r.rel_diff.toExponential(2)}`,
          );
      }
    } finally {
      ckpt.close();
    }
  }
  log(
    `tensor parity: ${report.tensor_parity.length} matmuls, worst ${Math.max(0, ...report.tensor_parity.map((r) => r.rel_diff)).toExponential(2)}`,
  );
  // Where a quantized model's logits start to differ: both devices traced op by op.
  report.op_trace = [];
  for (const m of quantized) {
    const ta: OpRecord[] = [];
    const tb: OpRecord[] = [];
    await greedy(m.dir, tracingDevice(cpu, ta), ids, 2);
    await greedy(m.dir, tracingDevice(makeDevice(), tb), ids, 2);
    const d = firstDivergence(ta, tb, 1e-4);
    report.op_trace.push({ model: m.name, ...d });
    log(
      `op trace ${m.name}: ${d.op ? `first difference at op ${d.index} of ${d.ops} (${d.op}): rel ${d.rel_diff.toExponential(2)}` : `all ${d.ops} ops agree`}, worst before ${d.worst_before.toExponential(2)}`,
    );
  }
}

async function selftest(): Promise<number> {
  report.summary.device = "selftest (CPU vs CPU, no GPU)";
  await parity(() => new CpuDevice({ threads: 1 }));
  log(`selftest parity_ok=${report.summary.parity_ok}`);
  return report.summary.parity_ok ? 0 : 3;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    report.errors.push(String((err as Error).stack ?? err));
    save();
    console.error(err);
    process.exit(2);
  },
);
