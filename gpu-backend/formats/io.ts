import { closeSync, readSync, writeSync } from "node:fs";

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
