/**
 * safetensors reader and streaming writer (format: huggingface/safetensors, see
 * shared/reference/model-formats.md section 2). Reads are positioned (no whole-file loads) so the
 * expert store can page single experts; writes go tensor by tensor so multi-GB checkpoints never
 * need to be held in memory at once.
 */
import { closeSync, fstatSync, mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FormatError } from "./errors.js";
import { closeQuietly, openWithHeader, preadExact, writeAll, writeChunks } from "./io.js";
import { TensorFile } from "./tensor-file.js";

/** dtypes in the reference implementation's declaration order (ascending alignment). */
const DTYPE_SIZES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;

export type SafetensorsDType = keyof typeof DTYPE_SIZES;
/** The dtypes our tools write. */
export type WritableDType = "F32" | "F16" | "BF16" | "I8" | "U8";

const DTYPE_ORDER = Object.keys(DTYPE_SIZES) as SafetensorsDType[];

export const MAX_HEADER_BYTES = 100_000_000;

export function dtypeSize(dtype: SafetensorsDType): number {
  return DTYPE_SIZES[dtype];
}

export function isSafetensorsDType(s: unknown): s is SafetensorsDType {
  return typeof s === "string" && Object.hasOwn(DTYPE_SIZES, s);
}

export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Absolute byte offset of the tensor in the file. */
  offset: number;
  nbytes: number;
}

export interface SafetensorsHeader {
  path: string;
  /** Byte length of the JSON header (N). */
  headerBytes: number;
  /** Absolute file offset of the data buffer (8 + N). */
  dataStart: number;
  fileSize: number;
  tensors: Map<string, SafetensorsTensorInfo>;
  metadata: Record<string, string>;
}

function prod(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Parse and validate the header of an already-open file. */
export function readSafetensorsHeaderFd(fd: number, path: string): SafetensorsHeader {
  const fileSize = fstatSync(fd).size;
  if (fileSize < 8) throw new FormatError(path, `not a safetensors file: ${fileSize} bytes, need at least 8`);
  const lenBuf = preadExact(fd, 0, 8);
  const n64 = new DataView(lenBuf.buffer).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    throw new FormatError(
      path,
      `header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt file?)`,
    );
  }
  const headerBytes = Number(n64);
  if (8 + headerBytes > fileSize) {
    throw new FormatError(
      path,
      `header length ${headerBytes} runs past end of file (${fileSize} bytes): truncated?`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(preadExact(fd, 8, headerBytes)));
  } catch (e) {
    throw new FormatError(path, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new FormatError(path, "header is not a JSON object");
  }
  const dataStart = 8 + headerBytes;
  const tensors = new Map<string, SafetensorsTensorInfo>();
  let metadata: Record<string, string> = {};
  const ranges: [number, number, string][] = [];
  for (const [name, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof v !== "object" || v === null || Array.isArray(v)) {
        throw new FormatError(path, "__metadata__ is not an object of strings");
      }
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== "string") throw new FormatError(path, `__metadata__.${k} is not a string`);
      }
      metadata = v as Record<string, string>;
      continue;
    }
    if (typeof v !== "object" || v === null) throw new FormatError(path, "entry is not an object", name);
    const { dtype, shape, data_offsets } = v as Record<string, unknown>;
    if (!isSafetensorsDType(dtype))
      throw new FormatError(path, `unsupported dtype ${JSON.stringify(dtype)}`, name);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new FormatError(path, `invalid shape ${JSON.stringify(shape)}`, name);
    }
    if (
      !Array.isArray(data_offsets) ||
      data_offsets.length !== 2 ||
      !data_offsets.every((d) => Number.isSafeInteger(d) && d >= 0) ||
      data_offsets[1] < data_offsets[0]
    ) {
      throw new FormatError(path, `invalid data_offsets ${JSON.stringify(data_offsets)}`, name);
    }
    const [begin, end] = data_offsets as [number, number];
    const expected = prod(shape) * DTYPE_SIZES[dtype];
    if (end - begin !== expected) {
      throw new FormatError(
        path,
        `byte size ${end - begin} != ${expected} expected for ${dtype} shape [${shape.join(",")}]`,
        name,
      );
    }
    tensors.set(name, { name, dtype, shape: shape as number[], offset: dataStart + begin, nbytes: expected });
    ranges.push([begin, end, name]);
  }
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cursor = 0;
  for (const [begin, end, name] of ranges) {
    if (begin !== cursor) {
      throw new FormatError(
        path,
        `data_offsets [${begin},${end}] are not contiguous (expected start ${cursor}: gap or overlap)`,
        name,
      );
    }
    cursor = end;
  }
  if (dataStart + cursor !== fileSize) {
    throw new FormatError(
      path,
      `tensor data ends at byte ${dataStart + cursor} but file has ${fileSize} bytes (${
        dataStart + cursor > fileSize ? "truncated" : "trailing garbage"
      })`,
    );
  }
  return { path, headerBytes, dataStart, fileSize, tensors, metadata };
}

/** Read and validate a safetensors header (tensor data is not read). */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const { fd, header } = openWithHeader(path, readSafetensorsHeaderFd);
  closeQuietly(fd);
  return header;
}

/** An open safetensors file for positioned tensor reads. */
export class SafetensorsFile extends TensorFile<SafetensorsTensorInfo, SafetensorsHeader> {
  constructor(path: string) {
    super(path, readSafetensorsHeaderFd);
  }
}

// ---------------------------------------------------------------- writing

export interface WriteOrder {
  /**
   * Keep the caller's tensor order instead of the reference order (descending dtype alignment,
   * then name). Producers that derive several tensors from one source (a quantized weight and its
   * scales) use it so one source is in memory at a time.
   */
  keepOrder?: boolean;
}

/** A tensor to write: either its bytes, or a `fill` callback that produces them when its turn comes. */
export type TensorToWrite = {
  name: string;
  dtype: WritableDType | SafetensorsDType;
  shape: number[];
} & ({ data: Uint8Array } | { fill: () => Uint8Array | Iterable<Uint8Array> });

function tensorBytes(t: TensorToWrite): number {
  return prod(t.shape) * DTYPE_SIZES[t.dtype];
}

/** Reference order: descending dtype alignment, then name (makes the layout deterministic). */
function sortForWrite<T extends TensorToWrite>(tensors: readonly T[]): T[] {
  return [...tensors].sort(
    (a, b) =>
      DTYPE_ORDER.indexOf(b.dtype) - DTYPE_ORDER.indexOf(a.dtype) ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
}

function validateToWrite(path: string, tensors: readonly TensorToWrite[]): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === "__metadata__" || t.name.length === 0)
      throw new FormatError(path, "invalid tensor name", t.name);
    if (seen.has(t.name)) throw new FormatError(path, "duplicate tensor name", t.name);
    seen.add(t.name);
    if (!isSafetensorsDType(t.dtype)) throw new FormatError(path, `unsupported dtype ${t.dtype}`, t.name);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new FormatError(path, `invalid shape [${t.shape.join(",")}]`, t.name);
    }
  }
}

/** Build the padded header (u64 length + JSON) for tensors in the given order. */
function buildHeader(ordered: readonly TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const obj: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) obj.__metadata__ = metadata;
  let off = 0;
  for (const t of ordered) {
    const n = tensorBytes(t);
    obj[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  const json = new TextEncoder().encode(JSON.stringify(obj));
  // Pad with spaces so the data buffer starts 8-aligned (as the reference writer does).
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/**
 * Write a safetensors file, tensor by tensor: only one tensor's bytes are alive at a time when
 * `fill` callbacks are used. Returns the number of bytes written.
 */
export function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
  opts: WriteOrder = {},
): number {
  validateToWrite(path, tensors);
  const ordered = opts.keepOrder ? [...tensors] : sortForWrite(tensors);
  const header = buildHeader(ordered, metadata);
  const fd = openSync(path, "w");
  let total = header.length;
  try {
    writeAll(fd, header);
    for (const t of ordered) {
      const n = writeChunks(fd, "data" in t ? t.data : t.fill());
      const expected = tensorBytes(t);
      if (n !== expected) {
        throw new FormatError(
          path,
          `got ${n} bytes, expected ${expected} for ${t.dtype} [${t.shape.join(",")}]`,
          t.name,
        );
      }
      total += n;
    }
  } catch (e) {
    // Leave no half-written file behind.
    closeQuietly(fd);
    rmSync(path, { force: true });
    throw e;
  }
  closeSync(fd);
  return total;
}

export interface ShardedWriteResult {
  /** Shard file names (relative to the folder), in order. */
  files: string[];
  /** Path of model.safetensors.index.json, or null when a single model.safetensors was written. */
  indexPath: string | null;
  totalSize: number;
}

/**
 * Write tensors into `dir` as HF does: a single `model.safetensors` when everything fits under
 * `maxShardBytes`, else `model-0000K-of-0000M.safetensors` shards + `model.safetensors.index.json`.
 * Tensors keep the given order across shards (callers group a layer's tensors together); a tensor
 * larger than the limit gets a shard of its own.
 */
export function writeShardedSafetensors(
  dir: string,
  tensors: readonly TensorToWrite[],
  opts: { maxShardBytes?: number; metadata?: Record<string, string> } & WriteOrder = {},
): ShardedWriteResult {
  const maxShard = opts.maxShardBytes ?? 5 * 1024 ** 3;
  validateToWrite(dir, tensors);
  mkdirSync(dir, { recursive: true });
  const groups: TensorToWrite[][] = [];
  let cur: TensorToWrite[] = [];
  let curBytes = 0;
  let totalSize = 0;
  for (const t of tensors) {
    const n = tensorBytes(t);
    totalSize += n;
    if (cur.length > 0 && curBytes + n > maxShard) {
      groups.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(t);
    curBytes += n;
  }
  if (cur.length > 0 || groups.length === 0) groups.push(cur);
  const metadata = { format: "pt", ...opts.metadata };
  if (groups.length === 1) {
    writeSafetensors(join(dir, "model.safetensors"), groups[0], metadata, opts);
    return { files: ["model.safetensors"], indexPath: null, totalSize };
  }
  const m = groups.length;
  const pad = (k: number) => String(k).padStart(5, "0");
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  groups.forEach((g, i) => {
    const file = `model-${pad(i + 1)}-of-${pad(m)}.safetensors`;
    writeSafetensors(join(dir, file), g, metadata, opts);
    files.push(file);
    for (const t of g) weightMap[t.name] = file;
  });
  const indexPath = join(dir, "model.safetensors.index.json");
  const sortedMap = Object.fromEntries(
    Object.keys(weightMap)
      .sort()
      .map((k) => [k, weightMap[k]]),
  );
  writeFileSync(
    indexPath,
    `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: sortedMap }, null, 2)}\n`,
  );
  return { files, indexPath, totalSize };
}
