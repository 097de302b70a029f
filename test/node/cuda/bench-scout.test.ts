/**
 * The GPU benchmark's host logic (slots, LRU, prefetch, counters, the T(h) limit) run on the
 * emulated addon with a small layer shape, so a logic error does not cost a GPU session. Timings
 * here mean nothing; the counts do.
 */
import { describe, expect, it } from "vitest";
import { runScoutBench } from "../../../scripts/gpu/bench-scout.js";
import { FakeCudaAddon } from "./fake-addon.js";

describe("Scout-shaped paging benchmark (emulated addon, small shape)", () => {
  it("pages experts within the budget and reports consistent rows", () => {
    const fake = new FakeCudaAddon(1 << 30);
    const r = runScoutBench(fake, {
      shape: { H: 64, FFN: 128, E: 4, HEADS: 4, KV: 2, HD: 16 },
      layers: 3,
      tokens: 6,
      warmup: 2,
      budgets: [100, 50, 25],
      skews: [0, 1],
      prefetch: true,
      seed: 1,
      setupSeconds: 60,
      probeBytes: { mem: 1 << 20, link: 1 << 20 },
      log: () => {},
    });
    expect(r.shape.layers).toBe(3);
    expect(r.rows).toHaveLength(6);
    for (const row of r.rows) {
      expect(row.slots).toBe(Math.max(2, Math.round((row.budget_pct / 100) * 12)));
      expect(row.hit_rate).toBeGreaterThanOrEqual(0);
      expect(row.hit_rate).toBeLessThanOrEqual(1);
      // T(h) with B_mem 100 GB/s, B_link 10 GB/s from the emulator's fixed probes.
      const t = (r.w_res_bytes + r.w_r_bytes) / 100e9 + ((1 - row.hit_rate) * r.w_r_bytes) / 10e9;
      expect(row.limit_tok_s).toBeCloseTo(1 / t, 6);
      if (row.budget_pct === 100) {
        expect(row.hit_rate).toBe(1);
        expect(row.copies).toBe(0);
        expect(row.prefetch_accuracy).toBeNull();
      } else {
        // 18 expert uses (6 tokens x 3 layers); every miss costs at least one copy.
        expect(row.copies).toBeGreaterThanOrEqual(Math.round((1 - row.hit_rate) * 18));
        expect(row.prefetch_accuracy).not.toBeNull();
      }
      // Each token's fresh input spreads the picks: 3 slots cannot hold every layer's choices.
      if (row.budget_pct === 25) expect(row.copies).toBeGreaterThan(0);
    }
    expect(r.no_host_wait_tok_s).toBeGreaterThan(0);
  });
});
