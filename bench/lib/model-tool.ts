/** Running the model tool from benchmarks (`npm run model -- ...` in a child process). */
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..", "..");

/** Runs `npm run model -- args` (logged with `tag`); throws if it fails. */
export function modelCli(tag: string, args: string[]): void {
  process.stderr.write(`[${tag}] npm run model -- ${args.join(" ")}\n`);
  const r = spawnSync(process.execPath, ["--import", "tsx", "gpu-backend/tools/model-cli.ts", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (r.status !== 0) throw new Error(`npm run model -- ${args.join(" ")} failed (${r.status})`);
}

/** A finished model: a checkpoint folder with its config.json, or a file. */
export const made = (p: string): boolean =>
  existsSync(p) && (statSync(p).isDirectory() ? existsSync(join(p, "config.json")) : true);
