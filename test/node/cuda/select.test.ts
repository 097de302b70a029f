/** Device selection: auto falls back to the CPU without a GPU, flags force either, reasons are kept. */
import { describe, expect, it } from "vitest";
import { CpuDevice } from "../../../gpu-backend/device/cpu/cpu-device.js";
import { type CudaLoad, loadCuda } from "../../../gpu-backend/device/cuda/native.js";
import { isDeviceKind, selectDevice } from "../../../gpu-backend/device/select.js";

const noGpu = (): CudaLoad => ({ ok: false, reason: "no usable GPU: test" });

describe("selectDevice", () => {
  it("auto picks the CPU when the CUDA loader finds no GPU, and says why", () => {
    const s = selectDevice({ device: "auto", threads: 1 }, noGpu);
    expect(s.kind).toBe("cpu");
    expect(s.device).toBeInstanceOf(CpuDevice);
    expect(s.device.threads).toBe(1);
    expect(s.cudaUnavailable).toBe("no usable GPU: test");
  });

  it("auto on this machine matches what the real loader finds", () => {
    const real = loadCuda();
    const s = selectDevice({ device: "auto", threads: 1 });
    expect(s.kind).toBe(real.ok ? "cuda" : "cpu");
    if (!real.ok) {
      // Either the addon is not built or it loaded and found no driver/GPU: both are "no GPU".
      expect(real.reason).toMatch(/not built|no usable GPU|failed to load/);
      expect(s.cudaUnavailable).toBe(real.reason);
    }
  });

  it("cpu is forced even when a GPU would be found", () => {
    let asked = false;
    const s = selectDevice({ device: "cpu", threads: 1 }, () => {
      asked = true;
      return noGpu();
    });
    expect(s.kind).toBe("cpu");
    expect(asked).toBe(false);
  });

  it("cuda forced without a GPU fails with the loader's reason", () => {
    expect(() => selectDevice({ device: "cuda" }, noGpu)).toThrow(/--device cuda: no usable GPU: test/);
  });

  it("validates kinds", () => {
    expect(isDeviceKind("cuda")).toBe(true);
    expect(isDeviceKind("gpu")).toBe(false);
    expect(() => selectDevice({ device: "gpu" as never }, noGpu)).toThrow(/unknown device/);
  });
});
