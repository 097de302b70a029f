import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  readSafetensorsHeader,
  SafetensorsFile,
  type TensorToWrite,
  writeSafetensors,
  writeShardedSafetensors,
} from "../../../gpu-backend/formats/safetensors.js";

const root = mkdtempSync(join(tmpdir(), "st-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

/** Hand-build a file: u64 header length + JSON + data. */
function rawFile(name: string, header: unknown, data: Uint8Array, lenOverride?: bigint): string {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  const p = join(root, name);
  writeFileSync(p, out);
  return p;
}

describe("safetensors round trip", () => {
  it("writes every dtype, reads them back, and follows the reference layout", () => {
    const tensors: TensorToWrite[] = [
      { name: "a.u8", dtype: "U8", shape: [3, 5], data: bytes(15, 1) },
      { name: "b.f32", dtype: "F32", shape: [2, 3], data: bytes(24, 2) },
      { name: "c.bf16", dtype: "BF16", shape: [7], data: bytes(14, 3) },
      { name: "d.i8", dtype: "I8", shape: [4, 4], fill: () => bytes(16, 4) },
      { name: "e.f16", dtype: "F16", shape: [1, 9], fill: () => [bytes(10, 5), bytes(8, 6)] },
      { name: "z.scalar", dtype: "F32", shape: [], data: bytes(4, 7) },
    ];
    const p = join(root, "rt.safetensors");
    writeSafetensors(p, tensors, { format: "pt", note: "x" });
    const h = readSafetensorsHeader(p);
    expect(h.metadata).toEqual({ format: "pt", note: "x" });
    expect(h.dataStart % 8).toBe(0);
    // Reference order: descending dtype alignment, then name.
    const order = [...h.tensors.values()].sort((x, y) => x.offset - y.offset).map((t) => t.name);
    expect(order).toEqual(["b.f32", "z.scalar", "c.bf16", "e.f16", "d.i8", "a.u8"]);
    const f = new SafetensorsFile(p);
    expect(Array.from(f.read("a.u8"))).toEqual(Array.from(bytes(15, 1)));
    expect(Array.from(f.read("d.i8"))).toEqual(Array.from(bytes(16, 4)));
    expect(Array.from(f.read("e.f16"))).toEqual([...bytes(10, 5), ...bytes(8, 6)]);
    expect(f.info("c.bf16")).toMatchObject({ dtype: "BF16", shape: [7], nbytes: 14 });
    expect(f.info("z.scalar").shape).toEqual([]);
    expect(() => f.read("nope")).toThrow(/\[tensor nope\]: tensor not found/);
    f.close();
    // The header JSON is padded with spaces, as the reference writer does.
    const raw = readFileSync(p);
    const n = Number(raw.readBigUInt64LE(0));
    expect(
      raw
        .subarray(8, 8 + n)
        .toString()
        .trimEnd(),
    ).toMatch(/^\{"__metadata__":/);
  });

  it("sharded writer splits above the limit and writes a sorted index", () => {
    const tensors: TensorToWrite[] = Array.from({ length: 6 }, (_, i) => ({
      name: `t${i}`,
      dtype: "F32" as const,
      shape: [100],
      data: bytes(400, i),
    }));
    const dir = join(root, "sharded");
    const r = writeShardedSafetensors(dir, tensors, { maxShardBytes: 1000 });
    expect(r.files).toEqual([
      "model-00001-of-00003.safetensors",
      "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors",
    ]);
    const idx = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8"));
    expect(idx.metadata.total_size).toBe(2400);
    expect(idx.weight_map.t5).toBe("model-00003-of-00003.safetensors");
    const f = new SafetensorsFile(join(dir, idx.weight_map.t3));
    expect(Array.from(f.read("t3"))).toEqual(Array.from(bytes(400, 3)));
    f.close();
    const single = writeShardedSafetensors(join(root, "single"), tensors.slice(0, 2));
    expect(single).toMatchObject({ files: ["model.safetensors"], indexPath: null });
  });

  it("a fill that produces the wrong size aborts and leaves no file", () => {
    const p = join(root, "bad.safetensors");
    expect(() =>
      writeSafetensors(p, [{ name: "x", dtype: "F16", shape: [4], fill: () => new Uint8Array(7) }]),
    ).toThrow(/\[tensor x\]: got 7 bytes, expected 8/);
    expect(() => readFileSync(p)).toThrow();
    expect(() =>
      writeSafetensors(p, [
        { name: "x", dtype: "F16", shape: [1], data: new Uint8Array(2) },
        { name: "x", dtype: "F16", shape: [1], data: new Uint8Array(2) },
      ]),
    ).toThrow(/duplicate/);
  });
});

describe("safetensors validation", () => {
  const good = {
    x: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    y: { dtype: "U8", shape: [3], data_offsets: [8, 11] },
  };

  it("accepts a well-formed hand-built file", () => {
    expect(readSafetensorsHeader(rawFile("ok.st", good, bytes(11, 0))).tensors.size).toBe(2);
  });
  it("truncated data", () => {
    expect(() => readSafetensorsHeader(rawFile("trunc.st", good, bytes(10, 0)))).toThrow(
      /trunc\.st: .*truncated/,
    );
  });
  it("trailing garbage", () => {
    expect(() => readSafetensorsHeader(rawFile("trail.st", good, bytes(12, 0)))).toThrow(/trailing garbage/);
  });
  it("header length beyond the file or the 100 MB limit", () => {
    expect(() => readSafetensorsHeader(rawFile("len.st", good, bytes(11, 0), 5000n))).toThrow(
      /runs past end of file/,
    );
    expect(() => readSafetensorsHeader(rawFile("huge.st", good, bytes(11, 0), 200_000_000n))).toThrow(
      /100000000-byte limit/,
    );
    const p = join(root, "tiny.st");
    writeFileSync(p, new Uint8Array(3));
    expect(() => readSafetensorsHeader(p)).toThrow(/at least 8/);
  });
  it("invalid JSON", () => {
    const p = join(root, "json.st");
    const b = Buffer.alloc(8 + 4);
    b.writeBigUInt64LE(4n, 0);
    b.write("{{{{", 8);
    writeFileSync(p, b);
    expect(() => readSafetensorsHeader(p)).toThrow(/json\.st: header is not valid UTF-8 JSON/);
  });
  it("bad dtype, size mismatch, gaps and overlaps name the tensor", () => {
    expect(() =>
      readSafetensorsHeader(
        rawFile("dt.st", { x: { dtype: "F99", shape: [2], data_offsets: [0, 8] } }, bytes(8, 0)),
      ),
    ).toThrow(/\[tensor x\]: unsupported dtype "F99"/);
    expect(() =>
      readSafetensorsHeader(
        rawFile("sz.st", { x: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, bytes(8, 0)),
      ),
    ).toThrow(/\[tensor x\]: byte size 8 != 12/);
    const gap = {
      x: { dtype: "U8", shape: [2], data_offsets: [0, 2] },
      y: { dtype: "U8", shape: [2], data_offsets: [3, 5] },
    };
    expect(() => readSafetensorsHeader(rawFile("gap.st", gap, bytes(5, 0)))).toThrow(
      /\[tensor y\]: .*not contiguous/,
    );
    const ov = {
      x: { dtype: "U8", shape: [2], data_offsets: [0, 2] },
      y: { dtype: "U8", shape: [2], data_offsets: [1, 3] },
    };
    expect(() => readSafetensorsHeader(rawFile("ov.st", ov, bytes(3, 0)))).toThrow(/not contiguous/);
    expect(() =>
      readSafetensorsHeader(
        rawFile("sh.st", { x: { dtype: "U8", shape: [-1], data_offsets: [0, 0] } }, new Uint8Array(0)),
      ),
    ).toThrow(/invalid shape/);
  });
  it("a missing file is a FormatError naming it", () => {
    expect(() => new SafetensorsFile(join(root, "missing.st"))).toThrow(/missing\.st: ENOENT/);
  });
});
