import type { Device } from "../device/device.js";
import type { Checkpoint, ExpertWeights } from "../model/types.js";
import type { ExpertProvider } from "./provider.js";

/** Baseline mode: every routed expert is read and uploaded at start and stays resident. */
export class EagerExpertProvider implements ExpertProvider {
  private readonly experts: ExpertWeights[][];
  private hits = 0;

  constructor(ckpt: Checkpoint, device: Device) {
    const { numLayers, numExperts, moeLayers } = ckpt.config;
    this.experts = [];
    for (let l = 0; l < numLayers; l++) {
      const layer: ExpertWeights[] = [];
      if (moeLayers[l]) {
        for (let e = 0; e < numExperts; e++) {
          const w = ckpt.loadExpert(l, e);
          layer.push({ gate: device.upload(w.gate), up: device.upload(w.up), down: device.upload(w.down) });
        }
      }
      this.experts.push(layer);
    }
  }

  async acquire(layer: number, experts: number[]): Promise<ExpertWeights[]> {
    return this.acquireResident(layer, experts);
  }

  acquireResident(layer: number, experts: number[]): ExpertWeights[] {
    this.hits += experts.length;
    return experts.map((e) => this.experts[layer][e]);
  }

  hint(): void {}

  stats(): Record<string, number> {
    return { hits: this.hits, misses: 0, bytes_read: 0, stall_ms: 0 };
  }

  close(): void {
    this.experts.length = 0;
  }
}
