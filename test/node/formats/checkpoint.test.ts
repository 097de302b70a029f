import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Weight } from "../../../gpu-backend/device/device.js";
import { dequantize } from "../../../gpu-backend/device/f16.js";
import { writeSafetensors } from "../../../gpu-backend/formats/safetensors.js";
import { openCheckpoint } from "../../../gpu-backend/model/checkpoint.js";
import { familyOf, type Synthetic, synthesize, VARIANTS, writeHf } from "./fixtures.js";

const root = mkdtempSync(join(tmpdir(), "ckpt-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

function expectValues(w: Weight, rows: number, cols: number, values: Float32Array) {
  expect([w.rows, w.cols]).toEqual([rows, cols]);
  expect(Array.from(dequantize(w))).toEqual(Array.from(values));
}

function checkAll(path: string, syn: Synthetic) {
  const ck = openCheckpoint(path);
  try {
    for (const [name, m] of syn.dense) {
      expect(ck.has(name)).toBe(true);
      const w = ck.loadDense(name);
      if (m.rows === 1) expect(w.dtype).toBe("f32");
      expectValues(w, m.rows, m.cols, m.values);
    }
    ck.config.moeLayers.forEach((moe, l) => {
      if (!moe) return;
      for (let e = 0; e < ck.config.numExperts; e++) {
        const x = ck.loadExpert(l, e);
        for (const p of ["gate", "up", "down"] as const) {
          const m = syn.experts.get(`${l}.${e}.${p}`)!;
          expectValues(x[p], m.rows, m.cols, m.values);
        }
      }
    });
  } finally {
    ck.close();
  }
}

describe("HF checkpoint name mapping", () => {
  for (const v of VARIANTS) {
    it(`${v}: every canonical tensor and expert matches what was written`, () => {
      const syn = synthesize(familyOf(v));
      const dir = join(root, v);
      writeHf(dir, v, syn);
      checkAll(dir, syn);
    });
  }

  it("sharded folders (index.json) load the same tensors, and expertRanges+decodeExpert == loadExpert", () => {
    const syn = synthesize("mixtral");
    const dir = join(root, "sharded");
    writeHf(dir, "mixtral", syn, 20_000);
    expect(
      readdirSync(dir).filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length,
    ).toBeGreaterThan(2);
    checkAll(dir, syn);
    const ck = openCheckpoint(dir);
    const ranges = ck.expertRanges(1, 3);
    expect(ranges).toHaveLength(3);
    const bytes = ranges.map((r) => {
      const buf = readFileSync(r.file);
      return new Uint8Array(buf.subarray(r.offset, r.offset + r.length));
    });
    const a = ck.decodeExpert(1, 3, bytes);
    const b = ck.loadExpert(1, 3);
    expect(Buffer.from(a.down.data).equals(Buffer.from(b.down.data))).toBe(true);
    expect(() => ck.decodeExpert(1, 3, bytes.slice(1))).toThrow(/do not match expertRanges/);
    expect(() => ck.expertRanges(1, 4)).toThrow(/out of range/);
    ck.close();
  });

  it("llama4 config: dense layers get mlp.*, MoE layers router + shared expert", () => {
    const syn = synthesize("llama4");
    const dir = join(root, "l4cfg");
    writeHf(dir, "llama4-fused", syn);
    const ck = openCheckpoint(dir);
    expect(ck.config.moeLayers).toEqual([false, true, false, true]);
    expect(ck.has("l0.mlp.gate")).toBe(true);
    expect(ck.has("l1.shexp.down")).toBe(true);
    expect(ck.has("l1.mlp.gate")).toBe(false);
    expect(() => ck.expertRanges(0, 0)).toThrow(/no routed experts/);
    ck.close();
  });
});

describe("HF checkpoint errors", () => {
  const base = (name: string, v: (typeof VARIANTS)[number] = "qwen3moe") => {
    const syn = synthesize(familyOf(v));
    const dir = join(root, name);
    writeHf(dir, v, syn);
    return dir;
  };

  it("missing tensor names the tensor, and no fd stays open", () => {
    const dir = base("missing");
    const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    cfg.num_hidden_layers = 5; // layer 4 does not exist on disk
    writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
    const before = openFds();
    expect(() => openCheckpoint(dir)).toThrow(
      /model\.layers\.4\.input_layernorm\.weight.*missing|missing.*layers\.4/,
    );
    expect(openFds()).toBe(before);
  });

  it("shape disagreeing with config.json names file and tensor", () => {
    const dir = base("shape");
    const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    cfg.moe_intermediate_size = 64;
    writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
    const before = openFds();
    expect(() => openCheckpoint(dir)).toThrow(
      /model\.safetensors \[tensor model\.layers\.0\.mlp\.experts\.0\.gate_proj\.weight\].*disagrees with config\.json/,
    );
    expect(openFds()).toBe(before);
  });

  it("unsupported architecture and unsupported dtype", () => {
    const dir = base("arch");
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({ model_type: "gpt2", architectures: ["GPT2LMHeadModel"] }),
    );
    expect(() => openCheckpoint(dir)).toThrow(/unsupported architecture/);

    const d2 = join(root, "dtype");
    writeHf(d2, "mixtral", synthesize("mixtral"));
    const cfg = JSON.parse(readFileSync(join(d2, "config.json"), "utf8"));
    // Replace the weights by a file whose embedding is I32.
    writeSafetensors(join(d2, "model.safetensors"), [
      {
        name: "model.embed_tokens.weight",
        dtype: "I32",
        shape: [cfg.vocab_size, cfg.hidden_size],
        data: new Uint8Array(cfg.vocab_size * cfg.hidden_size * 4),
      },
    ]);
    expect(() => openCheckpoint(d2)).toThrow(/\[tensor model\.embed_tokens\.weight\]: unsupported dtype I32/);
  });

  it("a corrupt shard fails at open with the shard's name", () => {
    const dir = base("corrupt");
    const p = join(dir, "model.safetensors");
    const buf = readFileSync(p);
    writeFileSync(p, buf.subarray(0, buf.length - 10));
    const before = openFds();
    expect(() => openCheckpoint(dir)).toThrow(/model\.safetensors.*truncated/);
    expect(openFds()).toBe(before);
  });

  it("foreign quantization methods are refused", () => {
    const dir = base("fp8");
    const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    cfg.quantization_config = { quant_method: "fbgemm_fp8" };
    writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
    expect(() => openCheckpoint(dir)).toThrow(/unsupported quantization_config\.quant_method "fbgemm_fp8"/);
  });

  it("neither a folder nor a checkpoint file", () => {
    expect(() => openCheckpoint(join(root, "nope"))).toThrow(/cannot open checkpoint/);
    const f = join(root, "x.bin");
    writeFileSync(f, "hello");
    expect(() => openCheckpoint(f)).toThrow(/not a checkpoint/);
  });
});
