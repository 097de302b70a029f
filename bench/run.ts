/**
 * Benchmark runner: `npm run bench -- NAME` imports bench/NAME.ts, calls its run(), prints the rows
 * as a table and writes bench/results/NAME.json ({ name, date, machine, rows, summary }).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

interface BenchResult {
  name: string;
  rows: Record<string, unknown>[];
  summary: Record<string, number>;
  /** Anything else a benchmark reports (notes, raw samples) is written after the summary. */
  [extra: string]: unknown;
}

const name = process.argv[2];
if (!name || !/^[\w-]+$/.test(name)) {
  console.error("usage: npm run bench -- NAME   (runs bench/NAME.ts)");
  process.exit(2);
}
const dir = import.meta.dirname;
const mod = (await import(pathToFileURL(resolve(dir, `${name}.ts`)).href)) as {
  run?: () => Promise<BenchResult>;
};
if (typeof mod.run !== "function") {
  console.error(`bench/${name}.ts does not export run()`);
  process.exit(2);
}
const result = await mod.run();
console.table(result.rows);
console.log(result.summary);
const machine = {
  cpu: cpus()[0]?.model ?? "unknown",
  cores: cpus().length,
  memGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  platform: `${process.platform}-${process.arch}`,
};
mkdirSync(join(dir, "results"), { recursive: true });
const out = join(dir, "results", `${name}.json`);
writeFileSync(out, `${JSON.stringify({ ...result, date: new Date().toISOString(), machine }, null, 2)}\n`);
console.log(`wrote ${out}`);
