/**
 * `npm run model -- <make|quantize|export-gguf> ...`: generate, quantize and export checkpoints.
 * Every command prints --help; bad arguments exit with status 2 and a one-line reason.
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { isFamily, isPresetName, PRESET_NAMES, presetNames } from "../model/presets.js";
import { exportGguf, type GgufExportType } from "./export-gguf.js";
import { makeModel } from "./make-model.js";
import { quantizeCheckpoint } from "./quantize.js";

const MAIN_HELP = `npm run model -- <command> [options]

Commands:
  make          generate a Hugging Face-layout checkpoint (config, safetensors, tokenizer)
  quantize      write a quantized copy of a checkpoint (8 or 4 bits)
  export-gguf   write a checkpoint as one GGUF file (llama.cpp)

Run "npm run model -- <command> --help" for a command's options.`;

const MAKE_HELP = `npm run model -- make --family llama4|mixtral|qwen3moe --preset NAME --out DIR [options]

Writes config.json, model.safetensors (or shards + index above --shard-bytes),
tokenizer.json, tokenizer_config.json, generation_config.json, special_tokens_map.json.
  --family F          llama4 | mixtral | qwen3moe
  --preset P          ${PRESET_NAMES.join(" | ")}
                      (tiny-maverick and maverick are llama4 only)
  --out DIR           output folder (created; old model files in it are replaced)
  --config FILE|JSON  overrides deep-merged into config.json (a file path or inline JSON)
  --seed N            weight seed (default 0); same seed -> identical bytes
  --dtype D           bf16 (default) | f16 | f32
  --router-skew S     Zipf exponent of expert popularity (default 0 = no preference):
                      expert e is routed ~ (e+1)^-S of the time
  --shard-bytes N     shard size limit in bytes (default 2e9)
  --quiet             no progress bar / summary`;

const QUANT_HELP = `npm run model -- quantize --in DIR --out DIR --bits 8|4

Quantized copy of a checkpoint folder (group-wise, 32 per group; routers and norms kept).
  --in DIR      source checkpoint folder
  --out DIR     destination folder
  --bits 8|4    quantization width`;

const GGUF_HELP = `npm run model -- export-gguf --in DIR --out FILE [--type f32|bf16|q8_0|q4_0]

Writes the checkpoint as a GGUF v3 file with tokenizer metadata (loadable by llama.cpp).
  --in DIR      source checkpoint folder
  --out FILE    output .gguf path
  --type T      f32 | bf16 (default) | q8_0 | q4_0
  --name NAME   general.name (default: folder name)`;

class UsageError extends Error {}

function need(v: string | undefined, flag: string): string {
  if (v === undefined || v === "") throw new UsageError(`missing ${flag}`);
  return v;
}

function parseNumber(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`${flag} must be a number, got ${JSON.stringify(v)}`);
  return n;
}

function readOverrides(arg: string): Record<string, unknown> {
  const text = arg.trimStart().startsWith("{") ? arg : readFileSync(arg, "utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--config: invalid JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError("--config must hold a JSON object");
  }
  return parsed as Record<string, unknown>;
}

function fmtBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e3).toFixed(1)} kB`;
}

function runMake(args: string[]): void {
  const { values } = parseArgs({
    args,
    options: {
      family: { type: "string" },
      preset: { type: "string" },
      out: { type: "string" },
      config: { type: "string" },
      seed: { type: "string", default: "0" },
      dtype: { type: "string", default: "bf16" },
      "router-skew": { type: "string", default: "0" },
      "shard-bytes": { type: "string" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(MAKE_HELP);
    return;
  }
  const family = need(values.family, "--family");
  if (!isFamily(family)) throw new UsageError(`--family must be llama4, mixtral or qwen3moe, got ${family}`);
  const preset = need(values.preset, "--preset");
  if (!isPresetName(preset) || !presetNames(family).includes(preset)) {
    throw new UsageError(
      `--preset for ${family} must be one of ${presetNames(family).join(", ")}, got ${preset}`,
    );
  }
  const out = need(values.out, "--out");
  const seed = parseNumber(values.seed, "--seed");
  if (!Number.isSafeInteger(seed) || seed < 0) throw new UsageError("--seed must be a non-negative integer");
  const dtype = values.dtype;
  if (dtype !== "bf16" && dtype !== "f16" && dtype !== "f32")
    throw new UsageError("--dtype must be bf16, f16 or f32");
  const routerSkew = parseNumber(values["router-skew"], "--router-skew");
  if (routerSkew < 0) throw new UsageError("--router-skew must be >= 0");
  const overrides = values.config ? readOverrides(values.config) : {};
  const maxShardBytes = values["shard-bytes"]
    ? parseNumber(values["shard-bytes"], "--shard-bytes")
    : undefined;

  const bar =
    process.stderr.isTTY && !values.quiet
      ? new cliProgress.SingleBar(
          { format: "make {bar} {percentage}% | {done}/{size} | {tensor}", hideCursor: true },
          cliProgress.Presets.shades_classic,
        )
      : null;
  let started = false;
  const res = makeModel({
    family,
    preset,
    out,
    seed,
    dtype,
    routerSkew,
    overrides,
    maxShardBytes,
    onProgress: bar
      ? (done, total, tensor) => {
          if (!started) {
            bar.start(total, 0, { done: fmtBytes(0), size: fmtBytes(total), tensor });
            started = true;
          }
          bar.update(done, { done: fmtBytes(done), size: fmtBytes(total), tensor });
        }
      : undefined,
  });
  bar?.stop();
  if (!values.quiet) {
    console.log(
      `wrote ${res.dir}: ${family}/${preset}, ${(res.params / 1e6).toFixed(1)}M params, ${res.tensors} tensors, ` +
        `${fmtBytes(res.totalBytes)} in ${res.files.length} file(s), ${res.seconds.toFixed(1)} s`,
    );
  }
}

function runQuantize(args: string[]): void {
  const { values } = parseArgs({
    args,
    options: {
      in: { type: "string" },
      out: { type: "string" },
      bits: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(QUANT_HELP);
    return;
  }
  const inDir = need(values.in, "--in");
  const outDir = need(values.out, "--out");
  const bits = Number(need(values.bits, "--bits"));
  if (bits !== 8 && bits !== 4) throw new UsageError("--bits must be 8 or 4");
  const t0 = performance.now();
  const r = quantizeCheckpoint(inDir, outDir, bits);
  console.log(
    `wrote ${outDir}: ${bits}-bit, ${r.quantized} matrices quantized, ${r.kept} tensors kept, ` +
      `${fmtBytes(r.totalBytes)} in ${r.files.length} file(s), ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}

const GGUF_TYPES: readonly GgufExportType[] = ["f32", "bf16", "q8_0", "q4_0"];

function runExportGguf(args: string[]): void {
  const { values } = parseArgs({
    args,
    options: {
      in: { type: "string" },
      out: { type: "string" },
      type: { type: "string", default: "bf16" },
      name: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(GGUF_HELP);
    return;
  }
  const inDir = need(values.in, "--in");
  const outFile = need(values.out, "--out");
  const type = values.type as GgufExportType;
  if (!GGUF_TYPES.includes(type)) throw new UsageError(`--type must be one of ${GGUF_TYPES.join(", ")}`);
  const t0 = performance.now();
  const r = exportGguf(inDir, outFile, type, { name: values.name });
  for (const w of r.warnings) console.warn(`warning: ${w}`);
  console.log(
    `wrote ${outFile}: ${type}, ${r.tensors} tensors, ${fmtBytes(r.bytes)}, ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}

const COMMANDS: Record<string, (args: string[]) => void> = {
  make: runMake,
  quantize: runQuantize,
  "export-gguf": runExportGguf,
};

/** Run one command line (without the node/script prefix); returns the exit status. */
export function main(argv: string[]): number {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "--help" || cmd === "-h" || cmd === "help") {
    console.log(MAIN_HELP);
    return cmd === undefined ? 2 : 0;
  }
  const run = COMMANDS[cmd];
  if (!run) {
    console.error(`unknown command ${JSON.stringify(cmd)}\n\n${MAIN_HELP}`);
    return 2;
  }
  try {
    run(rest);
    return 0;
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`model ${cmd}: ${(e as Error).message} (see --help)`);
      return 2;
    }
    console.error(`model ${cmd}: ${(e as Error).message}`);
    return 1;
  }
}

// Run only as the entry script, so tests can import main() and call it in-process.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
