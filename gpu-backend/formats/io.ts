import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { FormatError } from "./errors.js";

/** Positioned read of exactly `length` bytes; throws if the file is shorter. */
export function preadExact(fd: number, offset: number, length: number, into?: Uint8Array): Uint8Array {
  const buf = into ?? new Uint8Array(length);
  let done = 0;
  while (done < length) {
    // readSync may return fewer bytes than asked (large reads are capped near 2 GiB).
    const n = readSync(fd, buf, done, Math.min(length - done, 1 << 30), offset + done);
    if (n === 0) throw new RangeError(`unexpected end of file at byte ${offset + done}`);
    done += n;
  }
  return buf;
}

/** Write all of `data`, looping over short writes. */
export function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.length) {
    done += writeSync(fd, data, done, Math.min(data.length - done, 1 << 30));
  }
}

/** Close a descriptor, ignoring errors (used on failure paths so the original error wins). */
export function closeQuietly(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    closeSync(fd);
  } catch {
    // already closed or invalid: nothing more to release
  }
}

/** Write one buffer or a sequence of chunks; returns the number of bytes written. */
export function writeChunks(fd: number, src: Uint8Array | Iterable<Uint8Array>): number {
  if (src instanceof Uint8Array) {
    writeAll(fd, src);
    return src.length;
  }
  let n = 0;
  for (const c of src) {
    writeAll(fd, c);
    n += c.length;
  }
  return n;
}

/**
 * Open `path` and parse its header with `read`. Any failure becomes a FormatError naming the
 * file, and the descriptor is closed, so nothing half-open is left behind.
 */
export function openWithHeader<H>(
  path: string,
  read: (fd: number, path: string) => H,
): { fd: number; header: H } {
  let fd: number | undefined;
  try {
    const opened = openSync(path, "r");
    fd = opened;
    return { fd: opened, header: read(opened, path) };
  } catch (e) {
    closeQuietly(fd);
    if (e instanceof FormatError) throw e;
    throw new FormatError(path, (e as Error).message);
  }
}
