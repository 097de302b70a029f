/**
 * Deterministic weight generation for generated checkpoints.
 *
 * Every tensor draws from its own stream (xoshiro128** seeded from hash(seed, tensor name)), so
 * tensors can be produced one at a time, in any order, and the same seed always gives the same
 * bytes. Normal samples come from a 65536-entry inverse-CDF table indexed by 16 random bits, built
 * per tensor directly in the output dtype: with bf16 (8-bit mantissa) output the table's resolution
 * is invisible, and a multi-GB checkpoint fills at memory speed.
 *
 * Scaling (like a trained pre-norm transformer, so outputs depend on the prompt):
 *  - embeddings ~ N(0, 1) per coordinate (token identity dominates the residual stream), plus a
 *    shared direction u with weight GAMMA (the "mean hidden state" the router skew keys on);
 *  - input projections (q, k, v, gate, up) ~ N(0, 1/fan_in); output projections (o, down) also
 *    divided by sqrt(2 * layers), so the residual stream stays O(1) through depth;
 *  - lm_head ~ N(0, 1/hidden): logits ~ N(0, 1) per token, never dominated by one token;
 *  - norm weights 1 + N(0, 0.02).
 *
 * Router skew (option routerSkew = s >= 0): router row e = n_e + b_e u with n_e ~ N(0, 1/hidden)
 * projected orthogonal to u.
 * For a normalized hidden state x (|x|^2 ~ hidden), n_e . x ~ N(0, 1) (token-dependent noise) and
 * u . x ~ c_l sqrt(hidden), c_l being u's expected share of layer l's normalized input (GAMMA
 * diluted by the branch outputs added before that layer). Choosing
 *   b_e = mu_e / (c_l sqrt(hidden)),  mu_e = -s * kappa(E) * ln(e + 1)  (centred over experts)
 * gives logits mu_e + N(0, 1). Top-1 of Gaussian-perturbed logits is close to a softmax of mu / kappa
 * (Gumbel approximation, kappa(E) its scale), so expert e is chosen with probability
 * ~ (e + 1)^-s / Z: Zipf-like popularity, expert 0 hottest, as in trained MoE routers. s = 0 gives
 * routers with no preference (each expert ~ equally likely over many tokens).
 */
import { f32ToBf16Bits, f32ToF16Bits } from "../device/f16.js";

export type GenDType = "bf16" | "f16" | "f32";

/** Share of the embedding's energy along the shared direction u (see header). */
export const GAMMA = 0.5;
/**
 * Effective Gumbel scale of the top-1 choice among E experts under ~unit Gaussian logit noise. The
 * maximum of E Gaussians behaves like a Gumbel of scale ~ 1/sqrt(2 ln E); the constant was fitted on
 * simulated hidden states (see test/node/make) so popularity follows (e+1)^-s for E = 8..128.
 */
export function kappa(experts: number): number {
  return 0.92 / Math.sqrt(Math.log(Math.max(2, experts)));
}
export const NORM_JITTER = 0.02;

export type InitSpec =
  | { kind: "normal"; std: number }
  | { kind: "norm" }
  | { kind: "embed"; hidden: number }
  | {
      kind: "router";
      hidden: number;
      experts: number;
      /** Index of the layer among all layers, and the layer count (for c_l). */
      layer: number;
      layers: number;
      skew: number;
    };

export function dtypeBytes(d: GenDType): number {
  return d === "f32" ? 4 : 2;
}

// ------------------------------------------------------------------ random streams

/** FNV-1a over the seed and name, then splitmix32 to spread it into 4 state words. */
function seedState(seed: number, name: string): Uint32Array {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  h = Math.imul(h, 0x01000193);
  h ^= Math.floor(seed / 2 ** 32) >>> 0;
  h = Math.imul(h, 0x01000193);
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  const s = new Uint32Array(4);
  let x = h >>> 0;
  for (let i = 0; i < 4; i++) {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    s[i] = (z ^ (z >>> 16)) >>> 0;
  }
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1;
  return s;
}

/** xoshiro128**: fast, 32-bit, good statistical quality; state in closure locals for speed. */
export function rng32(seed: number, name: string): () => number {
  const st = seedState(seed, name);
  let a = st[0];
  let b = st[1];
  let c = st[2];
  let d = st[3];
  return () => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return r;
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Acklam's inverse normal CDF (relative error < 1.2e-9): plenty for a 16-bit table. */
function invNormCdf(p: number): number {
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628274631,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    );
  }
  if (p > 1 - lo) return -invNormCdf(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
  );
}

let unitTable: Float64Array | null = null;

/** N(0,1) quantiles at (i + 0.5) / 65536: symmetric, mean exactly 0. */
function normalTable(): Float64Array {
  if (!unitTable) {
    unitTable = new Float64Array(65536);
    for (let i = 0; i < 65536; i++) unitTable[i] = invNormCdf((i + 0.5) / 65536);
  }
  return unitTable;
}

/** n standard normal samples as f64 (for small tensors that need arithmetic before storing). */
export function normals(seed: number, name: string, n: number): Float64Array {
  const t = normalTable();
  const next = rng32(seed, name);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = next();
    out[i] = t[r & 0xffff];
    if (i + 1 < n) out[i + 1] = t[r >>> 16];
  }
  return out;
}

// ------------------------------------------------------------------ encoding

function encodeValues(values: ArrayLike<number>, dtype: GenDType): Uint8Array {
  const n = values.length;
  if (dtype === "f32") return new Uint8Array(Float32Array.from(values).buffer);
  const out = new Uint16Array(n);
  const conv = dtype === "bf16" ? f32ToBf16Bits : f32ToF16Bits;
  for (let i = 0; i < n; i++) out[i] = conv(values[i]);
  return new Uint8Array(out.buffer);
}

/**
 * Two table lookups per xoshiro128** step (16 random bits each), with the generator inlined and its
 * state in locals: this loop produces every byte of a multi-GB checkpoint. 16-bit outputs are
 * stored pairwise as one u32 (little-endian: the first sample in the low half). Kept monomorphic
 * (one array type per function) so V8 compiles it to a tight loop.
 */
function fillPairs16(out: Uint32Array, table: Uint16Array, st: Uint32Array): void {
  let a = st[0] | 0;
  let b = st[1] | 0;
  let c = st[2] | 0;
  let d = st[3] | 0;
  const n = out.length;
  for (let i = 0; i < n; i++) {
    const x = Math.imul(b, 5);
    const r = Math.imul((x << 7) | (x >>> 25), 9);
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = (d << 11) | (d >>> 21);
    out[i] = table[r & 0xffff] | (table[r >>> 16] << 16);
  }
  st[0] = a;
  st[1] = b;
  st[2] = c;
  st[3] = d;
}

function fillPairs32(out: Float32Array, table: Float32Array, st: Uint32Array): void {
  let a = st[0] | 0;
  let b = st[1] | 0;
  let c = st[2] | 0;
  let d = st[3] | 0;
  const n = out.length >>> 1;
  for (let i = 0; i < n; i++) {
    const x = Math.imul(b, 5);
    const r = Math.imul((x << 7) | (x >>> 25), 9);
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = (d << 11) | (d >>> 21);
    out[2 * i] = table[r & 0xffff];
    out[2 * i + 1] = table[r >>> 16];
  }
  st[0] = a;
  st[1] = b;
  st[2] = c;
  st[3] = d;
}

/** The odd last element, from the stream's next step. */
function lastFromTable(table: Uint16Array | Float32Array, st: Uint32Array): number {
  const x = Math.imul(st[1], 5);
  return table[Math.imul((x << 7) | (x >>> 25), 9) & 0xffff];
}

/**
 * A reusable output buffer. Fresh multi-hundred-MB allocations cost page faults and zeroing on
 * every tensor; a streaming writer that consumes each tensor before asking for the next can hand
 * the same memory back each time. Bytes returned with a scratch are valid until the next call.
 */
export interface Scratch {
  buf: ArrayBuffer | null;
}

function scratchBuffer(scratch: Scratch | undefined, bytes: number): ArrayBuffer {
  // Rounded up to 4 bytes so the u32 pair view always fits.
  const need = Math.ceil(bytes / 4) * 4;
  if (!scratch) return new ArrayBuffer(need);
  if (!scratch.buf || scratch.buf.byteLength < need) scratch.buf = new ArrayBuffer(need);
  return scratch.buf;
}

/** N(0, std^2) samples written straight into the output dtype through a 65536-entry table. */
function fillNormal(
  seed: number,
  name: string,
  n: number,
  std: number,
  dtype: GenDType,
  scratch?: Scratch,
): Uint8Array {
  const unit = normalTable();
  const st = seedState(seed, name);
  if (dtype === "f32") {
    const table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) table[i] = unit[i] * std;
    const out = new Float32Array(scratchBuffer(scratch, n * 4), 0, n);
    fillPairs32(out, table, st);
    if (n & 1) out[n - 1] = lastFromTable(table, st);
    return new Uint8Array(out.buffer, 0, n * 4);
  }
  const conv = dtype === "bf16" ? f32ToBf16Bits : f32ToF16Bits;
  const table = new Uint16Array(65536);
  for (let i = 0; i < 65536; i++) table[i] = conv(unit[i] * std);
  const out = new Uint16Array(scratchBuffer(scratch, n * 2), 0, n);
  fillPairs16(new Uint32Array(out.buffer, 0, n >>> 1), table, st);
  if (n & 1) out[n - 1] = lastFromTable(table, st);
  return new Uint8Array(out.buffer, 0, n * 2);
}

/** The shared unit direction u (same for every tensor of a model with this seed). */
export function sharedDirection(seed: number, hidden: number): Float64Array {
  const u = normals(seed, "__shared_direction__", hidden);
  let norm = 0;
  for (const x of u) norm += x * x;
  norm = Math.sqrt(norm);
  return u.map((x) => x / norm);
}

/**
 * Expected share c_l of u in layer l's normalized FFN input: the embedding carries GAMMA, and the
 * l + 1 attention and l FFN branches added before it each add variance ~ 1/(2L) (attention) and
 * ~ 0.3/(2L) (SwiGLU halves and more), diluting it.
 */
export function directionShare(layer: number, layers: number): number {
  const branchVar = (layer + 1 + 0.3 * layer) / (2 * layers);
  return GAMMA / Math.sqrt(1 + GAMMA * GAMMA + branchVar);
}

/** Target router logit offsets mu_e (centred), see the header. */
export function routerOffsets(experts: number, skew: number): Float64Array {
  const mu = new Float64Array(experts);
  const k = kappa(experts);
  for (let e = 0; e < experts; e++) mu[e] = -skew * k * Math.log(e + 1);
  const mean = mu.reduce((a, b) => a + b, 0) / Math.max(1, experts);
  return mu.map((m) => m - mean);
}

/** Produce the bytes of one tensor (row-major, little-endian) in `dtype`. */
export function fillTensor(
  seed: number,
  name: string,
  shape: readonly number[],
  spec: InitSpec,
  dtype: GenDType,
  scratch?: Scratch,
): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1);
  switch (spec.kind) {
    case "normal":
      return fillNormal(seed, name, n, spec.std, dtype, scratch);
    case "norm": {
      const z = normals(seed, name, n);
      return encodeValues(
        z.map((v) => 1 + NORM_JITTER * v),
        dtype,
      );
    }
    case "embed": {
      const H = spec.hidden;
      const u = sharedDirection(seed, H);
      const shift = u.map((x) => GAMMA * Math.sqrt(H) * x);
      const z = normals(seed, name, n);
      for (let i = 0; i < n; i++) z[i] += shift[i % H];
      return encodeValues(z, dtype);
    }
    case "router": {
      const H = spec.hidden;
      const z = normals(seed, name, n);
      const scale = 1 / Math.sqrt(H);
      for (let i = 0; i < n; i++) z[i] *= scale;
      // Remove each row's component along u (a fixed random per-expert offset of std ~GAMMA that
      // would blur the popularity law), then add exactly the offset the skew asks for.
      const u = sharedDirection(seed, H);
      const mu = routerOffsets(spec.experts, spec.skew);
      const c = directionShare(spec.layer, spec.layers) * Math.sqrt(H);
      for (let e = 0; e < spec.experts; e++) {
        let along = 0;
        for (let i = 0; i < H; i++) along += z[e * H + i] * u[i];
        const b = mu[e] / c - along;
        for (let i = 0; i < H; i++) z[e * H + i] += b * u[i];
      }
      return encodeValues(z, dtype);
    }
  }
}
