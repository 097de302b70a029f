/**
 * GGUF v3 reader and streaming writer (format: ggml docs/gguf.md, summarised in
 * shared/reference/model-formats.md section 3). The reader parses the header, every metadata value
 * type (arrays included) and the tensor table, validates every offset against the file, and then
 * serves positioned reads; it never maps or reads the whole file.
 */
import { closeSync, fstatSync, openSync, rmSync } from "node:fs";
import { FormatError } from "./errors.js";
import { closeQuietly, openWithHeader, preadExact, writeAll, writeChunks } from "./io.js";
import { TensorFile } from "./tensor-file.js";

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** ggml tensor type ids (ggml.h). Only F32/F16/BF16/Q8_0/Q4_0 can be decoded by this project. */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  BF16: 30,
} as const;
export type GgmlTypeId = number;

/** [elements per block, bytes per block] for the types whose size we know. */
const TYPE_BLOCK: Record<number, [number, number]> = {
  0: [1, 4],
  1: [1, 2],
  2: [32, 18],
  3: [32, 20],
  6: [32, 22],
  7: [32, 24],
  8: [32, 34],
  9: [32, 36],
  10: [256, 84],
  11: [256, 110],
  12: [256, 144],
  13: [256, 176],
  14: [256, 210],
  15: [256, 292],
  24: [1, 1],
  25: [1, 2],
  26: [1, 4],
  27: [1, 8],
  28: [1, 8],
  30: [1, 2],
};

export function ggmlTypeName(t: number): string {
  for (const [k, v] of Object.entries(GgmlType)) if (v === t) return k;
  return `type#${t}`;
}

/** Bytes of a tensor with these dims (ne[0] first); throws if ne[0] is not a whole number of blocks. */
export function ggmlNbytes(type: number, dims: readonly number[]): number {
  const b = TYPE_BLOCK[type];
  if (!b) throw new Error(`unknown ggml type ${type}`);
  const [blk, bytes] = b;
  if (dims.length > 0 && dims[0] % blk !== 0) {
    throw new Error(`ne[0]=${dims[0]} is not a multiple of the ${ggmlTypeName(type)} block size ${blk}`);
  }
  let n = 1;
  for (const d of dims) n *= d;
  return (n / blk) * bytes;
}

// ---------------------------------------------------------------- metadata values

export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

export type GgufNumberType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";
export type GgufBigType = "u64" | "i64";
export type GgufScalarType = GgufNumberType | GgufBigType | "bool" | "string";

/** One metadata value with its on-disk type, so files round-trip exactly. */
export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigType; value: bigint }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "array"; itemType: GgufNumberType; value: number[] }
  | { type: "array"; itemType: GgufBigType; value: bigint[] }
  | { type: "array"; itemType: "bool"; value: boolean[] }
  | { type: "array"; itemType: "string"; value: string[] }
  | { type: "array"; itemType: "array"; value: GgufValue[] };

const TYPE_IDS: Record<GgufScalarType | "array", number> = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
};
const TYPE_NAMES = Object.fromEntries(Object.entries(TYPE_IDS).map(([k, v]) => [v, k])) as Record<
  number,
  GgufScalarType | "array"
>;

/** Convenience constructors for metadata values. */
export const gv = {
  u32: (value: number): GgufValue => ({ type: "u32", value }),
  i32: (value: number): GgufValue => ({ type: "i32", value }),
  f32: (value: number): GgufValue => ({ type: "f32", value }),
  u64: (value: number | bigint): GgufValue => ({ type: "u64", value: BigInt(value) }),
  bool: (value: boolean): GgufValue => ({ type: "bool", value }),
  str: (value: string): GgufValue => ({ type: "string", value }),
  strs: (value: string[]): GgufValue => ({ type: "array", itemType: "string", value }),
  i32s: (value: number[]): GgufValue => ({ type: "array", itemType: "i32", value }),
  u32s: (value: number[]): GgufValue => ({ type: "array", itemType: "u32", value }),
  f32s: (value: number[]): GgufValue => ({ type: "array", itemType: "f32", value }),
  bools: (value: boolean[]): GgufValue => ({ type: "array", itemType: "bool", value }),
};

/** Plain JS view of a metadata value (bigints that fit become numbers). */
export function plainValue(v: GgufValue | undefined): unknown {
  if (v === undefined) return undefined;
  if (v.type === "array") {
    if (v.itemType === "array") return v.value.map((x) => plainValue(x));
    return (v.value as unknown[]).map((x) =>
      typeof x === "bigint" && x <= BigInt(Number.MAX_SAFE_INTEGER) && x >= -BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(x)
        : x,
    );
  }
  if (typeof v.value === "bigint") {
    return v.value <= BigInt(Number.MAX_SAFE_INTEGER) && v.value >= -BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v.value)
      : v.value;
  }
  return v.value;
}

// ---------------------------------------------------------------- reading

export interface GgufTensorInfo {
  name: string;
  /** ne[0] first (fastest-varying); a PyTorch [out,in] matrix is [in,out] here. */
  dims: number[];
  type: number;
  /** Absolute file offset of the tensor data. */
  offset: number;
  nbytes: number;
}

export interface GgufHeader {
  path: string;
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: Map<string, GgufTensorInfo>;
  /** Tensor names in file order. */
  tensorOrder: string[];
  alignment: number;
  dataStart: number;
  fileSize: number;
}

/** Buffered sequential reader over a file descriptor, for the header section. */
class HeaderCursor {
  private buf: Uint8Array = new Uint8Array(0);
  private bufStart = 0;
  pos = 0;
  private readonly dec = new TextDecoder("utf-8", { fatal: true });

  constructor(
    private readonly fd: number,
    private readonly fileSize: number,
    private readonly path: string,
  ) {}

  private ensure(n: number, what: string): void {
    if (this.pos + n > this.fileSize) {
      throw new FormatError(this.path, `truncated header: ${what} needs ${n} bytes at offset ${this.pos}`);
    }
    const end = this.bufStart + this.buf.length;
    if (this.pos >= this.bufStart && this.pos + n <= end) return;
    const want = Math.min(Math.max(n, 1 << 20), this.fileSize - this.pos);
    this.buf = preadExact(this.fd, this.pos, want);
    this.bufStart = this.pos;
  }

  private view(n: number, what: string): DataView {
    this.ensure(n, what);
    const off = this.pos - this.bufStart;
    this.pos += n;
    return new DataView(this.buf.buffer, this.buf.byteOffset + off, n);
  }

  u8(w: string): number {
    return this.view(1, w).getUint8(0);
  }
  i8(w: string): number {
    return this.view(1, w).getInt8(0);
  }
  u16(w: string): number {
    return this.view(2, w).getUint16(0, true);
  }
  i16(w: string): number {
    return this.view(2, w).getInt16(0, true);
  }
  u32(w: string): number {
    return this.view(4, w).getUint32(0, true);
  }
  i32(w: string): number {
    return this.view(4, w).getInt32(0, true);
  }
  f32(w: string): number {
    return this.view(4, w).getFloat32(0, true);
  }
  f64(w: string): number {
    return this.view(8, w).getFloat64(0, true);
  }
  u64(w: string): bigint {
    return this.view(8, w).getBigUint64(0, true);
  }
  i64(w: string): bigint {
    return this.view(8, w).getBigInt64(0, true);
  }
  /** u64 that must fit a JS number and stay below `max`. */
  count(w: string, max: number): number {
    const v = this.u64(w);
    if (v > BigInt(max)) throw new FormatError(this.path, `${w} = ${v} is implausibly large (corrupt file?)`);
    return Number(v);
  }
  str(w: string): string {
    const len = this.count(`${w} length`, this.fileSize);
    this.ensure(len, w);
    const off = this.pos - this.bufStart;
    this.pos += len;
    try {
      return this.dec.decode(this.buf.subarray(off, off + len));
    } catch {
      throw new FormatError(this.path, `${w} is not valid UTF-8`);
    }
  }
}

function readValue(c: HeaderCursor, typeId: number, what: string, path: string, depth = 0): GgufValue {
  const t = TYPE_NAMES[typeId];
  switch (t) {
    case "u8":
      return { type: t, value: c.u8(what) };
    case "i8":
      return { type: t, value: c.i8(what) };
    case "u16":
      return { type: t, value: c.u16(what) };
    case "i16":
      return { type: t, value: c.i16(what) };
    case "u32":
      return { type: t, value: c.u32(what) };
    case "i32":
      return { type: t, value: c.i32(what) };
    case "f32":
      return { type: t, value: c.f32(what) };
    case "f64":
      return { type: t, value: c.f64(what) };
    case "u64":
      return { type: t, value: c.u64(what) };
    case "i64":
      return { type: t, value: c.i64(what) };
    case "bool": {
      const b = c.u8(what);
      if (b > 1) throw new FormatError(path, `${what}: bool byte ${b} is not 0 or 1`);
      return { type: t, value: b === 1 };
    }
    case "string":
      return { type: t, value: c.str(what) };
    case "array": {
      if (depth > 8) throw new FormatError(path, `${what}: arrays nested too deep`);
      const itemId = c.u32(`${what} item type`);
      const it = TYPE_NAMES[itemId];
      if (it === undefined) throw new FormatError(path, `${what}: unknown array item type ${itemId}`);
      // Every item takes at least one byte, so the count cannot exceed the file size.
      const n = c.count(`${what} count`, Number.MAX_SAFE_INTEGER);
      const values: unknown[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const v = readValue(c, itemId, what, path, depth + 1);
        values[i] = it === "array" ? v : v.value;
      }
      return { type: "array", itemType: it, value: values } as GgufValue;
    }
    default:
      throw new FormatError(path, `${what}: unknown metadata value type ${typeId}`);
  }
}

/** Parse and validate header, metadata and tensor table of an open GGUF file. */
export function readGgufHeaderFd(fd: number, path: string): GgufHeader {
  const fileSize = fstatSync(fd).size;
  const c = new HeaderCursor(fd, fileSize, path);
  if (fileSize < 24) throw new FormatError(path, `not a GGUF file: only ${fileSize} bytes`);
  const magic = c.u32("magic");
  if (magic !== GGUF_MAGIC) throw new FormatError(path, `not a GGUF file (magic 0x${magic.toString(16)})`);
  const version = c.u32("version");
  if (version !== 3 && version !== 2)
    throw new FormatError(path, `unsupported GGUF version ${version} (need 3)`);
  const nTensors = c.count("tensor_count", fileSize);
  const nKv = c.count("metadata_kv_count", fileSize);
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = c.str(`metadata key #${i}`);
    const typeId = c.u32(`type of ${key}`);
    if (metadata.has(key)) throw new FormatError(path, `duplicate metadata key ${key}`);
    metadata.set(key, readValue(c, typeId, `metadata ${key}`, path));
  }
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get("general.alignment");
  if (al !== undefined) {
    if (al.type !== "u32" || al.value === 0 || al.value % 8 !== 0) {
      throw new FormatError(
        path,
        `general.alignment must be a u32 multiple of 8, got ${JSON.stringify(plainValue(al))}`,
      );
    }
    alignment = al.value;
  }
  const infos: { name: string; dims: number[]; type: number; rel: number }[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = c.str(`tensor #${i} name`);
    const nd = c.u32(`tensor ${name} n_dims`);
    if (nd > 4) throw new FormatError(path, `n_dims ${nd} > 4`, name);
    const dims: number[] = [];
    for (let d = 0; d < nd; d++) dims.push(c.count(`tensor ${name} dim`, Number.MAX_SAFE_INTEGER));
    const type = c.u32(`tensor ${name} type`);
    const rel = c.count(`tensor ${name} offset`, fileSize);
    infos.push({ name, dims, type, rel });
  }
  const dataStart = Math.ceil(c.pos / alignment) * alignment;
  const tensors = new Map<string, GgufTensorInfo>();
  const order: string[] = [];
  for (const t of infos) {
    if (tensors.has(t.name)) throw new FormatError(path, "duplicate tensor name", t.name);
    if (!TYPE_BLOCK[t.type]) throw new FormatError(path, `unknown ggml type ${t.type}`, t.name);
    let nbytes: number;
    try {
      nbytes = ggmlNbytes(t.type, t.dims);
    } catch (e) {
      throw new FormatError(path, (e as Error).message, t.name);
    }
    if (t.rel % alignment !== 0)
      throw new FormatError(path, `offset ${t.rel} not aligned to ${alignment}`, t.name);
    const offset = dataStart + t.rel;
    if (offset + nbytes > fileSize) {
      throw new FormatError(
        path,
        `data [${offset}, ${offset + nbytes}) runs past end of file (${fileSize} bytes): truncated?`,
        t.name,
      );
    }
    tensors.set(t.name, { name: t.name, dims: t.dims, type: t.type, offset, nbytes });
    order.push(t.name);
  }
  // Overlapping tensors mean a corrupt table.
  const sorted = [...tensors.values()].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (sorted[i].offset < prev.offset + prev.nbytes) {
      throw new FormatError(path, `data overlaps tensor ${prev.name}`, sorted[i].name);
    }
  }
  return { path, version, metadata, tensors, tensorOrder: order, alignment, dataStart, fileSize };
}

export function readGgufHeader(path: string): GgufHeader {
  const { fd, header } = openWithHeader(path, readGgufHeaderFd);
  closeQuietly(fd);
  return header;
}

/** An open GGUF file for positioned tensor reads. */
export class GgufFile extends TensorFile<GgufTensorInfo, GgufHeader> {
  constructor(path: string) {
    super(path, readGgufHeaderFd);
  }

  meta(key: string): unknown {
    return plainValue(this.header.metadata.get(key));
  }
}

// ---------------------------------------------------------------- writing

export type GgufTensorToWrite = {
  name: string;
  type: number;
  /** ne[0] first. */
  dims: number[];
} & ({ data: Uint8Array } | { fill: () => Uint8Array | Iterable<Uint8Array> });

class ByteSink {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(1 << 16);
  private n = 0;
  length = 0;

  private room(k: number): void {
    if (this.n + k <= this.cur.length) return;
    this.chunks.push(this.cur.subarray(0, this.n));
    this.cur = new Uint8Array(Math.max(1 << 16, k));
    this.n = 0;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.cur.set(b, this.n);
    this.n += b.length;
    this.length += b.length;
  }
  num(k: number, set: (dv: DataView) => void): void {
    this.room(k);
    set(new DataView(this.cur.buffer, this.n, k));
    this.n += k;
    this.length += k;
  }
  u32(v: number): void {
    this.num(4, (d) => d.setUint32(0, v, true));
  }
  u64(v: number | bigint): void {
    this.num(8, (d) => d.setBigUint64(0, BigInt(v), true));
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of [...this.chunks, this.cur.subarray(0, this.n)]) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

function writeScalar(s: ByteSink, type: GgufScalarType, v: unknown): void {
  switch (type) {
    case "u8":
      s.num(1, (d) => d.setUint8(0, v as number));
      return;
    case "i8":
      s.num(1, (d) => d.setInt8(0, v as number));
      return;
    case "u16":
      s.num(2, (d) => d.setUint16(0, v as number, true));
      return;
    case "i16":
      s.num(2, (d) => d.setInt16(0, v as number, true));
      return;
    case "u32":
      s.num(4, (d) => d.setUint32(0, v as number, true));
      return;
    case "i32":
      s.num(4, (d) => d.setInt32(0, v as number, true));
      return;
    case "f32":
      s.num(4, (d) => d.setFloat32(0, v as number, true));
      return;
    case "f64":
      s.num(8, (d) => d.setFloat64(0, v as number, true));
      return;
    case "u64":
      s.num(8, (d) => d.setBigUint64(0, BigInt(v as bigint), true));
      return;
    case "i64":
      s.num(8, (d) => d.setBigInt64(0, BigInt(v as bigint), true));
      return;
    case "bool":
      s.num(1, (d) => d.setUint8(0, v ? 1 : 0));
      return;
    case "string":
      s.str(v as string);
      return;
  }
}

function writeValue(s: ByteSink, v: GgufValue): void {
  if (v.type !== "array") {
    writeScalar(s, v.type, v.value);
    return;
  }
  s.u32(TYPE_IDS[v.itemType]);
  s.u64(v.value.length);
  for (const item of v.value as unknown[]) {
    if (v.itemType === "array") {
      const inner = item as GgufValue;
      if (inner.type !== "array") throw new Error("nested array item is not an array");
      writeValue(s, inner);
    } else writeScalar(s, v.itemType, item);
  }
}

/**
 * Write a GGUF v3 file. Metadata is written in the given order; tensors are written one at a
 * time (their `fill` callbacks are called in order), each padded to `alignment`.
 */
export function writeGguf(
  path: string,
  metadata: ReadonlyArray<[string, GgufValue]>,
  tensors: readonly GgufTensorToWrite[],
  alignment = GGUF_DEFAULT_ALIGNMENT,
): number {
  const s = new ByteSink();
  s.u32(GGUF_MAGIC);
  s.u32(3);
  s.u64(tensors.length);
  const meta = metadata.filter(([k]) => k !== "general.alignment");
  if (alignment !== GGUF_DEFAULT_ALIGNMENT) meta.push(["general.alignment", gv.u32(alignment)]);
  const seen = new Set<string>();
  s.u64(meta.length);
  for (const [k, v] of meta) {
    if (seen.has(k)) throw new FormatError(path, `duplicate metadata key ${k}`);
    seen.add(k);
    s.str(k);
    s.u32(TYPE_IDS[v.type]);
    writeValue(s, v);
  }
  const sizes: number[] = [];
  let rel = 0;
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new FormatError(path, "duplicate tensor name", t.name);
    names.add(t.name);
    let n: number;
    try {
      n = ggmlNbytes(t.type, t.dims);
    } catch (e) {
      throw new FormatError(path, (e as Error).message, t.name);
    }
    sizes.push(n);
    s.str(t.name);
    s.u32(t.dims.length);
    for (const d of t.dims) s.u64(d);
    s.u32(t.type);
    s.u64(rel);
    rel += Math.ceil(n / alignment) * alignment;
  }
  const pad = Math.ceil(s.length / alignment) * alignment - s.length;
  s.bytes(new Uint8Array(pad));
  const head = s.concat();
  const fd = openSync(path, "w");
  let total = head.length;
  try {
    writeAll(fd, head);
    tensors.forEach((t, i) => {
      const n = writeChunks(fd, "data" in t ? t.data : t.fill());
      if (n !== sizes[i]) throw new FormatError(path, `got ${n} bytes, expected ${sizes[i]}`, t.name);
      const p = Math.ceil(n / alignment) * alignment - n;
      if (p > 0) writeAll(fd, new Uint8Array(p));
      total += n + p;
    });
  } catch (e) {
    // Leave no half-written file behind.
    closeQuietly(fd);
    rmSync(path, { force: true });
    throw e;
  }
  closeSync(fd);
  return total;
}
