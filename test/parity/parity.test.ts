import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PARITY_CASES, ROOT, runParity } from "./parity-lib.js";

// Greedy generations of our engine and llama.cpp on the same GGUF (and our HF folder) must be
// identical token for token; first-token logits must agree to float rounding.
describe("llama.cpp parity (greedy, from token ids)", () => {
  for (const c of PARITY_CASES) {
    it(c.name, async () => {
      const rows = await runParity({
        cacheDir: join(ROOT, ".cache", "parity"),
        maxTokens: 64,
        promptLengths: [1, 7, 23, 70],
        ggufTypes: ["f32"],
        cases: [c],
        stepLogits: false,
      });
      expect(rows.length).toBeGreaterThan(0);
      for (const r of rows) {
        expect(
          r.firstLogitsMaxAbsDiff,
          `${r.ours} vs llama.cpp first logits, prompt ${r.promptLen}`,
        ).toBeLessThan(1e-3 * Math.max(1, r.firstLogitsMaxAbs));
        expect(r.firstDiff, `${r.ours} vs llama.cpp ids, prompt ${r.promptLen}`).toBe(-1);
      }
    });
  }
});
