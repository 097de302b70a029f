/**
 * The CUDA sources compile and link into an addon wherever nvcc exists (skipped, with the reason,
 * where it does not), and the built addon loads and reports the machine's GPU state as data: on a
 * machine without a GPU the loader answers "no GPU" instead of throwing.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { CudaAddon } from "../../../gpu-backend/device/cuda/native.js";

const nvcc = process.env.NVCC ?? "nvcc";
const hasNvcc = spawnSync(nvcc, ["--version"], { stdio: "ignore" }).status === 0;
const out = mkdtempSync(join(tmpdir(), "moe-cuda-build-"));

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe.skipIf(!hasNvcc)("CUDA addon build (nvcc found)", () => {
  it("compiles kernels.cu for sm_90 + PTX and links moe_cuda.node", { timeout: 120_000 }, () => {
    execFileSync("bash", ["gpu-backend/device/cuda/build.sh"], {
      env: { ...process.env, MOE_CUDA_BUILD_DIR: out },
      stdio: "pipe",
    });
    expect(statSync(join(out, "moe_cuda.node")).size).toBeGreaterThan(100_000);
    // The object carries Hopper SASS (its ptxas command line names sm_90; the PTX is compressed).
    const obj = readFileSync(join(out, "obj", "kernels.o")).toString("latin1");
    expect(obj).toContain("-arch sm_90");
  });

  it("loads and reports the GPU state as data (never throws)", () => {
    const addon = createRequire(import.meta.url)(join(out, "moe_cuda.node")) as CudaAddon;
    const info = addon.probe();
    expect(info.runtimeVersion).toBeGreaterThanOrEqual(13000);
    if (info.ok) {
      expect(info.name).toBeTruthy();
      expect(info.totalBytes).toBeGreaterThan(0);
    } else {
      // e.g. "CUDA driver version is insufficient for CUDA runtime version" on a machine without a GPU
      expect(info.error).toMatch(/driver|device|CUDA/i);
      expect(() => addon.alloc(16)).toThrow(/CUDA unavailable/);
    }
  });
});

describe.skipIf(hasNvcc)("CUDA addon build (no nvcc)", () => {
  it("build.sh refuses with exit 2 and a clear message", () => {
    const r = spawnSync("bash", ["gpu-backend/device/cuda/build.sh"], {
      env: { ...process.env, MOE_CUDA_BUILD_DIR: out },
      encoding: "utf8",
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/nvcc not found/);
  });
});
