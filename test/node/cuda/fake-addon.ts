/**
 * A host-memory stand-in for the CUDA addon: the same buffer/op API, each op computed by the
 * reference device on views of the emulated buffers. It lets the TypeScript side of the CUDA
 * device (mirrors, KV row tracking, the expert cache, scratch reuse) run and be checked on a
 * machine without a GPU. It says nothing about the kernels themselves: those run on the GPU script.
 */
import type { CudaAddon, CudaProbe } from "../../../gpu-backend/device/cuda/native.js";
import type { Weight, WeightDType } from "../../../gpu-backend/device/device.js";
import { f32ToF16Bits, weightDataBytes } from "../../../gpu-backend/device/f16.js";
import { ReferenceDevice } from "../../../gpu-backend/device/reference/reference-device.js";

const DTYPES: WeightDType[] = ["f32", "f16", "bf16", "q8", "q4"];

export class FakeCudaAddon implements CudaAddon {
  readonly gemmMinTokens = 16;
  readonly buffers = new Map<number, Uint8Array>();
  private next = 1;
  private readonly ref = new ReferenceDevice();
  private int8Matvec = true;
  /** Bytes written host -> device (all paths), for assertions. */
  written = 0;
  allocs = 0;
  frees = 0;

  constructor(private readonly memory = 1 << 30) {}

  probe(): CudaProbe {
    return {
      ok: true,
      runtimeVersion: 13000,
      driverVersion: 13000,
      name: "Fake GPU",
      totalBytes: this.memory,
    };
  }
  alloc(bytes: number): number {
    const id = this.next++;
    this.buffers.set(id, new Uint8Array(Math.max(1, bytes)));
    this.allocs++;
    return id;
  }
  free(id: number): void {
    if (!this.buffers.delete(id)) throw new Error(`free: bad id ${id}`);
    this.frees++;
  }
  memInfo() {
    let used = 0;
    for (const b of this.buffers.values()) used += b.byteLength;
    return { freeBytes: this.memory - used, totalBytes: this.memory };
  }
  private buf(id: number): Uint8Array {
    const b = this.buffers.get(id);
    if (!b) throw new Error(`bad device buffer id ${id}`);
    return b;
  }
  private bytes(id: number, off: number, n: number): Uint8Array {
    const b = this.buf(id);
    if (off + n > b.byteLength) throw new Error(`range outside buffer ${id}`);
    return b.subarray(off, off + n);
  }
  private f32(id: number, off: number, n: number): Float32Array {
    const b = this.bytes(id, off, n * 4);
    return new Float32Array(b.buffer, b.byteOffset, n);
  }
  private hostBytes(src: ArrayBufferView | ArrayBuffer, n?: number): Uint8Array {
    const u =
      src instanceof ArrayBuffer
        ? new Uint8Array(src)
        : new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
    return n === undefined ? u : u.subarray(0, n);
  }
  write(id: number, off: number, src: ArrayBufferView | ArrayBuffer, n?: number): void {
    const h = this.hostBytes(src, n);
    this.bytes(id, off, h.byteLength).set(h);
    this.written += h.byteLength;
  }
  read(id: number, off: number, dst: ArrayBufferView | ArrayBuffer, n?: number): void {
    const h = this.hostBytes(dst, n);
    h.set(this.bytes(id, off, h.byteLength));
  }
  copy(dst: number, dOff: number, src: number, sOff: number, n: number): void {
    this.bytes(dst, dOff, n).set(this.bytes(src, sOff, n));
  }
  allocPinned(bytes: number): ArrayBuffer {
    return new ArrayBuffer(bytes);
  }
  h2dAsync(dst: number, dOff: number, src: ArrayBufferView, n: number): number {
    this.write(dst, dOff, src, n);
    return 1;
  }
  d2hAsync(dst: ArrayBufferView, src: number, sOff: number, n: number): number {
    this.read(src, sOff, dst, n);
    return 1;
  }
  recordEvent(): number {
    return 1;
  }
  streamWait(): void {}
  eventQuery(): boolean {
    return true;
  }
  eventSync(): void {}
  eventElapsed(): number {
    return 0;
  }
  releaseEvent(): void {}
  sync(): void {}
  matmul(
    out: number,
    outOff: number,
    x: number,
    xOff: number,
    n: number,
    dtype: number,
    rows: number,
    cols: number,
    w: number,
    wOff: number,
    s: number,
    sOff: number,
  ): void {
    const dt = DTYPES[dtype];
    const weight: Weight = {
      dtype: dt,
      rows,
      cols,
      data: this.bytes(w, wOff, weightDataBytes(dt, rows, cols)).slice(),
    };
    if (dt === "q8" || dt === "q4") weight.scales = this.bytes(s, sOff, (rows * cols) / 16).slice();
    this.ref.matmul(this.f32(out, outOff, n * rows), this.f32(x, xOff, n * cols).slice(), n, weight);
  }
  rmsnorm(
    out: number,
    oOff: number,
    x: number,
    xOff: number,
    w: number,
    wOff: number,
    rows: number,
    dim: number,
    eps: number,
  ): void {
    const xs = this.f32(x, xOff, rows * dim).slice();
    this.ref.rmsnorm(this.f32(out, oOff, rows * dim), xs, w ? this.f32(w, wOff, dim) : null, rows, dim, eps);
  }
  rope(
    x: number,
    xOff: number,
    nTok: number,
    nHeads: number,
    headDim: number,
    pos: number,
    posOff: number,
    freq: number,
    fOff: number,
    half: number,
    neox: boolean,
  ): void {
    const p = this.bytes(pos, posOff, nTok * 4);
    this.ref.rope(
      this.f32(x, xOff, nTok * nHeads * headDim),
      nTok,
      nHeads,
      headDim,
      new Int32Array(p.slice().buffer),
      this.f32(freq, fOff, half).slice(),
      neox ? "neox" : "interleaved",
    );
  }
  attention(
    q: number,
    qOff: number,
    k: number,
    kOff: number,
    v: number,
    vOff: number,
    out: number,
    oOff: number,
    nTok: number,
    nHeads: number,
    nKvHeads: number,
    headDim: number,
    pos0: number,
    scale: number,
    chunk: number,
    window: number,
  ): void {
    const kv = (pos0 + nTok) * nKvHeads * headDim;
    this.ref.attention({
      q: this.f32(q, qOff, nTok * nHeads * headDim).slice(),
      kCache: this.f32(k, kOff, kv),
      vCache: this.f32(v, vOff, kv),
      out: this.f32(out, oOff, nTok * nHeads * headDim),
      nTok,
      nHeads,
      nKvHeads,
      headDim,
      pos0,
      scale,
      chunkSize: chunk,
      window,
    });
  }
  swiglu(out: number, oOff: number, g: number, gOff: number, u: number, uOff: number, len: number): void {
    this.ref.swiglu(
      this.f32(out, oOff, len),
      this.f32(g, gOff, len).slice(),
      this.f32(u, uOff, len).slice(),
      len,
    );
  }
  addScaled(out: number, oOff: number, a: number, aOff: number, len: number, scale: number): void {
    this.ref.addScaled(this.f32(out, oOff, len), this.f32(a, aOff, len).slice(), len, scale);
  }
  route(
    l: number,
    lOff: number,
    nTok: number,
    nExp: number,
    k: number,
    sigmoid: boolean,
    renorm: boolean,
    ids: number,
    idsOff: number,
    w: number,
    wOff: number,
  ): void {
    const idb = this.bytes(ids, idsOff, nTok * k * 4);
    this.ref.route(
      this.f32(l, lOff, nTok * nExp).slice(),
      nTok,
      nExp,
      k,
      sigmoid ? "sigmoid" : "softmax",
      renorm,
      new Int32Array(idb.buffer, idb.byteOffset, nTok * k),
      this.f32(w, wOff, nTok * k),
    );
  }
  fill(id: number, off: number, count: number, kind: 0 | 1 | 2, seed: number, lo: number, hi: number): void {
    let st = (seed ^ 0x9e3779b9) >>> 0;
    const next = () => {
      st = (Math.imul(st, 1664525) + 1013904223) >>> 0;
      return st / 4294967296;
    };
    if (kind === 0) {
      const b = this.bytes(id, off, count);
      for (let i = 0; i < count; i++) b[i] = (next() * 256) | 0;
    } else if (kind === 1) {
      const b = this.bytes(id, off, count * 2);
      const u = new Uint16Array(b.buffer, b.byteOffset, count);
      for (let i = 0; i < count; i++) u[i] = f32ToF16Bits(lo + (hi - lo) * next());
    } else {
      const f = this.f32(id, off, count);
      for (let i = 0; i < count; i++) f[i] = lo + (hi - lo) * next();
    }
  }
  /** Recorded only: the emulator's matmul keeps activations in f32 either way. */
  setInt8Matvec(on: boolean): boolean {
    const old = this.int8Matvec;
    this.int8Matvec = on;
    return old;
  }
  /** Fixed figures: the emulator has no bandwidth of its own. */
  memReadBandwidth(): number {
    return 100;
  }
  h2dBandwidth(): number {
    return 10;
  }
}
