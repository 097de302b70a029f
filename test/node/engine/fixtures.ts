import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import type { MoeEngine } from "../../../gpu-backend/engine/engine.js";
import { greedyParams } from "../../../gpu-backend/engine/greedy.js";
import { type LoadEngineOptions, loadEngine } from "../../../gpu-backend/engine/load-engine.js";
import type { Family } from "../../../gpu-backend/model/types.js";
import { makeModel } from "../../../gpu-backend/tools/make-model.js";

/** Tiny checkpoints of each family in a temp folder, made once per test file. */
export function makeTinyModels(families: Family[]): { dirs: Record<string, string>; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), "moe-engine-"));
  const dirs: Record<string, string> = {};
  for (const family of families) {
    dirs[family] = join(root, family);
    makeModel({ family, preset: "tiny", out: dirs[family], seed: 3 });
  }
  return { dirs, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/**
 * An engine on a tiny model of `family` for the tests of the enclosing describe block (made in
 * its beforeAll, closed in its afterAll); call the returned function inside the tests.
 */
export function tinyEngine(family: Family, opts: LoadEngineOptions = {}): () => MoeEngine {
  let models: ReturnType<typeof makeTinyModels> | undefined;
  let engine: MoeEngine | undefined;
  beforeAll(async () => {
    models = makeTinyModels([family]);
    engine = await loadEngine(models.dirs[family], { threads: 1, ...opts });
  });
  afterAll(() => {
    engine?.close();
    models?.cleanup();
  });
  return () => engine!;
}

export const greedy = greedyParams(12);

export async function collect(
  gen: AsyncGenerator<{ tokenId: number; text: string }, { completionTokens: number; cachedTokens: number }>,
): Promise<{ ids: number[]; text: string; cachedTokens: number; completionTokens: number }> {
  const ids: number[] = [];
  let text = "";
  let r = await gen.next();
  while (!r.done) {
    ids.push(r.value.tokenId);
    text += r.value.text;
    r = await gen.next();
  }
  return { ids, text, cachedTokens: r.value.cachedTokens, completionTokens: r.value.completionTokens };
}
