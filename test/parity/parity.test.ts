import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PARITY_CASES, ROOT, runParity } from "./parity-lib.js";

const cacheDir = join(ROOT, ".cache", "parity");

// Greedy generations of our engine and llama.cpp on the same f32 GGUF (and our loader on the HF
// folder) must be identical token for token; first-token logits must agree to float rounding.
describe("llama.cpp parity (greedy, f32, from token ids)", () => {
  for (const c of PARITY_CASES.filter((x) => !x.diagnostic && !x.larger)) {
    it(c.name, async () => {
      const rows = await runParity({
        cacheDir,
        maxTokens: 64,
        promptLengths: [1, 7, 23, 70],
        ggufTypes: ["f32"],
        cases: [c],
        stepLogits: false,
      });
      expect(rows.length).toBe(8);
      for (const r of rows) {
        const what = `${r.ours} vs llama.cpp, prompt ${r.promptLen}`;
        expect(r.firstLogitsMaxAbsDiff, `${what}: first logits`).toBeLessThan(
          1e-4 * Math.max(1, r.firstLogitsMaxAbs),
        );
        expect(r.status, `${what}: ids (first difference at ${r.firstDiff})`).toBe("identical");
        // A model stuck on one token would make the comparison vacuous.
        expect(r.distinctIds).toBeGreaterThan(3);
      }
    });
  }

  // The harness must notice a real semantic difference: Llama 4 chunked attention of 16, which
  // llama.cpp replaces with its hard-coded 8192, changes every position past 16. Our GGUF loader
  // applies llama.cpp's rule (the GGUF cannot carry 16), so only the HF folder differs.
  it("detects a semantic difference (llama4 chunk 16 vs llama.cpp's 8192)", async () => {
    const diag = PARITY_CASES.find((x) => x.name === "llama4-chunk16")!;
    const rows = await runParity({
      cacheDir,
      maxTokens: 16,
      promptLengths: [40],
      ggufTypes: ["f32"],
      cases: [diag],
      stepLogits: false,
    });
    const hf = rows.filter((r) => r.ours.startsWith("hf"));
    const gguf = rows.filter((r) => r.ours.startsWith("gguf"));
    expect(hf.length).toBe(1);
    expect(hf[0].firstLogitsMaxAbsDiff).toBeGreaterThan(1e-2);
    expect(hf[0].status).toBe("DIVERGED");
    expect(gguf.map((r) => r.status)).toEqual(["identical"]);
  });
});
