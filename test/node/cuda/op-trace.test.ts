/**
 * The GPU script's diagnostics, run here with two CPU devices: the op trace names the first op
 * where int8 activations (VNNI) and f32 activations (scalar) part, and finds nothing between two
 * devices that compute alike; op parity compares q8/q4 matmuls the same way.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CpuDevice } from "../../../gpu-backend/device/cpu/cpu-device.js";
import { makeModel } from "../../../gpu-backend/tools/make-model.js";
import { quantizeCheckpoint } from "../../../gpu-backend/tools/quantize.js";
import { opParity } from "../../../scripts/gpu/op-parity.js";
import { firstDivergence, type OpRecord, tracingDevice } from "../../../scripts/gpu/op-trace.js";
import { greedy } from "../../../scripts/gpu/parity-lib.js";

const work = mkdtempSync(join(tmpdir(), "op-trace-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("GPU script diagnostics on two CPU devices", () => {
  makeModel({ family: "llama4", preset: "tiny", out: join(work, "bf16"), seed: 5 });
  quantizeCheckpoint(join(work, "bf16"), join(work, "q8"), 8);
  const ids = Array.from({ length: 20 }, (_, i) => 3 + ((i * 37) % 500));
  const int8 = new CpuDevice({ threads: 2 });
  const vnni = int8.isa === "avx512vnni";

  it("names the first op whose outputs differ, and none when the devices compute alike", async () => {
    const trace = async (dev: CpuDevice) => {
      const t: OpRecord[] = [];
      await greedy(join(work, "q8"), tracingDevice(dev, t), ids, 2);
      return t;
    };
    const a = await trace(int8);
    const same = firstDivergence(a, await trace(new CpuDevice({ threads: 1 })), 1e-6);
    expect(same.op).toBeNull();
    expect(same.index).toBe(a.length);
    expect(a.length).toBeGreaterThan(100);
    const scalar = firstDivergence(a, await trace(new CpuDevice({ threads: 1, isa: "scalar" })), 1e-4);
    if (vnni) {
      // int8 vs f32 activations part at the first quantized matmul (q/k/v after the first norm).
      expect(scalar.op).toMatch(/^matmulMany q8 /);
      expect(scalar.index).toBe(1);
      expect(scalar.worst_before).toBeLessThan(1e-6);
    } else {
      expect(scalar.op).toBeNull(); // both compute f32 activations
    }
  });

  it("op parity: q8/q4 matmuls of one device against itself are exact", () => {
    for (const r of opParity(int8, new CpuDevice({ threads: 1 }))) expect(r.rel_diff).toBe(0);
  });
});
