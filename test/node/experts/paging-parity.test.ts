import { copyFileSync, cpSync, mkdtempSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CpuDevice } from "../../../gpu-backend/device/cpu/cpu-device.js";
import type { Device } from "../../../gpu-backend/device/device.js";
import { greedyParams } from "../../../gpu-backend/engine/greedy.js";
import { KvCache } from "../../../gpu-backend/engine/kv-cache.js";
import { loadEngine } from "../../../gpu-backend/engine/load-engine.js";
import { MoeTransformer } from "../../../gpu-backend/engine/model.js";
import { EagerExpertProvider } from "../../../gpu-backend/experts/eager-provider.js";
import type { ExpertProvider } from "../../../gpu-backend/experts/provider.js";
import { ExpertStore } from "../../../gpu-backend/experts/store.js";
import { openCheckpoint } from "../../../gpu-backend/model/checkpoint.js";
import type { ExpertWeights } from "../../../gpu-backend/model/types.js";
import { makeModel } from "../../../gpu-backend/tools/make-model.js";
import { quantizeCheckpoint } from "../../../gpu-backend/tools/quantize.js";

/**
 * Paging never changes outputs: greedy ids and the logits of every step are bit-identical
 * between the eager provider and the lazy store at every budget and policy, while the store
 * never holds more than its budget and counts every acquired expert exactly once.
 */

let root: string;
const models: Record<string, string> = {};

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "paging-parity-"));
  // Llama 4 bf16 (fused expert stacks: decode transposes into new memory), the same model
  // quantized to q8 (per-expert tensors: weights are views into the slot), and Qwen3 (top-8 of
  // 16... per the preset, with a dense layer).
  models.llama4 = makeModel({
    family: "llama4",
    preset: "tiny",
    out: join(root, "llama4"),
    routerSkew: 1,
  }).dir;
  models.llama4q8 = join(root, "llama4-q8");
  quantizeCheckpoint(models.llama4, models.llama4q8, 8);
  models.qwen3 = makeModel({ family: "qwen3moe", preset: "tiny", out: join(root, "qwen3") }).dir;
  models.maverick = makeModel({ family: "llama4", preset: "tiny-maverick", out: join(root, "maverick") }).dir;
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Wraps a store: checks the budget after every acquire and counts what was asked. */
class Checked implements ExpertProvider {
  asked = 0;
  maxResident = 0;
  constructor(readonly store: ExpertStore) {}
  get maxExpertsPerAcquire(): number {
    return this.store.maxExpertsPerAcquire;
  }
  get wantsHints(): boolean {
    return this.store.wantsHints;
  }
  async acquire(layer: number, experts: number[]): Promise<ExpertWeights[]> {
    const w = await this.store.acquire(layer, experts);
    this.asked += experts.length;
    const r = this.store.residentBytes();
    this.maxResident = Math.max(this.maxResident, r);
    if (r > this.store.budgetBytes) throw new Error(`resident ${r} > budget ${this.store.budgetBytes}`);
    return w;
  }
  hint(layer: number, experts: number[]): void {
    this.store.hint(layer, experts);
  }
  useDevice(device: Device): void {
    this.store.useDevice(device);
  }
  stats(): Record<string, number> {
    return this.store.stats();
  }
  close(): void {
    this.store.close();
  }
}

const PROMPT = [5, 17, 42, 99, 7, 7, 130, 64, 3, 250, 18, 77, 91, 12, 40, 41, 42, 43, 200, 6];
const STEPS = 6;

/** Greedy decode with our own loop, keeping a copy of every step's logits. */
async function run(dir: string, provider: (ckpt: ReturnType<typeof openCheckpoint>) => ExpertProvider) {
  const ckpt = openCheckpoint(dir);
  const experts = provider(ckpt);
  const model = new MoeTransformer(ckpt, new CpuDevice({ threads: 1 }), experts);
  const cache = new KvCache(model.config, PROMPT.length + STEPS);
  const ids: number[] = [];
  const logits: Float32Array[] = [];
  let out = await model.forward(PROMPT, cache);
  for (let i = 0; i < STEPS; i++) {
    logits.push(out.slice());
    let best = 0;
    for (let j = 1; j < out.length; j++) if (out[j] > out[best]) best = j;
    ids.push(best);
    if (i + 1 < STEPS) out = await model.forward([best], cache);
  }
  return { ids, logits, experts, ckpt };
}

function sameBits(a: Float32Array[], b: Float32Array[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => Buffer.from(x.buffer).equals(Buffer.from(b[i].buffer)));
}

describe.each(["llama4", "llama4q8", "qwen3", "maverick"])("paging parity: %s", (name) => {
  it("eager, 100/50/25% and the smallest budget, under LRU and LFU, give identical ids and logits", async () => {
    const dir = models[name];
    const eager = await run(dir, (ckpt) => new EagerExpertProvider(ckpt, new CpuDevice({ threads: 1 })));
    eager.ckpt.close();
    // The prompt must exercise the model: several distinct tokens out, not one repeated.
    expect(new Set(eager.ids).size).toBeGreaterThan(1);
    const probe = new ExpertStore(openCheckpoint(dir), { budget: "100%", maxExpertsPerStep: 1 });
    const c = eager.ckpt.config;
    const minBudget = String(c.topK * probe.expertCost);
    probe.close();
    const total = c.moeLayers.filter(Boolean).length * c.numExperts;
    const budgets = ["100%", "50%", "25%"].filter((b) => (Number.parseFloat(b) / 100) * total >= c.topK);
    // Every budget under both policies on the q8 model; the smallest budget (the hardest case)
    // under both policies and one middle budget on the others, to keep the file quick.
    const full = name === "llama4q8";
    const combos = full
      ? [...budgets, minBudget].flatMap((b) => ["lru", "lfu"].map((p) => [b, p] as const))
      : [
          [minBudget, "lru"] as const,
          [minBudget, "lfu"] as const,
          [budgets.at(-1) ?? "100%", "lfu"] as const,
        ];
    for (const [budget, policy] of combos) {
      let checked: Checked | null = null;
      const lazy = await run(dir, (ckpt) => {
        checked = new Checked(new ExpertStore(ckpt, { budget, policy, maxExpertsPerStep: c.topK }));
        return checked;
      });
      const ch = checked as unknown as Checked;
      expect(lazy.ids, `${budget} ${policy}`).toEqual(eager.ids);
      expect(sameBits(lazy.logits, eager.logits), `${budget} ${policy} logits`).toBe(true);
      const st = ch.store.stats();
      expect(st.hits + st.misses).toBe(ch.asked);
      expect(st.acquired_experts).toBe(ch.asked);
      expect(ch.maxResident).toBeLessThanOrEqual(ch.store.budgetBytes);
      if (budget === minBudget) expect(st.loads).toBeGreaterThan(st.hits); // it really streams
      if (budget === "100%") expect(st.evictions).toBe(0);
      ch.close();
    }
  });
});

describe("lazy engine faults and limits", () => {
  it("loadEngine refuses a budget below one step's experts with a clear message", async () => {
    await expect(loadEngine(models.llama4, { expertBudget: "1KiB" })).rejects.toThrow(
      /expert budget 1\.0 KiB is too small: it holds 0 routed expert\(s\).*one step can need 1 experts/,
    );
  });

  it("a truncated checkpoint fails the request that needs the lost expert; the next request works", async () => {
    const dir = join(root, "truncated");
    cpSync(models.llama4q8, dir, { recursive: true });
    const file = join(dir, "model.safetensors");
    const ckpt = openCheckpoint(dir);
    // Cut the file inside the last byte range any expert has.
    let last = { layer: 0, expert: 0, end: 0, offset: 0 };
    for (let l = 0; l < ckpt.config.numLayers; l++) {
      if (!ckpt.config.moeLayers[l]) continue;
      for (let e = 0; e < ckpt.config.numExperts; e++) {
        for (const r of ckpt.expertRanges(l, e)) {
          if (r.offset + r.length > last.end)
            last = { layer: l, expert: e, end: r.offset + r.length, offset: r.offset };
        }
      }
    }
    ckpt.close();
    const backup = join(root, "backup.safetensors");
    copyFileSync(file, backup);
    const size = statSync(file).size;
    const lazy = openCheckpoint(dir);
    const store = new ExpertStore(lazy, { budget: "100%", maxExpertsPerStep: lazy.config.numExperts });
    const model = new MoeTransformer(lazy, new CpuDevice({ threads: 1 }), store);
    // The disk goes bad while serving: the file loses its tail.
    truncateSync(file, last.offset + 1);
    // Every expert of the cut layer is requested by a long enough prompt; one of them cannot load.
    const tryAll = async () => {
      for (let e = 0; e < lazy.config.numExperts; e++) await store.acquire(last.layer, [e]);
    };
    await expect(tryAll()).rejects.toThrow(
      new RegExp(`loading expert ${last.expert} of layer ${last.layer} failed: .*short read`),
    );
    expect(store.residentSet().some(([l, e]) => l === last.layer && e === last.expert)).toBe(false);
    // Restore the bytes (the operator fixed the disk): the same store serves the next request.
    copyFileSync(backup, file);
    expect(statSync(file).size).toBe(size);
    const cache = new KvCache(model.config, PROMPT.length);
    const logits = await model.forward(PROMPT, cache);
    expect(logits.every(Number.isFinite)).toBe(true);
    const w = await store.acquire(last.layer, [last.expert]);
    expect(w[0].down.data.length).toBeGreaterThan(0);
    expect(store.stats().read_errors).toBeGreaterThanOrEqual(1);
    store.close();
  });

  it("loadEngine with a budget serves lazily with the same greedy ids as eager", async () => {
    const collect = async (opts: Parameters<typeof loadEngine>[1]) => {
      const engine = await loadEngine(models.llama4q8, { threads: 1, ...opts });
      const ids: number[] = [];
      const gen = engine.generate(PROMPT, greedyParams(6));
      let r = await gen.next();
      while (!r.done) {
        ids.push(r.value.tokenId);
        r = await gen.next();
      }
      const paging = r.value.paging ?? {};
      engine.close();
      return { ids, paging };
    };
    const eager = await collect({});
    const lazy = await collect({ expertBudget: "25%", policy: "lru" });
    expect(lazy.ids).toEqual(eager.ids);
    expect(lazy.paging.misses).toBeGreaterThan(0);
    expect(lazy.paging.hits + lazy.paging.misses).toBe(lazy.paging.acquired_experts);
  });
});
