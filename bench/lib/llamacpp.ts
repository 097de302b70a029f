import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * llama.cpp as seen from the root project: node-llama-cpp lives in its own package under
 * bench/llamacpp (700 MB of prebuilt binaries, kept out of the root install), so we run its
 * script in a child process and read back JSON.
 */

export const LLAMACPP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "llamacpp");
const RUNNER = join(LLAMACPP_DIR, "run-gguf.mjs");

export interface LlamaCppTimings {
  load_ms: number;
  prefill_ms: number;
  prefill_tps: number;
  decode_ms: number;
  decode_tps: number;
}

export interface LlamaCppResult {
  prompt_ids: number[];
  ids: number[];
  /** Next-token logits after the prompt, indexed by token id (with logits: "first" | "all"). */
  first_logits?: number[];
  /** Logits after each generated token but the last, teacher-forced on `ids` (logits: "all"). */
  step_logits?: number[][];
  timings: LlamaCppTimings;
}

export interface LlamaCppRun {
  model: string;
  threads: number;
  results: LlamaCppResult[];
}

export interface LlamaCppOptions {
  model: string;
  prompts: number[][];
  maxTokens: number;
  /** Default: number of cores (llama.cpp's own default oversubscribes small machines). */
  threads?: number;
  /** Timed repetitions per prompt; timings are the best of them. */
  repeats?: number;
  logits?: "none" | "first" | "all";
  /** KV cache type: llama.cpp's default F16 (benchmarks) or F32 (parity: no cache rounding). */
  kvType?: "F16" | "F32";
}

export function llamaCppInstalled(): boolean {
  return existsSync(join(LLAMACPP_DIR, "node_modules", "node-llama-cpp", "package.json"));
}

/** Install bench/llamacpp's pinned dependencies (node-llama-cpp 3.22.1) unless already there. */
export function ensureLlamaCpp(): void {
  if (llamaCppInstalled()) return;
  process.stderr.write("installing node-llama-cpp into bench/llamacpp (~700 MB, once)...\n");
  // `npm install` at the lockfile's versions: `npm ci` rejects this lockfile (npm lists the other
  // platforms' optional binary packages as missing). No install scripts: the prebuilt binaries
  // ship in the packages, node-llama-cpp's postinstall would only try to download or build.
  const r = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts"], {
    cwd: LLAMACPP_DIR,
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (r.status !== 0 || !llamaCppInstalled()) {
    throw new Error(`npm install in ${LLAMACPP_DIR} failed (status ${r.status})`);
  }
}

/** Run llama.cpp greedily on token ids; resolves with its JSON report. */
export function runLlamaCpp(opts: LlamaCppOptions): Promise<LlamaCppRun> {
  ensureLlamaCpp();
  const args = [
    RUNNER,
    "--model",
    resolve(opts.model),
    "--max-tokens",
    String(opts.maxTokens),
    "--threads",
    String(opts.threads ?? cpus().length),
    "--repeats",
    String(opts.repeats ?? 1),
    "--logits",
    opts.logits ?? "none",
    "--kv-type",
    opts.kvType ?? "F16",
  ];
  for (const p of opts.prompts) args.push("--prompt-ids", p.join(","));
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { cwd: LLAMACPP_DIR, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (code) => {
      const stderr = Buffer.concat(err).toString("utf8");
      if (code !== 0) {
        reject(new Error(`llama.cpp runner failed (exit ${code}) on ${opts.model}:\n${stderr.slice(-4000)}`));
        return;
      }
      try {
        resolvePromise(JSON.parse(Buffer.concat(out).toString("utf8")) as LlamaCppRun);
      } catch (e) {
        reject(
          new Error(`llama.cpp runner printed no JSON (${(e as Error).message}):\n${stderr.slice(-4000)}`),
        );
      }
    });
  });
}
