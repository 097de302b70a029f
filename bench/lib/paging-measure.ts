/**
 * What the paging benchmark measures besides tokens/s: this machine's RAM read bandwidth and
 * direct-disk read bandwidth (the B_mem and B_link of the T(h) limit in
 * shared/reference/moe-serving.md), and the bytes a decode step reads from each tier.
 */
import { statSync } from "node:fs";
import { loadNative } from "../../gpu-backend/device/cpu/native.js";
import { openCheckpoint } from "../../gpu-backend/model/checkpoint.js";

/** RAM read bandwidth in bytes/s: streaming read of 1 GiB (far beyond the caches), 2 threads. */
export function measureRamBandwidth(threads: number): number {
  return loadNative().memReadBandwidth(1 << 30, threads) * 1e9;
}

/**
 * Direct-disk read bandwidth in bytes/s, the way the store reads: O_DIRECT (page cache
 * bypassed) through the addon's readDirect on libuv threads, 2 MiB aligned pieces, 4 in flight,
 * over `bytes` of the given files (spread across them, at offsets the store would use).
 */
export async function measureDiskBandwidth(files: string[], bytes = 768 << 20): Promise<number> {
  const native = loadNative();
  const piece = 2 << 20;
  const inflight = 4;
  const bufs = Array.from({ length: inflight }, () => native.allocAligned(piece, 4096));
  const jobs: { file: string; offset: number }[] = [];
  const per = Math.ceil(bytes / piece / files.length);
  for (const f of files) {
    const size = statSync(f).size;
    const pieces = Math.floor(size / piece);
    // Spread over the file so no read-ahead or locality helps.
    for (let i = 0; i < Math.min(per, pieces); i++) {
      jobs.push({ file: f, offset: Math.floor((i * pieces) / per) * piece });
    }
  }
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    bufs.map(async (buf) => {
      while (next < jobs.length) {
        const j = jobs[next++];
        await native.readDirect(j.file, j.offset, piece, buf, 0);
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  return (jobs.length * piece) / s;
}

export interface TokenBytes {
  /** W_res: always-used bytes per decoded token (attention, norms, routers, shared experts, head, one embedding row). */
  resident: number;
  /** W_r: routed-expert bytes per decoded token (MoE layers x top-k x one expert). */
  routed: number;
  /** One routed expert's bytes on disk. */
  expert: number;
  moeLayers: number;
  totalExperts: number;
}

export function tokenBytes(path: string): TokenBytes {
  const ck = openCheckpoint(path);
  try {
    const c = ck.config;
    let resident = 0;
    let routed = 0;
    let expert = 0;
    let moeLayers = 0;
    const size = (name: string) => {
      const w = ck.loadDense(name);
      return w.data.byteLength + (w.scales ? w.scales.byteLength : 0);
    };
    for (let l = 0; l < c.numLayers; l++) {
      const p = `l${l}.`;
      const names = [`${p}attn_norm`, `${p}ffn_norm`, `${p}q`, `${p}k`, `${p}v`, `${p}o`];
      if (c.headQkNorm) names.push(`${p}q_norm`, `${p}k_norm`);
      if (c.moeLayers[l]) {
        moeLayers++;
        names.push(`${p}router`);
        if (c.sharedExpert) names.push(`${p}shexp.gate`, `${p}shexp.up`, `${p}shexp.down`);
        expert = ck.expertRanges(l, 0).reduce((s, r) => s + r.length, 0);
        routed += c.topK * expert;
      } else names.push(`${p}mlp.gate`, `${p}mlp.up`, `${p}mlp.down`);
      for (const n of names) resident += size(n);
    }
    resident += size("norm");
    const embed = ck.loadDense("embed");
    resident += embed.data.byteLength / embed.rows;
    resident += ck.has("lm_head") ? size("lm_head") : embed.data.byteLength + (embed.scales?.byteLength ?? 0);
    return { resident, routed, expert, moeLayers, totalExperts: moeLayers * c.numExperts };
  } finally {
    ck.close();
  }
}

/**
 * The decode limit at hit rate h (moe-serving.md): T(h) = (W_res + W_r) / B_mem + (1 - h) W_r / B_link,
 * returned as tokens/s (1 / T).
 */
export function limitTokensPerSecond(b: TokenBytes, h: number, ramBw: number, diskBw: number): number {
  const t = (b.resident + b.routed) / ramBw + ((1 - h) * b.routed) / diskBw;
  return 1 / t;
}
