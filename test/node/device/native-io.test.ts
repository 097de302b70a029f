import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadNative } from "../../../gpu-backend/device/cpu/native.js";

const native = loadNative();

describe("readDirect", () => {
  let dir: string;
  let file: string;
  let content: Uint8Array;
  // Larger than the 8 MiB bounce buffer, and not a multiple of 4096.
  const SIZE = 9 * 1024 * 1024 + 1234;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "moe-readdirect-"));
    file = join(dir, "data.bin");
    content = new Uint8Array(SIZE);
    let s = 12345;
    for (let i = 0; i < SIZE; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      content[i] = s >>> 24;
    }
    writeFileSync(file, content);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reads aligned spans straight into aligned memory", async () => {
    const dest = native.allocAligned(8192);
    await expect(native.readDirect(file, 4096, 8192, dest, 0)).resolves.toBe(8192);
    expect(Buffer.from(dest).equals(Buffer.from(content.subarray(4096, 4096 + 8192)))).toBe(true);
  });

  it.each([
    [1234, 10_000, 3],
    [0, 100, 0],
    [4095, 2, 1],
    [5000, 8 * 1024 * 1024 + 777, 5], // spans two bounce-buffer rounds
    [SIZE - 300, 300, 7], // up to the very end of the file
  ])("reads unaligned offset %i length %i into dest offset %i", async (offset, length, destOffset) => {
    const dest = new Uint8Array(length + destOffset + 11);
    await expect(native.readDirect(file, offset, length, dest, destOffset)).resolves.toBe(length);
    expect(
      Buffer.from(dest.subarray(destOffset, destOffset + length)).equals(
        Buffer.from(content.subarray(offset, offset + length)),
      ),
    ).toBe(true);
    expect(dest.subarray(0, destOffset).every((b) => b === 0)).toBe(true);
    expect(dest.subarray(destOffset + length).every((b) => b === 0)).toBe(true);
  });

  it("runs many aligned reads at once, each into its own place", async () => {
    // Aligned direct reads go to the kernel together (native AIO where available).
    const piece = 64 * 1024;
    const count = 96;
    const dest = native.allocAligned(count * piece);
    const offsets = Array.from({ length: count }, (_, i) => ((i * 37) % 140) * 4096);
    const got = await Promise.all(
      offsets.map((off, i) => native.readDirect(file, off, piece, dest, i * piece)),
    );
    expect(got).toEqual(offsets.map(() => piece));
    offsets.forEach((off, i) => {
      expect(
        Buffer.from(dest.subarray(i * piece, (i + 1) * piece)).equals(
          Buffer.from(content.subarray(off, off + piece)),
        ),
      ).toBe(true);
    });
  });

  it("rejects short reads past the end of the file", async () => {
    const dest = new Uint8Array(1000);
    await expect(native.readDirect(file, SIZE - 500, 1000, dest, 0)).rejects.toThrow(/short read/);
    const aligned = native.allocAligned(8192);
    await expect(native.readDirect(file, 9 * 1024 * 1024, 8192, aligned, 0)).rejects.toThrow(/short read/);
  });

  it("rejects missing files and bad arguments", async () => {
    await expect(native.readDirect(join(dir, "nope.bin"), 0, 10, new Uint8Array(10), 0)).rejects.toThrow(
      /cannot open/,
    );
    await expect(native.readDirect(file, 0, 10, new Uint8Array(5), 0)).rejects.toThrow(/dest too small/);
    await expect(native.readDirect(file, -1, 10, new Uint8Array(10), 0)).rejects.toThrow(/non-negative/);
  });

  it("reads through the page cache when asked (direct = false), with the same checks", async () => {
    const dest = new Uint8Array(9000);
    await expect(native.readDirect(file, 777, 9000, dest, 0, false)).resolves.toBe(9000);
    expect(Buffer.from(dest).equals(Buffer.from(content.subarray(777, 9777)))).toBe(true);
    await expect(native.readDirect(file, SIZE - 100, 2000, new Uint8Array(2000), 0, false)).rejects.toThrow(
      /short read/,
    );
  });
});

describe("allocAligned", () => {
  it("returns zeroed memory of the requested size, small and large", () => {
    for (const bytes of [1, 100, 4096, 3 << 20]) {
      const a = native.allocAligned(bytes);
      expect(a.byteLength).toBe(bytes);
      expect(a.byteOffset).toBe(0);
      expect(a.every((b) => b === 0)).toBe(true);
      a.fill(7);
      expect(a[bytes - 1]).toBe(7);
    }
    expect(native.allocAligned(0).byteLength).toBe(0);
    expect(() => native.allocAligned(64, 48)).toThrow(/power of two/);
  });
});

describe("memReadBandwidth", () => {
  it("measures a positive bandwidth", () => {
    const gbs = native.memReadBandwidth(16 << 20, 1);
    expect(gbs).toBeGreaterThan(0.5);
    expect(gbs).toBeLessThan(10_000);
  });
});
