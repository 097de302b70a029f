import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PARITY_CASES, ROOT, runParity } from "../test/parity/parity-lib.js";

const HELP = `npm run parity -- [options]

Greedy parity of our engine against llama.cpp (node-llama-cpp, installed on demand into
bench/llamacpp): for each case a small checkpoint is made (npm run model -- make), exported to
GGUF, and both engines generate from the same token ids; ids must be identical.
  --cases a,b          case names (default: all but diagnostic ones)
                       ${PARITY_CASES.map((c) => (c.diagnostic ? `${c.name} (diagnostic: ${c.diagnostic})` : c.name)).join("\n                       ")}
  --types f32,bf16     GGUF types to compare (default f32,bf16)
  --max-tokens N       tokens generated per prompt (default 64)
  --prompt-lengths L   comma-separated prompt lengths (default 1,7,23,70)
  --steps              also compare teacher-forced logits at every step (locates divergences)
  --emulate-bf16       on bf16 GGUFs also run ours rounding bf16-matmul inputs to bf16 as
                       llama.cpp's CPU backend does (attributes bf16 differences)
  --cache DIR          where models are made and reused (default .cache/parity)
  --out FILE           JSON report (default <cache>/report.json)
Exit status 1 when a generation diverges beyond a rounding near-tie (see test/parity/parity-lib.ts).`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      cases: { type: "string" },
      types: { type: "string", default: "f32,bf16" },
      "max-tokens": { type: "string", default: "64" },
      "prompt-lengths": { type: "string", default: "1,7,23,70" },
      steps: { type: "boolean", default: false },
      "emulate-bf16": { type: "boolean", default: false },
      cache: { type: "string", default: join(ROOT, ".cache", "parity") },
      out: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const wanted = values.cases?.split(",");
  const cases = wanted
    ? PARITY_CASES.filter((c) => wanted.includes(c.name))
    : PARITY_CASES.filter((c) => !c.diagnostic);
  if (wanted && cases.length !== wanted.length) {
    throw new Error(
      `unknown case in --cases ${values.cases}; known: ${PARITY_CASES.map((c) => c.name).join(", ")}`,
    );
  }
  mkdirSync(values.cache, { recursive: true });
  const rows = await runParity({
    cacheDir: values.cache,
    maxTokens: Number(values["max-tokens"]),
    promptLengths: values["prompt-lengths"].split(",").map(Number),
    ggufTypes: values.types.split(","),
    cases,
    stepLogits: values.steps,
    emulateBf16: values["emulate-bf16"],
    log: (line) => console.error(line),
  });
  console.table(
    rows.map((r) => ({
      case: r.case,
      ours: r.ours,
      llamacpp: r.llamacpp,
      prompt: r.promptLen,
      status: r.status,
      distinct: r.distinctIds,
      first_diff: r.firstDiff,
      logit_diff: Number(r.firstLogitsMaxAbsDiff.toExponential(2)),
      logit_scale: Number(r.firstLogitsMaxAbs.toFixed(2)),
      step_diff: r.stepLogitsMaxAbsDiff === undefined ? "" : Number(r.stepLogitsMaxAbsDiff.toExponential(2)),
      diff_to_diff: r.diffUpToDiff === undefined ? "" : Number(r.diffUpToDiff.toExponential(2)),
      margin_at_diff: r.marginAtDiff === undefined ? "" : Number(r.marginAtDiff.toExponential(2)),
    })),
  );
  const out = values.out ?? join(values.cache, "report.json");
  writeFileSync(out, `${JSON.stringify(rows, null, 2)}\n`);
  const count = (st: string) => rows.filter((r) => r.status === st).length;
  const bad = rows.filter((r) => r.status === "DIVERGED");
  console.log(
    `${count("identical")}/${rows.length} generations identical, ${count("near-tie")} part at a near-tie (rounding), ${bad.length} diverged; report: ${out}`,
  );
  if (bad.length > 0) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(2);
});
