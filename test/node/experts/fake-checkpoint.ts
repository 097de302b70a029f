import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Weight } from "../../../gpu-backend/device/device.js";
import type { ByteRange, Checkpoint, ExpertWeights, ModelConfig } from "../../../gpu-backend/model/types.js";

/**
 * A checkpoint of routed experts only: one file holding, per (layer, expert), three f32 matrices
 * filled with a value that names them, at unaligned offsets (like safetensors). Lets the store be
 * tested for bytes, budgets and faults without a model.
 */
export interface FakeModel {
  ckpt: Checkpoint;
  file: string;
  dir: string;
  /** The value every element of (layer, expert, part) holds. */
  valueAt(layer: number, expert: number, part: number): number;
  cleanup(): void;
}

export function makeFakeModel(opts: {
  numLayers: number;
  numExperts: number;
  topK: number;
  rows?: number;
  cols?: number;
  moeLayers?: boolean[];
  /** Bytes between an expert's second and third matrix (default 4; past 8 KiB they are read apart). */
  tensorGap?: number;
}): FakeModel {
  const rows = opts.rows ?? 8;
  const cols = opts.cols ?? 24;
  const moeLayers = opts.moeLayers ?? new Array(opts.numLayers).fill(true);
  const dir = mkdtempSync(join(tmpdir(), "fake-experts-"));
  const file = join(dir, "experts.bin");
  const valueAt = (l: number, e: number, p: number) => l * 1000 + e * 10 + p + 0.5;
  const matBytes = rows * cols * 4;
  const ranges = new Map<number, ByteRange[]>();
  const chunks: Uint8Array[] = [];
  // A 13-byte header so nothing is aligned, as in a real safetensors file.
  let offset = 13;
  chunks.push(new Uint8Array(13));
  for (let l = 0; l < opts.numLayers; l++) {
    if (!moeLayers[l]) continue;
    for (let e = 0; e < opts.numExperts; e++) {
      const list: ByteRange[] = [];
      for (let p = 0; p < 3; p++) {
        const f = new Float32Array(rows * cols).fill(valueAt(l, e, p));
        chunks.push(new Uint8Array(f.buffer));
        list.push({ file, offset, length: matBytes });
        offset += matBytes;
        // A gap between some tensors, as between unrelated tensors of a real file.
        if (p === 1) {
          const gap = opts.tensorGap ?? 4;
          chunks.push(new Uint8Array(gap));
          offset += gap;
        }
      }
      ranges.set(l * opts.numExperts + e, list);
    }
  }
  const all = new Uint8Array(offset);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  writeFileSync(file, all);
  const config = {
    family: "mixtral",
    numLayers: opts.numLayers,
    numExperts: opts.numExperts,
    topK: opts.topK,
    moeLayers,
  } as unknown as ModelConfig;
  const rangesOf = (l: number, e: number) => {
    const r = ranges.get(l * opts.numExperts + e);
    if (!r) throw new Error(`layer ${l} has no routed experts`);
    return r;
  };
  const ckpt: Checkpoint = {
    path: dir,
    config,
    has: () => false,
    loadDense: () => {
      throw new Error("no dense tensors in the fake model");
    },
    expertRanges: rangesOf,
    decodeExpert(l: number, e: number, bytes: Uint8Array[]): ExpertWeights {
      const r = rangesOf(l, e);
      if (bytes.length !== 3 || bytes.some((b, i) => b.length !== r[i].length))
        throw new Error("bad buffers");
      const w = (b: Uint8Array): Weight => ({ dtype: "f32", rows, cols, data: b });
      return { gate: w(bytes[0]), up: w(bytes[1]), down: w(bytes[2]) };
    },
    loadExpert() {
      throw new Error("not used");
    },
    close() {},
  };
  return {
    ckpt,
    file,
    dir,
    valueAt,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** First f32 element of a weight (every element of a fake matrix is the same). */
export function firstValue(w: Weight): number {
  return new Float32Array(w.data.buffer, w.data.byteOffset, 1)[0];
}

/** Check every element of a fake matrix (a torn or stale read shows up here). */
export function allEqual(w: Weight, v: number): boolean {
  const f = new Float32Array(w.data.slice().buffer);
  return f.every((x) => x === v);
}
