/**
 * Canonical tensor names <-> llama.cpp GGUF tensor names (gguf-py constants.py / tensor_mapping.py)
 * and the architecture names per family. Shared by the GGUF loader and the exporter.
 */
import type { Family } from "./types.js";

export const GGUF_ARCH: Record<Family, string> = { llama4: "llama4", mixtral: "llama", qwen3moe: "qwen3moe" };

export function ggufDenseName(canonical: string): string {
  if (canonical === "embed") return "token_embd.weight";
  if (canonical === "norm") return "output_norm.weight";
  if (canonical === "lm_head") return "output.weight";
  const m = /^l(\d+)\.(.+)$/.exec(canonical);
  if (!m) throw new Error(`unknown canonical tensor ${canonical}`);
  const map: Record<string, string> = {
    attn_norm: "attn_norm",
    ffn_norm: "ffn_norm",
    q: "attn_q",
    k: "attn_k",
    v: "attn_v",
    o: "attn_output",
    q_norm: "attn_q_norm",
    k_norm: "attn_k_norm",
    router: "ffn_gate_inp",
    "shexp.gate": "ffn_gate_shexp",
    "shexp.up": "ffn_up_shexp",
    "shexp.down": "ffn_down_shexp",
    "mlp.gate": "ffn_gate",
    "mlp.up": "ffn_up",
    "mlp.down": "ffn_down",
  };
  const g = map[m[2]];
  if (!g) throw new Error(`unknown canonical tensor ${canonical}`);
  return `blk.${m[1]}.${g}.weight`;
}

/** Stacked expert tensor of a layer: dims [in, out, E] (ne[0] first). */
export function ggufExpertName(layer: number, part: "gate" | "up" | "down"): string {
  return `blk.${layer}.ffn_${part}_exps.weight`;
}

/** Llama 3-style rope factors (divisors of the base inverse frequencies), llama4 / llama arch. */
export const GGUF_ROPE_FREQS = "rope_freqs.weight";
