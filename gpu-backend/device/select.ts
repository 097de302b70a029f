/**
 * Device selection: `auto` takes the CUDA device when the CUDA addon is built, loads, and finds a
 * GPU, else the CPU device; `cpu` / `cuda` force one (forcing `cuda` without a GPU is an error
 * that says why). The lead wires this into load-engine.ts and the CLIs (`--device`).
 */
import { CpuDevice } from "./cpu/cpu-device.js";
import { CudaDevice } from "./cuda/cuda-device.js";
import { type CudaLoad, loadCuda } from "./cuda/native.js";
import type { Device } from "./device.js";

export type DeviceKind = "auto" | "cpu" | "cuda";
export const DEVICE_KINDS: readonly DeviceKind[] = ["auto", "cpu", "cuda"];

export interface SelectDeviceOptions {
  /** Default "auto" (or MOE_DEVICE when set). */
  device?: DeviceKind;
  /** CPU threads (the CPU device's threads per op). */
  threads?: number;
  /** Device bytes for the CUDA device's routed-expert cache (see CudaDeviceOptions). */
  cudaExpertCacheBytes?: number;
}

export interface SelectedDevice {
  device: Device;
  kind: "cpu" | "cuda";
  /** Why `auto` did not pick CUDA (absent when it did, or when cpu was forced). */
  cudaUnavailable?: string;
}

export function isDeviceKind(s: string): s is DeviceKind {
  return (DEVICE_KINDS as readonly string[]).includes(s);
}

/** Injected for tests; defaults to the real loader. */
export function selectDevice(
  opts: SelectDeviceOptions = {},
  load: () => CudaLoad = loadCuda,
): SelectedDevice {
  const envKind = process.env.MOE_DEVICE;
  const kind: DeviceKind = opts.device ?? (envKind && isDeviceKind(envKind) ? envKind : "auto");
  if (!isDeviceKind(kind)) throw new Error(`unknown device "${kind}" (expected ${DEVICE_KINDS.join(", ")})`);
  if (kind === "cpu") return { device: new CpuDevice({ threads: opts.threads }), kind: "cpu" };
  const cuda = load();
  if (cuda.ok) {
    const device = new CudaDevice(cuda.addon, cuda.info, { expertCacheBytes: opts.cudaExpertCacheBytes });
    return { device, kind: "cuda" };
  }
  if (kind === "cuda") throw new Error(`--device cuda: ${cuda.reason}`);
  return { device: new CpuDevice({ threads: opts.threads }), kind: "cpu", cudaUnavailable: cuda.reason };
}
