/**
 * Scout-layer-shaped decode benchmark on the CUDA addon's device-resident API (activations and
 * dense weights stay on the GPU; only the router's choice comes back to the host each layer).
 *
 * Per layer: RMSNorm, q/k/v/o (40 query heads, 8 KV heads, head dim 128), attention over the KV
 * cache, router (16 experts, top-1, plus a per-expert bias that sets the routing skew), the shared
 * expert, and the routed expert (hidden 5120, expert FFN 8192), all weights Q4_0. Routed experts
 * live in a pinned host tier and are paged into a fixed number of device slots (the budget) on the
 * copy stream; the compute stream waits on a copy's event only when it needs that expert.
 * Prefetch: the next layer's router is applied to this layer's MoE input and its pick is copied
 * ahead (Mixtral-offloading style).
 *
 * Reported per budget: decode tok/s, cache hit rate h (an expert already resident from an earlier
 * token; an expert prefetched for this token counts as a miss whose copy may be hidden), H2D copy
 * time, stall time, fraction of copy time hidden, and the limit
 * T(h) = (W_res + W_r)/B_mem + (1 - h) W_r / B_link (shared/reference/moe-serving.md) with B_mem,
 * B_link measured on this card.
 */
import { freemem } from "node:os";
import type { CudaAddon } from "../../gpu-backend/device/cuda/native.js";

export interface ScoutBenchOptions {
  layers: number;
  tokens: number;
  warmup: number;
  budgets: number[];
  /** Zipf exponent of expert popularity via router bias (0 = uniform routing). */
  skews: number[];
  prefetch: boolean;
  seed: number;
  /** Stop adding layers when setup takes longer than this (seconds). */
  setupSeconds: number;
  log: (s: string) => void;
  /** Default SCOUT_SHAPE. */
  shape?: ScoutShape;
  /** Bytes for the bandwidth probes (default 2 GiB device read, 512 MiB H2D). */
  probeBytes?: { mem: number; link: number };
}

export interface ScoutRow {
  budget_pct: number;
  routing: string;
  layers: number;
  slots: number;
  tokens: number;
  tok_s: number;
  ms_per_token: number;
  hit_rate: number;
  prefetch_accuracy: number | null;
  copies: number;
  copy_gb: number;
  copy_ms: number;
  stall_ms: number;
  measured_copy_gbps: number | null;
  copy_hidden_fraction: number | null;
  limit_tok_s: number;
  fraction_of_limit: number;
}

export interface ScoutBenchResult {
  shape: Record<string, number | string>;
  b_mem_gbps: number;
  b_link_gbps: number;
  w_res_bytes: number;
  w_r_bytes: number;
  expert_bytes: number;
  setup_s: number;
  /** 100% budget with the expert known ahead: no per-layer wait for the router's pick. */
  no_host_wait_tok_s: number | null;
  rows: ScoutRow[];
}

/** Layer shape; the default is Llama 4 Scout's. Smaller shapes exist for the emulated test. */
export interface ScoutShape {
  H: number;
  FFN: number;
  E: number;
  HEADS: number;
  KV: number;
  HD: number;
}
export const SCOUT_SHAPE: ScoutShape = { H: 5120, FFN: 8192, E: 16, HEADS: 40, KV: 8, HD: 128 };
const Q4 = 4;
const ALIGN = 256;
const alignUp = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/** A Q4_0 matrix inside a buffer: data then f16 scales, each 256-aligned. */
interface Mat {
  buf: number;
  off: number;
  sOff: number;
  rows: number;
  cols: number;
}
const matBytes = (rows: number, cols: number) => alignUp((rows * cols) / 2) + alignUp((rows * cols) / 16);

function placeMat(buf: number, off: number, rows: number, cols: number): Mat {
  return { buf, off, sOff: off + alignUp((rows * cols) / 2), rows, cols };
}

/**
 * Random Q4_0 bytes and scales sized so outputs keep about unit variance. Scales take both signs:
 * random nibbles average -0.5, and with positive scales every output row would carry the same
 * multiple of its input's sum, a common direction that grows through the layers until every token
 * routes alike.
 */
function fillMat(a: CudaAddon, m: Mat, seed: number): void {
  a.fill(m.buf, m.off, (m.rows * m.cols) / 2, 0, seed, 0, 0);
  const s = 1 / (Math.sqrt(m.cols) * 4.6);
  a.fill(m.buf, m.sOff, (m.rows * m.cols) / 32, 1, seed + 1, -1.7 * s, 1.7 * s);
}

/** Routed expert layout in one contiguous block (one copy per expert). */
const expertBytes = ({ H, FFN }: ScoutShape) => 2 * matBytes(FFN, H) + matBytes(H, FFN);
function expertMats({ H, FFN }: ScoutShape, buf: number, off = 0): { gate: Mat; up: Mat; down: Mat } {
  const g = matBytes(FFN, H);
  return {
    gate: placeMat(buf, off, FFN, H),
    up: placeMat(buf, off + g, FFN, H),
    down: placeMat(buf, off + 2 * g, H, FFN),
  };
}

interface Layer {
  q: Mat;
  k: Mat;
  v: Mat;
  o: Mat;
  shared: { gate: Mat; up: Mat; down: Mat };
  router: number; // f32 [E, H]
  bias: number; // f32 [E] per routing skew, rewritten per run
  kc: number;
  vc: number;
}

interface Slot {
  buf: number;
  key: number; // layer * E + expert, -1 = empty
  ready: number; // event of the copy that filled it (0 = none pending)
  lastUse: number; // compute event after its last reader (0 = none)
  tick: number;
  // Token whose next layer a prefetch filled this slot for (-1: demand load, or used since). Only
  // that token's use counts as a miss; a wrong guess left resident serves later tokens as a hit.
  prefetchedAt: number;
}

export function runScoutBench(a: CudaAddon, o: ScoutBenchOptions): ScoutBenchResult {
  const shape = o.shape ?? SCOUT_SHAPE;
  const { H, FFN, E, HEADS, KV, HD } = shape;
  const EXPERT_BYTES = expertBytes(shape);
  const t0 = performance.now();
  const bMem = a.memReadBandwidth(o.probeBytes?.mem ?? 2 ** 31);
  const bLink = a.h2dBandwidth(o.probeBytes?.link ?? 512 << 20);
  o.log(`B_mem ${bMem.toFixed(0)} GB/s (device read), B_link ${bLink.toFixed(1)} GB/s (pinned H2D)`);
  // Attention + shared expert (the router's f32 [E, H] is counted in W_res below).
  const denseBytes = 2 * matBytes(HEADS * HD, H) + 2 * matBytes(KV * HD, H) + EXPERT_BYTES;
  const hostBudget = freemem() * 0.7;
  const ctx = o.warmup + 2 * o.tokens + 8; // the 100% row also times its tokens with no host wait

  // Activations.
  const act = (floats: number) => a.alloc(floats * 4);
  const x = act(H);
  const xn = act(H);
  const q = act(HEADS * HD);
  const kv = act(2 * KV * HD);
  const attn = act(HEADS * HD);
  const proj = act(H);
  const gate = act(FFN);
  const up = act(FFN);
  const moeOut = act(H);
  const expOut = act(H);
  const logits = act(2 * E);
  const ids = a.alloc(64);
  const wts = a.alloc(64);
  const pos = a.alloc(4);
  const freq = act(HD / 2);
  a.write(
    freq,
    0,
    Float32Array.from({ length: HD / 2 }, (_, i) => 500000 ** (-(2 * i) / HD)),
  );
  a.fill(x, 0, H, 2, o.seed, -1, 1);

  // Layers (dense on the device) and the pinned host tier of routed experts, as many as fit.
  const layers: Layer[] = [];
  const host: Uint8Array[][] = [];
  const staging = a.alloc(EXPERT_BYTES);
  const mem0 = a.memInfo();
  const reserve = Math.min(2 ** 31, mem0.freeBytes / 10);
  for (let l = 0; l < o.layers; l++) {
    const free = a.memInfo().freeBytes;
    // 100% budget must hold every routed expert of every layer on the device.
    const needPerLayer = denseBytes + E * EXPERT_BYTES;
    if ((l + 1) * needPerLayer > mem0.freeBytes - reserve || free < denseBytes + reserve) break;
    if ((l + 1) * E * EXPERT_BYTES > hostBudget) break;
    if ((performance.now() - t0) / 1000 > o.setupSeconds) {
      o.log(`setup budget of ${o.setupSeconds}s reached at ${l} layers`);
      break;
    }
    const buf = a.alloc(denseBytes);
    let off = 0;
    const take = (rows: number, cols: number) => {
      const m = placeMat(buf, off, rows, cols);
      off += matBytes(rows, cols);
      fillMat(a, m, o.seed * 1000 + l * 50 + off / ALIGN);
      return m;
    };
    const lq = take(HEADS * HD, H);
    const lk = take(KV * HD, H);
    const lv = take(KV * HD, H);
    const lo = take(H, HEADS * HD);
    const shared = { gate: take(FFN, H), up: take(FFN, H), down: take(H, FFN) };
    const router = a.alloc(E * H * 4);
    a.fill(router, 0, E * H, 2, o.seed + 7 * l, -Math.sqrt(3 / H), Math.sqrt(3 / H));
    const bias = a.alloc(E * 4);
    const kc = a.alloc(ctx * KV * HD * 4);
    const vc = a.alloc(ctx * KV * HD * 4);
    layers.push({ q: lq, k: lk, v: lv, o: lo, shared, router, bias, kc, vc });
    const tier: Uint8Array[] = [];
    for (let e = 0; e < E; e++) {
      const m = expertMats(shape, staging);
      for (const [j, mat] of [m.gate, m.up, m.down].entries())
        fillMat(a, mat, o.seed * 7919 + (l * E + e) * 3 + j);
      const pinned = new Uint8Array(a.allocPinned(EXPERT_BYTES));
      a.read(staging, 0, pinned);
      tier.push(pinned);
    }
    host.push(tier);
  }
  const L = layers.length;
  if (L === 0) throw new Error("not even one Scout layer fits on this device");
  const setupS = (performance.now() - t0) / 1000;
  o.log(
    `${L} layers ready in ${setupS.toFixed(1)}s (dense ${(denseBytes / 1e6).toFixed(0)} MB/layer, expert ${(EXPERT_BYTES / 1e6).toFixed(1)} MB)`,
  );

  // Bytes read per token: dense weights + router (embeddings and the LM head are not modeled).
  const wRes = L * (denseBytes + E * H * 4);
  const wR = L * EXPERT_BYTES;
  const maxSlots = L * E;
  const slotBufs: number[] = [];
  const rows: ScoutRow[] = [];
  const idsHost = new Int32Array(a.allocPinned(64));
  const guessHost = new Int32Array(a.allocPinned(64));
  let noHostWaitTokS: number | null = null;

  for (const skew of o.skews) {
    // Router bias: expert e's popularity ~ 1/(rank+1)^skew, ranks shuffled per layer.
    for (const [l, layer] of layers.entries()) {
      const b = new Float32Array(E);
      for (let e = 0; e < E; e++) b[(e * 7 + l * 3) % E] = -skew * Math.log(e + 1) * 2;
      a.write(layer.bias, 0, b);
    }
    for (const pct of o.budgets) {
      const nSlots = Math.max(2, Math.min(maxSlots, Math.round((pct / 100) * maxSlots)));
      while (slotBufs.length < nSlots) slotBufs.push(a.alloc(EXPERT_BYTES));
      const slots: Slot[] = slotBufs
        .slice(0, nSlots)
        .map((buf) => ({ buf, key: -1, ready: 0, lastUse: 0, tick: 0, prefetchedAt: -1 }));
      const where = new Map<number, number>(); // key -> slot index
      let tick = 0;
      const st = { hits: 0, misses: 0, copies: 0, guesses: 0, guessRight: 0 };
      const copyEvents: [number, number][] = [];
      const stallEvents: [number, number][] = [];
      // The guess made at layer l-1 for layer l (-1 = none), scored when layer l routes.
      const guessOf = new Int32Array(L).fill(-1);

      const release = (ev: number) => {
        if (ev) a.releaseEvent(ev);
      };
      const load = (l: number, e: number, protect: Set<number>, prefetchedAt: number): number => {
        let victim = -1;
        for (let i = 0; i < slots.length; i++) {
          const s = slots[i];
          if (protect.has(s.key)) continue;
          if (s.key < 0) {
            victim = i;
            break;
          }
          if (victim < 0 || s.tick < slots[victim].tick) victim = i;
        }
        const s = slots[victim];
        if (s.key >= 0) where.delete(s.key);
        const start = a.recordEvent(1);
        const ready = a.h2dAsync(s.buf, 0, host[l][e], EXPERT_BYTES, s.lastUse);
        copyEvents.push([start, ready]);
        s.key = l * E + e;
        s.ready = ready;
        s.prefetchedAt = prefetchedAt;
        s.tick = ++tick;
        where.set(s.key, victim);
        st.copies++;
        return victim;
      };
      if (nSlots === maxSlots) {
        // 100%: every expert resident before timing starts.
        for (let l = 0; l < L; l++) for (let e = 0; e < E; e++) load(l, e, new Set(), -1);
        a.sync();
      }

      // hostWait false: the expert is taken as known ahead ((l + p) % E, all resident at 100%),
      // so no layer waits for the router's pick to reach the host: what that round trip costs.
      const step = (p: number, measure: boolean, hostWait = true) => {
        a.write(pos, 0, Int32Array.of(p));
        // A new token: a fresh embedding-like input (carrying the residual over would let the
        // random layers settle on one fixed point and route every token alike).
        a.fill(x, 0, H, 2, o.seed * 7919 + p, -1, 1);
        for (let l = 0; l < L; l++) {
          const w = layers[l];
          a.rmsnorm(xn, 0, x, 0, 0, 0, 1, H, 1e-5);
          mm(a, q, xn, w.q);
          mm(a, kv, xn, w.k);
          mm(a, kv, xn, w.v, KV * HD * 4);
          a.rope(q, 0, 1, HEADS, HD, pos, 0, freq, 0, HD / 2, false);
          a.rope(kv, 0, 1, KV, HD, pos, 0, freq, 0, HD / 2, false);
          a.copy(w.kc, p * KV * HD * 4, kv, 0, KV * HD * 4);
          a.copy(w.vc, p * KV * HD * 4, kv, KV * HD * 4, KV * HD * 4);
          a.attention(q, 0, w.kc, 0, w.vc, 0, attn, 0, 1, HEADS, KV, HD, p, 1 / Math.sqrt(HD), 8192, 0);
          mm(a, proj, attn, w.o);
          a.addScaled(x, 0, proj, 0, H, 1);
          a.rmsnorm(xn, 0, x, 0, 0, 0, 1, H, 1e-5);
          a.matmul(logits, 0, xn, 0, 1, 0, E, H, w.router, 0, 0, 0);
          a.addScaled(logits, 0, w.bias, 0, E, 1);
          a.route(logits, 0, 1, E, 1, true, false, ids, 0, wts, 0);
          const idsEv = a.d2hAsync(idsHost, ids, 0, 4);
          let guessEv = 0;
          const next = l + 1 < L ? layers[l + 1] : null;
          if (o.prefetch && next && nSlots < maxSlots) {
            a.matmul(logits, 0, xn, 0, 1, 0, E, H, next.router, 0, 0, 0);
            a.addScaled(logits, 0, next.bias, 0, E, 1);
            a.route(logits, 0, 1, E, 1, true, false, ids, 16, wts, 16);
            guessEv = a.d2hAsync(guessHost, ids, 16, 4);
          }
          ffn(a, moeOut, xn, w.shared, gate, up, FFN);
          if (hostWait) a.eventSync(idsEv);
          a.releaseEvent(idsEv);
          const e = hostWait ? idsHost[0] : (l + p) % E;
          const key = l * E + e;
          if (measure && guessOf[l] >= 0) {
            st.guesses++;
            if (guessOf[l] === e) st.guessRight++;
          }
          guessOf[l] = -1;
          let si = where.get(key);
          if (si === undefined) {
            if (measure) st.misses++;
            si = load(l, e, new Set([key]), -1);
          } else if (slots[si].prefetchedAt === p) {
            if (measure) st.misses++; // paged in for this use, possibly hidden
          } else if (measure) st.hits++;
          const s = slots[si];
          s.prefetchedAt = -1;
          s.tick = ++tick;
          if (guessEv) {
            a.eventSync(guessEv);
            a.releaseEvent(guessEv);
            const g = guessHost[0];
            const gk = (l + 1) * E + g;
            guessOf[l + 1] = g;
            if (!where.has(gk)) load(l + 1, g, new Set([key, gk]), p);
          }
          if (s.ready) {
            if (!a.eventQuery(s.ready)) {
              const before = a.recordEvent(0);
              a.streamWait(0, s.ready);
              const after = a.recordEvent(0);
              if (measure) stallEvents.push([before, after]);
              else {
                release(before);
                release(after);
              }
            }
            s.ready = 0; // copy events are released with copyEvents
          }
          ffn(a, expOut, xn, expertMats(shape, s.buf), gate, up, FFN);
          release(s.lastUse);
          s.lastUse = a.recordEvent(0);
          a.addScaled(moeOut, 0, expOut, 0, H, 1);
          a.addScaled(x, 0, moeOut, 0, H, 1);
        }
      };

      let p = 0;
      for (let t = 0; t < o.warmup; t++) step(p++, false);
      a.sync();
      st.copies = 0;
      for (const [s, r] of copyEvents) {
        a.releaseEvent(s);
        a.releaseEvent(r);
      }
      copyEvents.length = 0;
      const c0 = performance.now();
      for (let t = 0; t < o.tokens; t++) step(p++, true);
      a.sync();
      const ms = performance.now() - c0;
      let copyMs = 0;
      for (const [s, r] of copyEvents) {
        copyMs += a.eventElapsed(s, r);
        a.releaseEvent(s);
        a.releaseEvent(r);
      }
      let stallMs = 0;
      for (const [s, r] of stallEvents) {
        stallMs += a.eventElapsed(s, r);
        a.releaseEvent(s);
        a.releaseEvent(r);
      }
      if (nSlots === maxSlots && noHostWaitTokS === null) {
        const n0 = performance.now();
        for (let t = 0; t < o.tokens; t++) step(p++, false, false);
        a.sync();
        noHostWaitTokS = (o.tokens * 1000) / (performance.now() - n0);
        o.log(`budget 100%, expert known ahead (no host wait per layer): ${noHostWaitTokS.toFixed(1)} tok/s`);
      }
      for (const s of slots) release(s.lastUse);
      const h = st.hits / Math.max(1, st.hits + st.misses);
      const tLimit = (wRes + wR) / (bMem * 1e9) + ((1 - h) * wR) / (bLink * 1e9);
      const limit = 1 / tLimit;
      const tokS = (o.tokens * 1000) / ms;
      const row: ScoutRow = {
        budget_pct: pct,
        routing: skew === 0 ? "uniform (router bias 0)" : `zipf s=${skew} (router bias)`,
        layers: L,
        slots: nSlots,
        tokens: o.tokens,
        tok_s: tokS,
        ms_per_token: ms / o.tokens,
        hit_rate: h,
        prefetch_accuracy: st.guesses > 0 ? st.guessRight / st.guesses : null,
        copies: st.copies,
        copy_gb: (st.copies * EXPERT_BYTES) / 1e9,
        copy_ms: copyMs,
        stall_ms: stallMs,
        measured_copy_gbps: copyMs > 0 ? (st.copies * EXPERT_BYTES) / 1e6 / copyMs : null,
        copy_hidden_fraction: copyMs > 0 ? Math.max(0, 1 - stallMs / copyMs) : null,
        limit_tok_s: limit,
        fraction_of_limit: tokS / limit,
      };
      rows.push(row);
      o.log(
        `budget ${pct}% ${row.routing}: ${tokS.toFixed(1)} tok/s, h=${h.toFixed(3)}, limit ${limit.toFixed(1)} tok/s ` +
          `(${(row.fraction_of_limit * 100).toFixed(0)}%), copies ${st.copies}, copy ${copyMs.toFixed(0)} ms, ` +
          `stall ${stallMs.toFixed(0)} ms, hidden ${row.copy_hidden_fraction === null ? "n/a" : row.copy_hidden_fraction.toFixed(2)}`,
      );
    }
  }
  return {
    shape: {
      hidden: H,
      expert_ffn: FFN,
      experts: E,
      top_k: 1,
      shared_expert: 1,
      heads: HEADS,
      kv_heads: KV,
      head_dim: HD,
      dtype: "q4_0",
      layers: L,
    },
    b_mem_gbps: bMem,
    b_link_gbps: bLink,
    w_res_bytes: wRes,
    w_r_bytes: wR,
    expert_bytes: EXPERT_BYTES,
    setup_s: setupS,
    no_host_wait_tok_s: noHostWaitTokS,
    rows,
  };
}

function mm(a: CudaAddon, out: number, x: number, m: Mat, outOff = 0): void {
  a.matmul(out, outOff, x, 0, 1, Q4, m.rows, m.cols, m.buf, m.off, m.buf, m.sOff);
}

function ffn(
  a: CudaAddon,
  out: number,
  x: number,
  m: { gate: Mat; up: Mat; down: Mat },
  gate: number,
  up: number,
  FFN: number,
): void {
  mm(a, gate, x, m.gate);
  mm(a, up, x, m.up);
  a.swiglu(gate, 0, gate, 0, up, 0, FFN);
  mm(a, out, gate, m.down);
}
