import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  GgmlType,
  GgufFile,
  type GgufValue,
  ggmlNbytes,
  gv,
  readGgufHeader,
  writeGguf,
} from "../../../gpu-backend/formats/gguf.js";

const root = mkdtempSync(join(tmpdir(), "gguf-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 255);

const META: [string, GgufValue][] = [
  ["general.architecture", gv.str("llama")],
  ["a.u8", { type: "u8", value: 250 }],
  ["a.i8", { type: "i8", value: -100 }],
  ["a.u16", { type: "u16", value: 65000 }],
  ["a.i16", { type: "i16", value: -30000 }],
  ["a.u32", gv.u32(4_000_000_000)],
  ["a.i32", gv.i32(-2_000_000_000)],
  ["a.f32", gv.f32(1.5)],
  ["a.f64", { type: "f64", value: Math.PI }],
  ["a.u64", { type: "u64", value: 2n ** 60n }],
  ["a.i64", { type: "i64", value: -(2n ** 40n) }],
  ["a.bool", gv.bool(true)],
  ["a.str", gv.str("héllo ✓")],
  ["a.strs", gv.strs(["x", "", "ÿ z"])],
  ["a.i32s", gv.i32s([1, -2, 3])],
  ["a.f32s", gv.f32s([0.5, -0.25])],
  ["a.bools", gv.bools([true, false])],
  ["a.u64s", { type: "array", itemType: "u64", value: [1n, 2n ** 50n] }],
  [
    "a.nested",
    {
      type: "array",
      itemType: "array",
      value: [gv.i32s([1, 2]), gv.strs(["a"])],
    },
  ],
];

const TENSORS = [
  { name: "f32", type: GgmlType.F32, dims: [3, 2] },
  { name: "f16", type: GgmlType.F16, dims: [5] },
  { name: "bf16", type: GgmlType.BF16, dims: [4, 1, 2] },
  { name: "q8", type: GgmlType.Q8_0, dims: [64, 3] },
  { name: "q4", type: GgmlType.Q4_0, dims: [32, 2, 2] },
];

describe("GGUF round trip", () => {
  it("metadata of every value type and tensors of every supported type", () => {
    const p = join(root, "rt.gguf");
    const data = TENSORS.map((t, i) => bytes(ggmlNbytes(t.type, t.dims), i));
    writeGguf(
      p,
      META,
      TENSORS.map((t, i) =>
        i % 2 ? { ...t, data: data[i] } : { ...t, fill: () => [data[i].subarray(0, 3), data[i].subarray(3)] },
      ),
    );
    const f = new GgufFile(p);
    expect(f.header.version).toBe(3);
    for (const [k, v] of META) expect([k, f.header.metadata.get(k)]).toEqual([k, v]);
    expect(f.meta("a.u64")).toBe(2n ** 60n); // beyond 2^53: stays a bigint
    expect(f.meta("a.u64s")).toEqual([1, 2 ** 50]);
    expect(f.header.tensorOrder).toEqual(TENSORS.map((t) => t.name));
    TENSORS.forEach((t, i) => {
      const info = f.info(t.name);
      expect(info.dims).toEqual(t.dims);
      expect(info.type).toBe(t.type);
      expect((info.offset - f.header.dataStart) % 32).toBe(0);
      expect(Array.from(f.read(t.name))).toEqual(Array.from(data[i]));
    });
    expect(ggmlNbytes(GgmlType.Q8_0, [64, 3])).toBe(2 * 3 * 34);
    expect(ggmlNbytes(GgmlType.Q4_0, [32, 2, 2])).toBe(4 * 18);
    f.close();
  });

  it("custom alignment is written as general.alignment and honoured", () => {
    const p = join(root, "al.gguf");
    writeGguf(
      p,
      META.slice(0, 1),
      [
        { name: "t", type: GgmlType.F32, dims: [3], data: bytes(12, 0) },
        { name: "u", type: GgmlType.F32, dims: [1], data: bytes(4, 1) },
      ],
      64,
    );
    const h = readGgufHeader(p);
    expect(h.alignment).toBe(64);
    expect(h.dataStart % 64).toBe(0);
    expect(h.tensors.get("u")!.offset - h.dataStart).toBe(64);
  });
});

describe("GGUF validation", () => {
  const good = () => {
    const p = join(root, "good.gguf");
    writeGguf(p, META.slice(0, 3), [{ name: "w", type: GgmlType.Q8_0, dims: [32, 4], data: bytes(136, 0) }]);
    return readFileSync(p);
  };
  const put = (name: string, b: Uint8Array) => {
    const p = join(root, name);
    writeFileSync(p, b);
    return p;
  };

  it("bad magic and version", () => {
    const b = good();
    b[0] = 0x58;
    expect(() => readGgufHeader(put("magic.gguf", b))).toThrow(/magic\.gguf: not a GGUF file/);
    const c = good();
    c.writeUInt32LE(7, 4);
    expect(() => readGgufHeader(put("ver.gguf", c))).toThrow(/unsupported GGUF version 7/);
  });
  it("truncated header and truncated data name file and tensor", () => {
    const b = good();
    expect(() => readGgufHeader(put("th.gguf", b.subarray(0, 40)))).toThrow(/th\.gguf: truncated header/);
    expect(() => readGgufHeader(put("td.gguf", b.subarray(0, b.length - 30)))).toThrow(
      /td\.gguf \[tensor w\]: .*truncated/,
    );
  });
  it("unknown tensor type, unaligned offset, bad block size", () => {
    const b = good();
    const at = b.indexOf(Buffer.from("w")); // tensor info: name, n_dims, dims, type, offset
    const typeAt = at + 1 + 4 + 16;
    const c = Buffer.from(b);
    c.writeUInt32LE(99, typeAt);
    expect(() => readGgufHeader(put("type.gguf", c))).toThrow(/\[tensor w\]: unknown ggml type 99/);
    const d = Buffer.from(b);
    d.writeBigUInt64LE(8n, typeAt + 4);
    expect(() => readGgufHeader(put("align.gguf", d))).toThrow(/\[tensor w\]: offset 8 not aligned/);
    expect(() =>
      writeGguf(
        join(root, "blk.gguf"),
        [],
        [{ name: "x", type: GgmlType.Q4_0, dims: [20], data: new Uint8Array(0) }],
      ),
    ).toThrow(/\[tensor x\]: ne\[0\]=20 is not a multiple/);
  });
  it("bogus counts and unknown value types", () => {
    const b = good();
    const c = Buffer.from(b);
    c.writeBigUInt64LE(2n ** 62n, 16); // metadata count
    expect(() => readGgufHeader(put("count.gguf", c))).toThrow(/implausibly large/);
    const d = Buffer.from(b);
    const keyAt = d.indexOf(Buffer.from("general.architecture"));
    d.writeUInt32LE(77, keyAt + "general.architecture".length);
    expect(() => readGgufHeader(put("vt.gguf", d))).toThrow(/unknown metadata value type 77/);
  });
});
