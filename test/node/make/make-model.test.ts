import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { bf16ArrayToF32, f16ArrayToF32, u16View } from "../../../gpu-backend/device/f16.js";
import { readSafetensorsHeader, SafetensorsFile } from "../../../gpu-backend/formats/safetensors.js";
import { HfCheckpoint } from "../../../gpu-backend/model/checkpoint-hf.js";
import { presetConfig, presetNames } from "../../../gpu-backend/model/presets.js";
import type { Family } from "../../../gpu-backend/model/types.js";
import { loadTokenizer } from "../../../gpu-backend/tokenizer/load.js";
import { type MakeModelOptions, makeModel } from "../../../gpu-backend/tools/make-model.js";
import { main as cliMain } from "../../../gpu-backend/tools/model-cli.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function make(opts: Omit<MakeModelOptions, "out">): string {
  const out = mkdtempSync(join(tmpdir(), "make-"));
  dirs.push(out);
  makeModel({ ...opts, out });
  return out;
}

type Json = Record<string, unknown>;
const readJson = (p: string): Json => JSON.parse(readFileSync(p, "utf8")) as Json;

function shapes(dir: string): Map<string, { dtype: string; shape: number[] }> {
  const h = readSafetensorsHeader(join(dir, "model.safetensors"));
  return new Map([...h.tensors].map(([k, v]) => [k, { dtype: v.dtype, shape: v.shape }]));
}

function tensorF32(dir: string, name: string, file = "model.safetensors"): Float32Array {
  const f = new SafetensorsFile(join(dir, file));
  try {
    const info = f.info(name);
    const bytes = f.read(name);
    if (info.dtype === "BF16") return bf16ArrayToF32(u16View(bytes));
    if (info.dtype === "F16") return f16ArrayToF32(u16View(bytes));
    return new Float32Array(bytes.slice().buffer);
  } finally {
    f.close();
  }
}

/** Expected on-disk tensors, written out independently of make-model's planner. */
function expectedTensors(family: Family, c: Json): Map<string, number[]> {
  const H = c.hidden_size as number;
  const L = c.num_hidden_layers as number;
  const nH = c.num_attention_heads as number;
  const nKv = c.num_key_value_heads as number;
  const hd = (c.head_dim as number | undefined) ?? H / nH;
  const V = c.vocab_size as number;
  const m = new Map<string, number[]>();
  m.set("model.embed_tokens.weight", [V, H]);
  m.set("model.norm.weight", [H]);
  m.set("lm_head.weight", [V, H]);
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    m.set(`${p}input_layernorm.weight`, [H]);
    m.set(`${p}post_attention_layernorm.weight`, [H]);
    m.set(`${p}self_attn.q_proj.weight`, [nH * hd, H]);
    m.set(`${p}self_attn.k_proj.weight`, [nKv * hd, H]);
    m.set(`${p}self_attn.v_proj.weight`, [nKv * hd, H]);
    m.set(`${p}self_attn.o_proj.weight`, [H, nH * hd]);
    if (family === "llama4") {
      const E = c.num_local_experts as number;
      const I = c.intermediate_size as number;
      const step = c.interleave_moe_layer_step as number;
      if ((l + 1) % step === 0) {
        m.set(`${p}feed_forward.router.weight`, [E, H]);
        m.set(`${p}feed_forward.experts.gate_up_proj`, [E, H, 2 * I]);
        m.set(`${p}feed_forward.experts.down_proj`, [E, I, H]);
        for (const x of ["gate", "up"]) m.set(`${p}feed_forward.shared_expert.${x}_proj.weight`, [I, H]);
        m.set(`${p}feed_forward.shared_expert.down_proj.weight`, [H, I]);
      } else {
        const D = c.intermediate_size_mlp as number;
        for (const x of ["gate", "up"]) m.set(`${p}feed_forward.${x}_proj.weight`, [D, H]);
        m.set(`${p}feed_forward.down_proj.weight`, [H, D]);
      }
    } else if (family === "mixtral") {
      const E = c.num_local_experts as number;
      const I = c.intermediate_size as number;
      m.set(`${p}block_sparse_moe.gate.weight`, [E, H]);
      for (let e = 0; e < E; e++) {
        m.set(`${p}block_sparse_moe.experts.${e}.w1.weight`, [I, H]);
        m.set(`${p}block_sparse_moe.experts.${e}.w3.weight`, [I, H]);
        m.set(`${p}block_sparse_moe.experts.${e}.w2.weight`, [H, I]);
      }
    } else {
      m.set(`${p}self_attn.q_norm.weight`, [hd]);
      m.set(`${p}self_attn.k_norm.weight`, [hd]);
      const dense = (c.mlp_only_layers as number[]).includes(l);
      if (dense) {
        const D = c.intermediate_size as number;
        for (const x of ["gate", "up"]) m.set(`${p}mlp.${x}_proj.weight`, [D, H]);
        m.set(`${p}mlp.down_proj.weight`, [H, D]);
      } else {
        const E = c.num_experts as number;
        const I = c.moe_intermediate_size as number;
        m.set(`${p}mlp.gate.weight`, [E, H]);
        for (let e = 0; e < E; e++) {
          for (const x of ["gate", "up"]) m.set(`${p}mlp.experts.${e}.${x}_proj.weight`, [I, H]);
          m.set(`${p}mlp.experts.${e}.down_proj.weight`, [H, I]);
        }
      }
    }
  }
  return m;
}

const ARCH = {
  llama4: ["Llama4ForCausalLM", "llama4_text"],
  mixtral: ["MixtralForCausalLM", "mixtral"],
  qwen3moe: ["Qwen3MoeForCausalLM", "qwen3_moe"],
} as const;

describe.each(["llama4", "mixtral", "qwen3moe"] as const)("make %s tiny", (family) => {
  const dir = make({ family, preset: "tiny", seed: 7 });

  it("writes every file of a Hugging Face checkpoint folder", () => {
    for (const f of [
      "config.json",
      "generation_config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
      "special_tokens_map.json",
    ]) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
    expect(existsSync(join(dir, "model.safetensors.index.json"))).toBe(false);
  });

  it("config.json has the real architecture, model_type and token ids inside the vocabulary", () => {
    const c = readJson(join(dir, "config.json"));
    expect(c.architectures).toEqual([ARCH[family][0]]);
    expect(c.model_type).toBe(ARCH[family][1]);
    expect(c.torch_dtype).toBe("bfloat16");
    expect(c.vocab_size).toBe(512);
    const ids = [c.bos_token_id, c.eos_token_id, c.pad_token_id].flat().filter((x) => x !== undefined);
    for (const id of ids) expect(id as number).toBeLessThan(512);
    if (family === "llama4") {
      expect(c.no_rope_layers).toEqual([1, 1, 1, 0]);
      expect(c.attention_chunk_size).toBe(16);
    }
    if (family === "qwen3moe") expect(c.mlp_only_layers).toEqual([0]);
  });

  it("config.json keeps float fields' decimal point, as transformers' strict configs require", () => {
    const text = readFileSync(join(dir, "config.json"), "utf8");
    expect(text).toMatch(/"rope_theta": \d+\.0,/);
    expect(text).toContain('"attention_dropout": 0.0,');
    if (family !== "qwen3moe") expect(text).toContain('"router_jitter_noise": 0.0,');
  });

  it("tensor names, shapes and dtype match the family's released layout", () => {
    const c = readJson(join(dir, "config.json"));
    const got = shapes(dir);
    const want = expectedTensors(family, c);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, shape] of want) expect(got.get(name)?.shape, name).toEqual(shape);
    expect(new Set([...got.values()].map((t) => t.dtype))).toEqual(new Set(["BF16"]));
  });

  it("opens with the checkpoint loader (shapes checked against config.json)", () => {
    const ck = new HfCheckpoint(dir);
    try {
      const moe = ck.config.moeLayers.findIndex((m) => m);
      const ex = ck.loadExpert(moe, ck.config.numExperts - 1);
      expect([ex.gate.rows, ex.gate.cols]).toEqual([ck.config.expertFfn, ck.config.hiddenSize]);
      expect(ck.loadDense("embed").rows).toBe(512);
    } finally {
      ck.close();
    }
  });

  it("tokenizer loads from the folder and round-trips; its stop ids are config's", async () => {
    const t = await loadTokenizer(dir);
    const s = "Mixture of experts 🚀 — ok?";
    expect(t.decode(t.encode(s, false))).toBe(s);
    expect(t.vocabSize).toBe(512);
    const c = readJson(join(dir, "config.json"));
    const eos = [c.eos_token_id].flat() as number[];
    for (const id of eos) expect(t.eosTokenIds).toContain(id);
  });
});

describe("determinism", () => {
  it("same seed gives identical bytes, a different seed different weights (same tokenizer)", () => {
    const a = make({ family: "qwen3moe", preset: "tiny", seed: 1 });
    const b = make({ family: "qwen3moe", preset: "tiny", seed: 1 });
    const c = make({ family: "qwen3moe", preset: "tiny", seed: 2 });
    for (const f of ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"]) {
      expect(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), f).toBe(true);
    }
    expect(
      readFileSync(join(a, "model.safetensors")).equals(readFileSync(join(c, "model.safetensors"))),
    ).toBe(false);
    expect(readFileSync(join(a, "tokenizer.json")).equals(readFileSync(join(c, "tokenizer.json")))).toBe(
      true,
    );
    const wa = tensorF32(a, "model.layers.1.mlp.experts.0.up_proj.weight");
    const wc = tensorF32(c, "model.layers.1.mlp.experts.0.up_proj.weight");
    let same = 0;
    for (let i = 0; i < wa.length; i++) if (wa[i] === wc[i]) same++;
    expect(same / wa.length).toBeLessThan(0.05);
  });
});

describe("options", () => {
  it("--config overrides deep-merge over the preset and derived lists follow", () => {
    const dir = make({
      family: "llama4",
      preset: "tiny",
      overrides: {
        num_hidden_layers: 2,
        rope_scaling: { factor: 16 },
        interleave_moe_layer_step: 2,
        vocab_size: 600,
      },
    });
    const c = readJson(join(dir, "config.json"));
    expect(c.num_hidden_layers).toBe(2);
    expect(c.rope_scaling).toEqual({ ...(presetConfig("llama4", "tiny").rope_scaling as Json), factor: 16 });
    expect(c.no_rope_layers).toEqual([1, 1]);
    expect(c.vocab_size).toBe(600);
    const got = shapes(dir);
    expect(got.get("model.embed_tokens.weight")?.shape).toEqual([600, 64]);
    expect(got.has("model.layers.0.feed_forward.gate_proj.weight")).toBe(true);
    expect(got.has("model.layers.1.feed_forward.experts.gate_up_proj")).toBe(true);
    expect([...got.keys()].sort()).toEqual([...expectedTensors("llama4", c).keys()].sort());
  });

  it("tiny-maverick interleaves dense and MoE layers", () => {
    const dir = make({ family: "llama4", preset: "tiny-maverick" });
    const c = readJson(join(dir, "config.json"));
    expect(c.interleave_moe_layer_step).toBe(2);
    expect(c.use_qk_norm).toBe(false);
    expect([...shapes(dir).keys()].sort()).toEqual([...expectedTensors("llama4", c).keys()].sort());
  });

  it("writes f16 / f32 and shards with an index when over the shard limit", () => {
    const f32 = make({ family: "mixtral", preset: "tiny", dtype: "f32" });
    expect(readJson(join(f32, "config.json")).torch_dtype).toBe("float32");
    expect(new Set([...shapes(f32).values()].map((t) => t.dtype))).toEqual(new Set(["F32"]));
    const sharded = make({ family: "mixtral", preset: "tiny", dtype: "f16", maxShardBytes: 400_000 });
    const index = readJson(join(sharded, "model.safetensors.index.json")) as {
      metadata: { total_size: number };
      weight_map: Record<string, string>;
    };
    const files = new Set(Object.values(index.weight_map));
    expect(files.size).toBeGreaterThan(1);
    let total = 0;
    const names: string[] = [];
    for (const f of files) {
      const h = readSafetensorsHeader(join(sharded, f));
      for (const [n, t] of h.tensors) {
        expect(index.weight_map[n]).toBe(f);
        expect(t.dtype).toBe("F16");
        total += t.nbytes;
        names.push(n);
      }
    }
    expect(total).toBe(index.metadata.total_size);
    const c = readJson(join(sharded, "config.json"));
    expect(names.sort()).toEqual([...expectedTensors("mixtral", c).keys()].sort());
    // Values agree across dtypes (same seed): f16 and f32 differ only by rounding.
    const name = "model.layers.0.block_sparse_moe.experts.3.w2.weight";
    const a = tensorF32(f32, name);
    const b = tensorF32(sharded, name, index.weight_map[name]);
    for (let i = 0; i < a.length; i += 97)
      expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(Math.abs(a[i]) * 1e-3 + 1e-7);
  });

  it("rejects bad options clearly", () => {
    expect(() => make({ family: "mixtral", preset: "maverick" })).toThrow(/does not exist for mixtral/);
    expect(() => make({ family: "mixtral", preset: "tiny", seed: -1 })).toThrow(/seed/);
    expect(() => make({ family: "mixtral", preset: "tiny", routerSkew: -2 })).toThrow(/skew/);
    expect(presetNames("llama4")).toContain("maverick");
  });
});

describe("weights are shaped like a trained model's", () => {
  const dir = make({ family: "llama4", preset: "tiny", overrides: { vocab_size: 1024 }, seed: 3 });
  const c = readJson(join(dir, "config.json"));
  const H = c.hidden_size as number;
  const V = c.vocab_size as number;

  it("norms sit near 1, projections are small and 1/sqrt(fan_in)-scaled", () => {
    const n = tensorF32(dir, "model.layers.0.input_layernorm.weight");
    const mean = n.reduce((a, b) => a + b, 0) / n.length;
    expect(Math.abs(mean - 1)).toBeLessThan(0.01);
    expect(n.every((x) => Math.abs(x - 1) < 0.15)).toBe(true);
    const q = tensorF32(dir, "model.layers.0.self_attn.q_proj.weight");
    const std = Math.sqrt(q.reduce((a, b) => a + b * b, 0) / q.length);
    expect(std).toBeGreaterThan(0.9 / Math.sqrt(H));
    expect(std).toBeLessThan(1.1 / Math.sqrt(H));
  });

  it("distinct tokens have distinct embeddings and next-token logits are not dominated by one token", () => {
    const emb = tensorF32(dir, "model.embed_tokens.weight");
    const head = tensorF32(dir, "lm_head.weight");
    const argmaxes = new Set<number>();
    for (let t = 0; t < 64; t++) {
      const x = emb.subarray(t * H, (t + 1) * H);
      const rms = Math.sqrt(x.reduce((a, b) => a + b * b, 0) / H);
      const logits = new Float64Array(V);
      for (let v = 0; v < V; v++) {
        let s = 0;
        for (let i = 0; i < H; i++) s += head[v * H + i] * (x[i] / rms);
        logits[v] = s;
      }
      const max = Math.max(...logits);
      let z = 0;
      for (const l of logits) z += Math.exp(l - max);
      expect(1 / z).toBeLessThan(0.2); // top probability
      argmaxes.add(logits.indexOf(max));
      // Embedding rows differ from the next token's by a lot (cosine well below 1).
      const y = emb.subarray((t + 1) * H, (t + 2) * H);
      let dot = 0;
      let ny = 0;
      for (let i = 0; i < H; i++) {
        dot += x[i] * y[i];
        ny += y[i] * y[i];
      }
      expect(dot / Math.sqrt(ny) / (rms * Math.sqrt(H))).toBeLessThan(0.8);
    }
    expect(argmaxes.size).toBeGreaterThan(40);
  });
});

/**
 * Router skew, checked on the hidden states the skew model assumes: a token's embedding plus the
 * branch noise the layers add, RMS-normalized. Top-1 popularity must fall with the expert index
 * (Zipf-like) with skew, and be near uniform without.
 */
function routerPopularity(dir: string, layer: number, layers: number): number[] {
  const c = readJson(join(dir, "config.json"));
  const H = c.hidden_size as number;
  const E = c.num_local_experts as number;
  const emb = tensorF32(dir, "model.embed_tokens.weight");
  const router = tensorF32(dir, `model.layers.${layer}.block_sparse_moe.gate.weight`);
  const V = emb.length / H;
  let seed = 12345;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const branchStd = Math.sqrt((1.3 * layer + 1) / (2 * layers));
  const counts = new Array(E).fill(0);
  for (let s = 0; s < 4000; s++) {
    const t = Math.floor(rand() * V);
    const x = new Float64Array(H);
    let ss = 0;
    for (let i = 0; i < H; i++) {
      x[i] = emb[t * H + i] + branchStd * gauss();
      ss += x[i] * x[i];
    }
    const inv = 1 / Math.sqrt(ss / H);
    let best = 0;
    let bestL = -Infinity;
    for (let e = 0; e < E; e++) {
      let l = 0;
      for (let i = 0; i < H; i++) l += router[e * H + i] * x[i] * inv;
      if (l > bestL) {
        bestL = l;
        best = e;
      }
    }
    counts[best]++;
  }
  return counts.map((n) => n / 4000);
}

describe("router skew", () => {
  it("makes expert popularity Zipf-like; zero skew leaves it near uniform", () => {
    const overrides = { num_local_experts: 8, num_experts_per_tok: 1, vocab_size: 2048, hidden_size: 128 };
    const skewed = make({ family: "mixtral", preset: "tiny", routerSkew: 1.2, overrides });
    const flat = make({ family: "mixtral", preset: "tiny", routerSkew: 0, overrides });
    for (const layer of [0, 3]) {
      const p = routerPopularity(skewed, layer, 4);
      const target = p.map((_, e) => (e + 1) ** -1.2);
      const z = target.reduce((a, b) => a + b, 0);
      // Hot expert first, coldest last, and each within a loose band of the Zipf target.
      expect(p.indexOf(Math.max(...p))).toBe(0);
      expect(p[0]).toBeGreaterThan(4 * p[7]);
      p.forEach((x, e) => {
        expect(x).toBeGreaterThan((target[e] / z) * 0.4);
        expect(x).toBeLessThan((target[e] / z) * 2.5);
      });
      const q = routerPopularity(flat, layer, 4);
      expect(Math.max(...q)).toBeLessThan(0.25);
      expect(Math.min(...q)).toBeGreaterThan(0.05);
    }
  });
});

describe("model CLI", () => {
  /** In-process run of the CLI's main(), capturing what it prints. */
  function run(args: string[]): { status: number; stdout: string; stderr: string } {
    const out: string[] = [];
    const err: string[] = [];
    const log = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
    const warn = vi
      .spyOn(console, "error")
      .mockImplementation((...a: unknown[]) => void err.push(a.join(" ")));
    try {
      return { status: cliMain(args), stdout: out.join("\n"), stderr: err.join("\n") };
    } finally {
      log.mockRestore();
      warn.mockRestore();
    }
  }

  it("prints help for every command and exits 2 on bad arguments", () => {
    const main = run(["--help"]);
    expect(main.status).toBe(0);
    expect(main.stdout).toMatch(/make.*quantize.*export-gguf/s);
    for (const cmd of ["make", "quantize", "export-gguf"]) {
      const r = run([cmd, "--help"]);
      expect(r.status, cmd).toBe(0);
      expect(r.stdout).toContain(`npm run model -- ${cmd}`);
    }
    const bad = run(["make", "--family", "gpt", "--preset", "tiny", "--out", "/tmp/x"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--family must be/);
    expect(run(["make", "--family", "llama4", "--preset", "tiny", "--out", "/tmp/x", "--bogus"]).status).toBe(
      2,
    );
    expect(run(["frobnicate"]).status).toBe(2);
  });

  it("make writes a model end to end when run as a script", () => {
    const out = mkdtempSync(join(tmpdir(), "make-cli-"));
    dirs.push(out);
    const r = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "gpu-backend/tools/model-cli.ts",
        "make",
        "--family",
        "qwen3moe",
        "--preset",
        "tiny",
      ].concat(["--out", out, "--config", '{"num_hidden_layers":2}', "--router-skew", "1"]),
      { encoding: "utf8", cwd: join(import.meta.dirname, "../../..") },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote .*qwen3moe\/tiny/);
    expect(readJson(join(out, "config.json")).num_hidden_layers).toBe(2);
  });
});
