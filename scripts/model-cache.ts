/**
 * The generated default model: made once into a cache folder (with a progress bar), reused after.
 * Written to a temporary sibling and renamed at the end, so an interrupted run leaves no
 * half-written model behind.
 */
import { existsSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { SingleBar } from "cli-progress";
import type { PresetName } from "../gpu-backend/model/presets.js";
import type { Family } from "../gpu-backend/model/types.js";
import { makeModel } from "../gpu-backend/tools/make-model.js";

export function modelCacheDir(cacheDir: string, family: Family, preset: PresetName): string {
  return join(cacheDir, `${preset}-${family}`);
}

export function ensureGeneratedModel(
  cacheDir: string,
  family: Family,
  preset: PresetName,
  opts: { progress?: boolean } = {},
): { dir: string; generated: boolean } {
  const dir = modelCacheDir(cacheDir, family, preset);
  if (existsSync(join(dir, "config.json"))) return { dir, generated: false };
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const bar = opts.progress
    ? new SingleBar({
        format: "  generating {family}/{preset} [{bar}] {percentage}% | {done}/{total} MB",
        hideCursor: true,
        clearOnComplete: false,
      })
    : null;
  const mb = (b: number) => (b / 1e6).toFixed(1);
  if (opts.progress) console.log(`generating the ${family}/${preset} model into ${dir} (first start only)`);
  try {
    let started = false;
    const result = makeModel({
      family,
      preset,
      out: tmp,
      onProgress: (done, total) => {
        if (!bar) return;
        if (!started) {
          bar.start(total, 0, { family, preset, done: mb(0), total: mb(total) });
          started = true;
        }
        bar.update(done, { done: mb(done), total: mb(total) });
      },
    });
    bar?.stop();
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    if (opts.progress) {
      console.log(
        `  wrote ${dir}: ${(result.params / 1e6).toFixed(1)}M params in ${result.seconds.toFixed(1)} s`,
      );
    }
    return { dir, generated: true };
  } catch (err) {
    bar?.stop();
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
