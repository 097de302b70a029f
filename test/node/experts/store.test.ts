import { truncateSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { Device, Weight } from "../../../gpu-backend/device/device.js";
import { parseBudget } from "../../../gpu-backend/experts/budget.js";
import { planExpert } from "../../../gpu-backend/experts/layout.js";
import { pagingPrometheus } from "../../../gpu-backend/experts/metrics.js";
import { LfuAgingPolicy, LruPolicy } from "../../../gpu-backend/experts/policy.js";
import { type BlockReader, BufferedReader, defaultReader } from "../../../gpu-backend/experts/reader.js";
import { ExpertStore } from "../../../gpu-backend/experts/store.js";
import { allEqual, type FakeModel, makeFakeModel } from "./fake-checkpoint.js";

const models: FakeModel[] = [];
function model(opts: Parameters<typeof makeFakeModel>[0]): FakeModel {
  const m = makeFakeModel(opts);
  models.push(m);
  return m;
}
afterEach(() => {
  for (const m of models.splice(0)) m.cleanup();
});

/** A reader that fails the next `failures` reads touching `file` (then behaves). */
class FlakyReader implements BlockReader {
  readonly kind = "buffered" as const;
  reads = 0;
  constructor(
    private readonly inner: BlockReader,
    public failures = 0,
  ) {}
  alloc(bytes: number): Uint8Array {
    return this.inner.alloc(bytes);
  }
  async read(
    file: string,
    offset: number,
    length: number,
    dest: Uint8Array,
    destOffset: number,
  ): Promise<number> {
    this.reads++;
    if (this.failures > 0) {
      this.failures--;
      throw new Error("EIO: injected read failure");
    }
    return this.inner.read(file, offset, length, dest, destOffset);
  }
  close(): void {
    this.inner.close();
  }
}

/** Deterministic pseudo-random generator (tests must not depend on Math.random). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("budget parsing", () => {
  it("reads bytes, units and percentages", () => {
    expect(parseBudget("1073741824")).toEqual({ kind: "bytes", bytes: 1073741824 });
    expect(parseBudget("512MiB")).toEqual({ kind: "bytes", bytes: 512 * 1024 ** 2 });
    expect(parseBudget("1.5GB")).toEqual({ kind: "bytes", bytes: 1.5e9 });
    expect(parseBudget("25%")).toEqual({ kind: "percent", percent: 25 });
    expect(parseBudget("12.5%")).toEqual({ kind: "percent", percent: 12.5 });
  });
  it("rejects nonsense clearly", () => {
    expect(() => parseBudget("lots")).toThrow(/expected bytes/);
    expect(() => parseBudget("0%")).toThrow(/\(0, 100\]/);
    expect(() => parseBudget("150%")).toThrow(/\(0, 100\]/);
    expect(() => parseBudget("12 parsecs")).toThrow(/expected bytes/);
  });
});

describe("read plans", () => {
  it("merges close ranges into aligned spans and maps every range into the slot", () => {
    const f = "/x";
    const p = planExpert(
      [
        { file: f, offset: 13, length: 100 },
        { file: f, offset: 5000, length: 10 },
        { file: f, offset: 1_000_000, length: 50 },
      ],
      () => 2_000_000,
    );
    // Two spans: [0, 8192) holding the first two ranges, and the far one.
    expect(p.ops.map((o) => [o.offset, o.length, o.slotOffset])).toEqual([
      [0, 8192, 0],
      [999_424, 4096, 8192],
    ]);
    expect(p.views).toEqual([
      { slotOffset: 13, length: 100 },
      { slotOffset: 5000, length: 10 },
      { slotOffset: 8192 + (1_000_000 - 999_424), length: 50 },
    ]);
    expect(p.slotBytes).toBe(12288);
    expect(p.dataBytes).toBe(160);
    expect(p.readBytes).toBe(12288);
  });
  it("stops a span at the end of the file but never before the data", () => {
    const p = planExpert([{ file: "/x", offset: 100, length: 50 }], () => 200);
    expect(p.ops).toEqual([{ file: "/x", offset: 0, length: 200, slotOffset: 0 }]);
    const truncated = planExpert([{ file: "/x", offset: 100, length: 50 }], () => 120);
    expect(truncated.ops[0].length).toBe(150);
  });
});

describe("eviction policies", () => {
  it("LRU evicts the least recently used evictable key", () => {
    const p = new LruPolicy();
    for (const k of [1, 2, 3]) p.onInsert(k);
    p.onUse(1);
    expect(p.victim(() => true)).toBe(2);
    expect(p.victim((k) => k !== 2)).toBe(3);
    p.onEvict(2);
    expect(p.victim(() => true)).toBe(3);
  });
  it("LFU keeps frequently used keys, remembers history across evictions, and ages", () => {
    const p = new LfuAgingPolicy(10, 1000);
    for (const k of [1, 2, 3]) p.onInsert(k);
    for (let i = 0; i < 5; i++) p.onUse(1);
    p.onUse(2);
    p.onUse(3);
    p.onUse(3);
    expect(p.victim(() => true)).toBe(2);
    p.onEvict(2);
    // Key 4 arrives with no history: it is the next victim even though it is the newest.
    p.onInsert(4);
    p.onUse(4);
    expect(p.victim(() => true)).toBe(4);
    // Key 2 comes back with its count of 1 and ties with 4; the older use loses.
    p.onEvict(4);
    p.onInsert(2);
    expect(p.victim(() => true)).toBe(2);
  });
  it("LFU ages counts so old favourites fade", () => {
    const p = new LfuAgingPolicy(4, 4);
    p.onInsert(0);
    p.onInsert(1);
    for (let i = 0; i < 3; i++) p.onUse(0); // counts: 0 -> 3
    p.onUse(1); // 4th use: everything halves -> 0: 1.5, 1: 0.5
    for (let i = 0; i < 3; i++) p.onUse(1); // 1: 3.5 (aging again on the 8th use: 0.75 vs 1.75)
    p.onUse(1);
    expect(p.victim(() => true)).toBe(0);
  });
});

describe("ExpertStore", () => {
  const base = { numLayers: 4, numExperts: 8, topK: 2 };

  it("sizes capacity from a percentage or bytes and refuses budgets below one step", () => {
    const m = model(base);
    const s = new ExpertStore(m.ckpt, { budget: "25%", maxExpertsPerStep: 2, reader: new BufferedReader() });
    expect(s.capacity).toBe(8);
    expect(s.budgetBytes).toBe(8 * s.expertCost);
    const b = new ExpertStore(m.ckpt, {
      budget: String(3 * s.expertCost + 5),
      maxExpertsPerStep: 2,
      reader: new BufferedReader(),
    });
    expect(b.capacity).toBe(3);
    expect(() => new ExpertStore(m.ckpt, { budget: String(s.expertCost), maxExpertsPerStep: 2 })).toThrow(
      /expert budget .* is too small: it holds 1 routed expert.*one step can need 2 experts/,
    );
    expect(() => new ExpertStore(m.ckpt, { budget: "1%", maxExpertsPerStep: 2 })).toThrow(/too small/);
    expect(() => new ExpertStore(m.ckpt, { budget: "25%", maxExpertsPerStep: 2, policy: "mru" })).toThrow(
      /unknown expert eviction policy "mru"; known: lru, lfu/,
    );
  });

  for (const policy of ["lru", "lfu"]) {
    it(`${policy}: returns the right bytes, never exceeds the budget, counts exactly`, async () => {
      const m = model(base);
      const s = new ExpertStore(m.ckpt, {
        budget: "25%",
        maxExpertsPerStep: 3,
        policy,
        reader: defaultReader(),
      });
      const rnd = lcg(7);
      let acquired = 0;
      for (let step = 0; step < 200; step++) {
        const layer = step % base.numLayers;
        const n = 1 + Math.floor(rnd() * 3);
        const ids = new Set<number>();
        while (ids.size < n) ids.add(Math.floor(rnd() * base.numExperts));
        const experts = [...ids].sort((a, b) => a - b);
        // A guess for the next layer, right or wrong, exercises prefetch alongside demand loads.
        const w = await s.acquire(layer, experts);
        s.hint((layer + 1) % base.numLayers, [Math.floor(rnd() * base.numExperts)]);
        acquired += experts.length;
        expect(s.residentBytes()).toBeLessThanOrEqual(s.budgetBytes);
        experts.forEach((e, j) => {
          expect(allEqual(w[j].gate, m.valueAt(layer, e, 0))).toBe(true);
          expect(allEqual(w[j].up, m.valueAt(layer, e, 1))).toBe(true);
          expect(allEqual(w[j].down, m.valueAt(layer, e, 2))).toBe(true);
        });
      }
      await s.settled();
      const st = s.stats();
      expect(st.acquired_experts).toBe(acquired);
      expect(st.hits + st.misses).toBe(acquired);
      expect(st.resident_experts).toBeLessThanOrEqual(s.capacity);
      // Every load read its planned bytes; every miss not already in flight was a load.
      expect(st.loads).toBe(st.misses - st.misses_inflight + st.prefetch_issued);
      expect(st.prefetch_used).toBeLessThanOrEqual(st.prefetch_issued);
      expect(st.read_errors).toBe(0);
      const rep = s.report();
      expect(rep.layers.reduce((a, l) => a + l.hits, 0)).toBe(st.hits);
      expect(rep.layers.reduce((a, l) => a + l.resident.length, 0)).toBe(st.resident_experts);
      s.close();
    });
  }

  it("a failed read fails that acquire clearly, leaves nothing half-resident, and the next one works", async () => {
    const m = model(base);
    const reader = new FlakyReader(new BufferedReader());
    const s = new ExpertStore(m.ckpt, { budget: "50%", maxExpertsPerStep: 2, reader });
    await s.acquire(0, [0, 1]);
    reader.failures = 1;
    await expect(s.acquire(1, [2, 3])).rejects.toThrow(
      /loading expert [23] of layer 1 failed: EIO: injected read failure/,
    );
    const resident = s.residentSet();
    // The expert whose read failed is not resident; whatever did load is intact.
    expect(resident.filter(([l]) => l === 1).length).toBeLessThan(2);
    expect(s.stats().read_errors).toBe(1);
    expect(s.stats().failed_acquires).toBe(1);
    const w = await s.acquire(1, [2, 3]);
    expect(allEqual(w[0].gate, m.valueAt(1, 2, 0))).toBe(true);
    expect(allEqual(w[1].down, m.valueAt(1, 3, 2))).toBe(true);
    expect(s.residentBytes()).toBeLessThanOrEqual(s.budgetBytes);
  });

  it("a failed read of an expert read in several parts returns its slot only after every part settled", async () => {
    // The third matrix lies far from the first two: two reads per expert. The first fails at
    // once, the other is held; the acquire must not fail (and the slot be reused) while it is
    // still writing into the slot.
    const m = model({ ...base, tensorGap: 64 * 1024 });
    const far = m.ckpt.expertRanges(1, 2)[2].offset;
    let held: (() => void) | null = null;
    let active = 0;
    const inner = new BufferedReader();
    const reader: BlockReader = {
      kind: "buffered",
      alloc: (bytes) => inner.alloc(bytes),
      async read(file, offset, length, dest, destOffset) {
        if (offset <= far && far < offset + length) throw new Error("EIO: injected read failure");
        active++;
        try {
          if (!held) await new Promise<void>((r) => (held = r));
          return await inner.read(file, offset, length, dest, destOffset);
        } finally {
          active--;
        }
      },
      close: () => inner.close(),
    };
    const s = new ExpertStore(m.ckpt, { budget: "50%", maxExpertsPerStep: 2, reader });
    let settled = false;
    const acquire = s.acquire(1, [2]).finally(() => {
      settled = true;
    });
    acquire.catch(() => {});
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    expect(active).toBe(1);
    held!();
    await expect(acquire).rejects.toThrow(/loading expert 2 of layer 1 failed: EIO/);
    expect(active).toBe(0);
    expect(s.residentSet().some(([l, e]) => l === 1 && e === 2)).toBe(false);
  });

  it("truncated expert data fails with a clear error and the store keeps serving", async () => {
    const m = model(base);
    const s = new ExpertStore(m.ckpt, { budget: "50%", maxExpertsPerStep: 2, reader: defaultReader() });
    // Cut the file inside the last expert of the last layer.
    const last = m.ckpt.expertRanges(3, 7);
    truncateSync(m.file, last[2].offset + 10);
    await expect(s.acquire(3, [6, 7])).rejects.toThrow(/loading expert 7 of layer 3 failed: .*short read/);
    expect(s.residentSet().some(([l, e]) => l === 3 && e === 7)).toBe(false);
    const w = await s.acquire(0, [0, 5]);
    expect(allEqual(w[1].up, m.valueAt(0, 5, 1))).toBe(true);
    await expect(s.acquire(3, [7])).rejects.toThrow(/short read/);
    expect(s.stats().hits + s.stats().misses).toBe(s.stats().acquired_experts);
  });

  it("never evicts the current step's experts, even for a hint, and deduplicates loads in flight", async () => {
    const m = model(base);
    const reader = new FlakyReader(new BufferedReader());
    const probe = new ExpertStore(m.ckpt, { budget: "100%", maxExpertsPerStep: 2, reader });
    const s = new ExpertStore(m.ckpt, { budget: String(2 * probe.expertCost), maxExpertsPerStep: 2, reader });
    expect(s.capacity).toBe(2);
    const w = await s.acquire(0, [1, 2]);
    s.hint(1, [3, 4]); // no slot is free and both are pinned: nothing may load
    await s.settled();
    expect(s.stats().prefetch_issued).toBe(0);
    expect(allEqual(w[0].gate, m.valueAt(0, 1, 0))).toBe(true);
    expect(allEqual(w[1].gate, m.valueAt(0, 2, 0))).toBe(true);
    // A new step unpins the old one: now the guess loads, and the step that needs it shares the read.
    await s.acquire(0, [1]);
    s.hint(2, [5]);
    const readsBefore = reader.reads;
    const w2 = await s.acquire(2, [5]);
    expect(allEqual(w2[0].up, m.valueAt(2, 5, 1))).toBe(true);
    const st = s.stats();
    expect(st.prefetch_issued).toBe(1);
    expect(st.prefetch_used).toBe(1);
    expect(st.misses_inflight).toBe(1);
    expect(st.loads).toBe(3);
    expect(reader.reads - readsBefore).toBe(0); // the acquire issued no read of its own
    expect(st.hint_guesses).toBe(1); // layer 1's guess was never scored (no step of layer 1 yet)
  });

  it("scores prefetch: a landed guess is a hit, a wrong one is wasted when evicted", async () => {
    const m = model(base);
    const s = new ExpertStore(m.ckpt, { budget: "25%", maxExpertsPerStep: 2, reader: new BufferedReader() });
    await s.acquire(0, [0]);
    s.hint(1, [2, 3]);
    await s.settled();
    await s.acquire(1, [2]);
    let st = s.stats();
    expect(st.hits).toBe(1);
    expect(st.prefetch_used).toBe(1);
    expect(st.hint_correct).toBe(1);
    expect(st.hint_guesses).toBe(2);
    const rep = s.report();
    // One guess used, one still unresolved (resident, unused): precision counts resolved ones.
    expect(rep.totals.prefetch_precision).toBe(1);
    expect(rep.totals.prefetch_recall).toBe(0.5); // needed from disk: 0 (demand) and 2 (prefetched)
    expect(rep.totals.hint_accuracy).toBe(0.5);
    // Fill the store so the unused guess (layer 1, expert 3) is evicted.
    for (let e = 0; e < 8; e++) await s.acquire(2, [e]);
    st = s.stats();
    expect(st.prefetch_wasted).toBe(1);
    expect(s.report().totals.prefetch_precision).toBe(0.5);
    expect(s.residentBytes()).toBeLessThanOrEqual(s.budgetBytes);
  });

  it("stops reading guesses of a confidence that was usually wrong, and still scores them", async () => {
    const m = model(base);
    const s = new ExpertStore(m.ckpt, { budget: "25%", maxExpertsPerStep: 2, reader: new BufferedReader() });
    // Layer 1 always uses expert 0; each guess also names a wrong expert with low confidence.
    for (let i = 0; i < 80; i++) {
      await s.acquire(0, [0]);
      s.hint(1, [0, 1 + (i % 7)], [2, -1]);
      await s.acquire(1, [0]);
    }
    // Evict the wrong guesses: other layers' experts take their slots.
    for (let e = 0; e < 8; e++) await s.acquire(2, [e]);
    await s.acquire(0, [0]);
    await s.acquire(1, [0]);
    const before = s.stats();
    s.hint(1, [5, 6], [-1, 2]); // only the confident guess may load
    await s.settled();
    const after = s.stats();
    expect(after.prefetch_issued - before.prefetch_issued).toBe(1);
    expect(after.prefetch_skipped - before.prefetch_skipped).toBe(1);
    await s.acquire(1, [6]);
    const scored = s.stats();
    expect(scored.prefetch_used - before.prefetch_used).toBe(1);
    expect(scored.hint_guesses - before.hint_guesses).toBe(2); // the skipped guess is scored too
    expect(scored.hint_correct - before.hint_correct).toBe(1);
    expect(pagingPrometheus(s.report(), "m")).toContain(
      `moe_expert_prefetch_skipped_total{model="m"} ${scored.prefetch_skipped}\n`,
    );
  });

  it("counts as cache hits only what no read for that very step supplied", async () => {
    const m = model(base);
    const s = new ExpertStore(m.ckpt, { budget: "25%", maxExpertsPerStep: 2, reader: new BufferedReader() });
    await s.acquire(0, [0]); // demand load: a miss
    await s.acquire(0, [0]); // resident from the step before: a cache hit
    expect(s.stats()).toMatchObject({ hits: 1, cache_hits: 1 });
    s.hint(1, [2, 3]);
    await s.settled();
    await s.acquire(1, [2]); // the guess for this step, landed in time: a hit, not from the cache
    expect(s.stats()).toMatchObject({ hits: 2, cache_hits: 1, prefetch_used: 1 });
    await s.acquire(1, [3]); // the same guess, wrong for its step, used by a later one: cached
    expect(s.stats()).toMatchObject({ hits: 3, cache_hits: 2, prefetch_used: 2 });
    await s.acquire(1, [2]);
    expect(s.stats()).toMatchObject({ hits: 4, cache_hits: 3, misses: 1 });
  });

  it("refuses an acquire larger than its capacity and ids out of range", async () => {
    const m = model(base);
    const s = new ExpertStore(m.ckpt, { budget: "2", maxExpertsPerStep: 0, reader: new BufferedReader() })
      .capacity;
    expect(s).toBe(0);
    const t = new ExpertStore(m.ckpt, {
      budget: "6.25%",
      maxExpertsPerStep: 2,
      reader: new BufferedReader(),
    });
    await expect(t.acquire(0, [0, 1, 2])).rejects.toThrow(/exceeds the store's capacity of 2/);
    await expect(t.acquire(0, [8])).rejects.toThrow(/expert id 8 out of range/);
    const w = await t.acquire(0, [0, 1]);
    expect(allEqual(w[1].gate, m.valueAt(0, 1, 0))).toBe(true);
  });

  it("renders exact counters as Prometheus text, per layer and per expert", async () => {
    const m = model(base);
    const s = new ExpertStore(m.ckpt, { budget: "25%", maxExpertsPerStep: 2, reader: new BufferedReader() });
    await s.acquire(0, [1, 2]);
    await s.acquire(0, [2]);
    await s.acquire(3, [7]);
    const text = pagingPrometheus(s.report(), "m1");
    expect(text).toContain('moe_expert_hits_total{model="m1"} 1\n');
    expect(text).toContain('moe_expert_misses_total{model="m1"} 3\n');
    expect(text).toContain('moe_expert_layer_misses_total{model="m1",layer="3"} 1\n');
    expect(text).toContain('moe_expert_expert_hits_total{model="m1",layer="0",expert="2"} 1\n');
    expect(text).toContain('moe_expert_layer_resident{model="m1",layer="0"} 2\n');
    expect(text).toContain(`moe_expert_budget_bytes{model="m1"} ${s.budgetBytes}\n`);
  });

  it("counts as stall only the time the caller waits, not work it does before awaiting", async () => {
    const m = model(base);
    const s = new ExpertStore(m.ckpt, { budget: "25%", maxExpertsPerStep: 2, reader: new BufferedReader() });
    const pending = s.acquire(0, [1]);
    const t0 = performance.now();
    while (performance.now() - t0 < 200) {
      // the engine computing the shared expert while the read runs on an I/O thread
    }
    const w = await pending;
    expect(allEqual(w[0].gate, m.valueAt(0, 1, 0))).toBe(true);
    expect(s.stats().stall_ms).toBeLessThan(100);
    expect(s.stats().misses).toBe(1);
    // Never awaited before it settled: no stall at all.
    const again = s.acquire(0, [1]);
    await new Promise((r) => setTimeout(r, 20));
    const before = s.stats().stall_ms;
    await again;
    expect(s.stats().stall_ms).toBe(before);
  });
  it("counts a guess whose read finished before the step awaited as a hit (hit at call: a miss)", async () => {
    const m = model(base);
    const gate = new GatedReader(new BufferedReader());
    const s = new ExpertStore(m.ckpt, { budget: "25%", maxExpertsPerStep: 2, reader: gate });
    await s.acquire(0, [0]);
    gate.hold = true;
    s.hint(1, [2]);
    await new Promise((r) => setTimeout(r, 20)); // the bytes are in, the completion not delivered
    // The step asks before the completion was delivered (as when compute kept the event loop
    // from running); it is delivered before the step awaits: the step never waits for it.
    const pending = s.acquire(1, [2]);
    gate.release();
    const w = await pending;
    expect(allEqual(w[0].gate, m.valueAt(1, 2, 0))).toBe(true);
    let st = s.stats();
    expect(st.hits).toBe(1);
    expect(st.hits_at_call).toBe(0);
    expect(st.misses).toBe(1); // layer 0's demand load
    expect(st.misses_inflight).toBe(0);
    expect(st.prefetch_used).toBe(1);
    // A guess still reading when the step awaits is a miss whose read was already under way.
    gate.hold = true;
    s.hint(2, [3]);
    const late = s.acquire(2, [3]);
    setTimeout(() => gate.release(), 20);
    await late;
    st = s.stats();
    expect(st.hits).toBe(1);
    expect(st.misses).toBe(2);
    expect(st.misses_inflight).toBe(1);
    expect(st.prefetch_used).toBe(2);
  });

  it("adopts resident experts while a step waits for reads, so their first hit converts nothing", async () => {
    const m = model(base);
    const gate = new GatedReader(new BufferedReader());
    const s = new ExpertStore(m.ckpt, { budget: "25%", maxExpertsPerStep: 2, reader: gate });
    const adopted: Weight[] = [];
    s.useDevice({
      adopt: (w: Weight) => {
        if (w.packed) return w;
        adopted.push(w);
        if (adopted.length === 3) gate.release(); // the held read lands once the third is done
        return { ...w, packed: true };
      },
    } as unknown as Device);
    await s.acquire(0, [1]); // a miss: used as read, not adopted
    expect(adopted).toHaveLength(0);
    gate.hold = true;
    await s.acquire(1, [2]);
    // While layer 1's read was held, layer 0's expert 1 was adopted (its three matrices).
    expect(adopted).toHaveLength(3);
    const [w] = await s.acquire(0, [1]); // a hit: nothing left to convert
    expect(adopted).toHaveLength(3);
    expect(w.gate.packed && w.up.packed && w.down.packed).toBe(true);
    expect(allEqual(w.down, m.valueAt(0, 1, 2))).toBe(true);
    // The expert read meanwhile is adopted at its first hit, as before.
    await s.acquire(1, [2]);
    expect(adopted).toHaveLength(6);
    s.close();
  });

  it("acquireResident answers at once only when every expert is resident, counting like a hit", async () => {
    const m = model(base);
    const s = new ExpertStore(m.ckpt, { budget: "25%", maxExpertsPerStep: 2, reader: new BufferedReader() });
    expect(s.acquireResident(0, [1, 2])).toBeNull(); // nothing resident: the caller must acquire()
    expect(s.stats().acquires).toBe(0);
    await s.acquire(0, [1, 2]);
    const stalled = s.stats().stall_ms;
    const w = s.acquireResident(0, [1, 2]);
    expect(w).not.toBeNull();
    expect(allEqual(w![1].up, m.valueAt(0, 2, 1))).toBe(true);
    let st = s.stats();
    expect(st.acquires).toBe(2);
    expect(st.hits).toBe(2);
    expect(st.hits_at_call).toBe(2);
    expect(st.stall_ms).toBe(stalled);
    // One missing expert, an id out of range, or a step still running: no answer, nothing counted.
    expect(s.acquireResident(0, [1, 3])).toBeNull();
    expect(s.acquireResident(0, [9])).toBeNull();
    const running = s.acquire(1, [0]);
    expect(s.acquireResident(0, [1])).toBeNull();
    await running;
    st = s.stats();
    expect(st.acquires).toBe(3);
    expect(st.hits).toBe(2);
    // Its experts are pinned like an acquire()'s: a guess cannot evict them.
    s.acquireResident(1, [0]);
    for (let e = 0; e < 8; e++) s.hint(2, [e]);
    await s.settled();
    expect(s.residentSet()).toContainEqual([1, 0]);
  });

  it("fill() loads experts into free budget only, layer by layer, and never evicts", async () => {
    const m = model(base);
    const s = new ExpertStore(m.ckpt, { budget: "25%", maxExpertsPerStep: 2, reader: new BufferedReader() });
    await s.acquire(0, [5]);
    await s.fill();
    const st = s.stats();
    expect(st.resident_experts).toBe(s.capacity);
    expect(st.evictions).toBe(0);
    expect(s.residentBytes()).toBeLessThanOrEqual(s.budgetBytes);
    const layers = new Set(s.residentSet().map(([l]) => l));
    expect(layers.size).toBe(Math.min(s.capacity, m.ckpt.config.moeLayers.filter(Boolean).length));
    // Full: a second fill reads nothing.
    await s.fill();
    expect(s.stats().loads).toBe(st.loads);
  });

  it("wants guesses until a budget holding every expert has them all resident", async () => {
    const m = model(base);
    const part = new ExpertStore(m.ckpt, {
      budget: "25%",
      maxExpertsPerStep: 2,
      reader: new BufferedReader(),
    });
    await part.fill();
    expect(part.wantsHints).toBe(true); // a partial budget can always use a good guess
    const all = new ExpertStore(m.ckpt, {
      budget: "100%",
      maxExpertsPerStep: 2,
      reader: new BufferedReader(),
    });
    expect(all.wantsHints).toBe(true);
    await all.acquire(0, [1]);
    expect(all.wantsHints).toBe(true);
    await all.fill();
    expect(all.stats().resident_experts).toBe(all.capacity);
    expect(all.wantsHints).toBe(false);
  });
});

/** A reader whose reads, while `hold` is set, read their bytes but report completion only on release(). */
class GatedReader implements BlockReader {
  readonly kind = "buffered" as const;
  hold = false;
  private waiters: (() => void)[] = [];
  constructor(private readonly inner: BlockReader) {}
  alloc(bytes: number): Uint8Array {
    return this.inner.alloc(bytes);
  }
  async read(file: string, offset: number, length: number, dest: Uint8Array, destOffset: number) {
    const hold = this.hold;
    const n = await this.inner.read(file, offset, length, dest, destOffset);
    if (hold && this.hold) await new Promise<void>((r) => this.waiters.push(r));
    return n;
  }
  release(): void {
    this.hold = false;
    for (const w of this.waiters.splice(0)) w();
  }
  close(): void {
    this.inner.close();
  }
}
