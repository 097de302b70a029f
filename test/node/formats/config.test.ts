import { describe, expect, it } from "vitest";
import { parseConfig } from "../../../gpu-backend/model/config.js";

const base = {
  vocab_size: 100,
  hidden_size: 64,
  num_hidden_layers: 8,
  num_attention_heads: 4,
};

describe("parseConfig", () => {
  it("llama4 nested text_config: defaults, MoE step, NoPE layers, llama3 rope, eos list", () => {
    const c = parseConfig({
      model_type: "llama4",
      eos_token_id: 9, // top-level; the text config's list wins
      text_config: {
        ...base,
        model_type: "llama4_text",
        num_key_value_heads: 2,
        intermediate_size: 32,
        intermediate_size_mlp: 96,
        num_local_experts: 16,
        interleave_moe_layer_step: 2,
        eos_token_id: [1, 2, 3],
        attn_temperature_tuning: 4,
        rope_scaling: {
          rope_type: "llama3",
          factor: 8,
          low_freq_factor: 1,
          high_freq_factor: 4,
          original_max_position_embeddings: 64,
        },
      },
    });
    expect(c.family).toBe("llama4");
    expect(c.headDim).toBe(16); // hidden / heads fallback
    expect(c.moeLayers).toEqual([false, true, false, true, false, true, false, true]);
    expect(c.ropeLayers).toEqual([true, true, true, false, true, true, true, false]);
    expect([c.expertFfn, c.denseFfn, c.topK, c.numExperts]).toEqual([32, 96, 1, 16]);
    expect([c.routing, c.scoreOnInput, c.sharedExpert, c.normTopK, c.l2QkNorm]).toEqual([
      "sigmoid",
      true,
      true,
      false,
      true,
    ]);
    expect(c.rope.style).toBe("interleaved");
    expect(c.rope.theta).toBe(500000);
    expect(c.attentionChunk).toBe(8192);
    expect(c.attnTemperature).toEqual({ floorScale: 8192, attnScale: 0.1 });
    expect(c.eosTokenIds).toEqual([1, 2, 3]);
    // llama3 scaling, checked per band: wavelen = 2*pi/f against orig/high = 16 and orig/low = 64.
    for (let j = 0; j < 8; j++) {
      const f = 1 / 500000 ** ((2 * j) / 16);
      const wl = (2 * Math.PI) / f;
      const got = c.rope.invFreq[j];
      if (wl < 16) expect(got).toBeCloseTo(Math.fround(f), 12);
      else if (wl > 64) expect(got / (f / 8)).toBeCloseTo(1, 6);
      else {
        const s = (64 / wl - 1) / 3;
        expect(got / ((1 - s) * (f / 8) + s * f)).toBeCloseTo(1, 6);
      }
    }
  });

  it("llama4 explicit moe_layers / no_rope_layers, qk-norm off, chunk null", () => {
    const c = parseConfig({
      ...base,
      num_hidden_layers: 4,
      model_type: "llama4_text",
      moe_layers: [0, 3],
      no_rope_layers: [1, 0, 1, 1],
      use_qk_norm: false,
      attention_chunk_size: null,
      attn_temperature_tuning: false,
    });
    expect(c.moeLayers).toEqual([true, false, false, true]);
    expect(c.ropeLayers).toEqual([true, false, true, true]);
    expect([c.l2QkNorm, c.attentionChunk, c.attnTemperature]).toEqual([false, 0, null]);
  });

  it("mixtral: all MoE, renormalised softmax, neox rope, eos number, sliding window", () => {
    const c = parseConfig({
      ...base,
      model_type: "mixtral",
      intermediate_size: 128,
      sliding_window: 4096,
      eos_token_id: 2,
      bos_token_id: 1,
    });
    expect(c.moeLayers.every((m) => m)).toBe(true);
    expect([c.numExperts, c.topK, c.expertFfn, c.routing, c.normTopK]).toEqual([8, 2, 128, "softmax", true]);
    expect([c.rope.style, c.rope.theta, c.slidingWindow, c.rmsNormEps]).toEqual(["neox", 1e6, 4096, 1e-5]);
    expect([c.bosTokenId, c.eosTokenIds]).toEqual([1, [2]]);
    expect(c.rope.invFreq[1]).toBe(Math.fround(1 / 1e6 ** (2 / 16)));
  });

  it("qwen3_moe: explicit head_dim, mlp_only_layers + sparse step, rope_parameters theta, norm_topk_prob", () => {
    const c = parseConfig({
      ...base,
      model_type: "qwen3_moe",
      head_dim: 32,
      num_experts: 4,
      num_experts_per_tok: 2,
      moe_intermediate_size: 32,
      intermediate_size: 64,
      mlp_only_layers: [1],
      decoder_sparse_step: 2,
      rope_parameters: { rope_type: "default", rope_theta: 1234 },
      use_sliding_window: false,
      sliding_window: 100,
    });
    expect(c.headDim).toBe(32);
    expect(c.moeLayers).toEqual([false, false, false, true, false, true, false, true]);
    expect([c.headQkNorm, c.normTopK, c.rope.theta, c.slidingWindow, c.rmsNormEps]).toEqual([
      true,
      false,
      1234,
      0,
      1e-6,
    ]);
    expect(parseConfig({ ...base, model_type: "qwen3_moe", norm_topk_prob: true }).normTopK).toBe(true);
  });

  it("architectures[] works without model_type", () => {
    expect(parseConfig({ ...base, architectures: ["Qwen3MoeForCausalLM"] }).family).toBe("qwen3moe");
  });

  it("clear errors", () => {
    expect(() => parseConfig({ ...base, model_type: "llama" }, "x/config.json")).toThrow(
      /x\/config\.json: unsupported architecture/,
    );
    expect(() => parseConfig({ ...base, model_type: "mixtral", hidden_size: "64" })).toThrow(
      /hidden_size must be a non-negative integer/,
    );
    expect(() => parseConfig({ ...base, model_type: "mixtral", num_key_value_heads: 3 })).toThrow(
      /not a multiple/,
    );
    expect(() => parseConfig({ ...base, model_type: "mixtral", num_experts_per_tok: 9 })).toThrow(/exceeds/);
    expect(() => parseConfig({ ...base, model_type: "llama4_text", no_rope_layers: [1, 0] })).toThrow(
      /no_rope_layers has 2 entries/,
    );
    expect(() =>
      parseConfig({ ...base, model_type: "mixtral", rope_scaling: { rope_type: "yarn", factor: 4 } }),
    ).toThrow(/unsupported rope scaling type "yarn"/);
  });
});
