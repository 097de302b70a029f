/**
 * The canonical tensor list of a model (names documented in types.ts) with the shape each must
 * have, derived from the config alone. Loaders check every on-disk tensor against this when a
 * checkpoint is opened, so a shape that disagrees with config.json fails before anything loads.
 */
import type { ModelConfig } from "./types.js";

export interface DenseSpec {
  name: string;
  rows: number;
  cols: number;
  /** Norm weights: returned as f32, rows = 1. */
  vector: boolean;
}

export function denseSpecs(c: ModelConfig): DenseSpec[] {
  const H = c.hiddenSize;
  const out: DenseSpec[] = [];
  const mat = (name: string, rows: number, cols: number) => out.push({ name, rows, cols, vector: false });
  const vec = (name: string, n: number) => out.push({ name, rows: 1, cols: n, vector: true });
  mat("embed", c.vocabSize, H);
  for (let i = 0; i < c.numLayers; i++) {
    const l = `l${i}.`;
    vec(`${l}attn_norm`, H);
    mat(`${l}q`, c.numHeads * c.headDim, H);
    mat(`${l}k`, c.numKvHeads * c.headDim, H);
    mat(`${l}v`, c.numKvHeads * c.headDim, H);
    mat(`${l}o`, H, c.numHeads * c.headDim);
    if (c.headQkNorm) {
      vec(`${l}q_norm`, c.headDim);
      vec(`${l}k_norm`, c.headDim);
    }
    vec(`${l}ffn_norm`, H);
    if (c.moeLayers[i]) {
      mat(`${l}router`, c.numExperts, H);
      if (c.sharedExpert) {
        mat(`${l}shexp.gate`, c.expertFfn, H);
        mat(`${l}shexp.up`, c.expertFfn, H);
        mat(`${l}shexp.down`, H, c.expertFfn);
      }
    } else {
      mat(`${l}mlp.gate`, c.denseFfn, H);
      mat(`${l}mlp.up`, c.denseFfn, H);
      mat(`${l}mlp.down`, H, c.denseFfn);
    }
  }
  vec("norm", H);
  if (!c.tieWordEmbeddings) mat("lm_head", c.vocabSize, H);
  return out;
}

/** Shapes of one routed expert's matrices, [rows=out, cols=in]. */
export function expertShapes(c: ModelConfig): Record<"gate" | "up" | "down", [number, number]> {
  return {
    gate: [c.expertFfn, c.hiddenSize],
    up: [c.expertFfn, c.hiddenSize],
    down: [c.hiddenSize, c.expertFfn],
  };
}

export const EXPERT_PARTS = ["gate", "up", "down"] as const;
export type ExpertPart = (typeof EXPERT_PARTS)[number];
