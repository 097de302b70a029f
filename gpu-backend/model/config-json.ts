/**
 * config.json text as Hugging Face writes it: fields that transformers types as float keep a
 * decimal point even when integral (`"router_jitter_noise": 0.0`, `"rope_theta": 500000.0`).
 * JSON.stringify writes `0`, which transformers 5's strict config classes refuse ("expected float,
 * got int").
 */
const FLOAT_KEYS = new Set([
  "attention_dropout",
  "attn_scale",
  "factor",
  "high_freq_factor",
  "initializer_range",
  "low_freq_factor",
  "rms_norm_eps",
  "rope_theta",
  "router_aux_loss_coef",
  "router_jitter_noise",
]);
const MARK = "\u0000float:";

export function stringifyConfig(config: unknown): string {
  const text = JSON.stringify(
    config,
    (key, value) => (FLOAT_KEYS.has(key) && Number.isInteger(value) ? `${MARK}${value}` : value),
    2,
  );
  return `${text.replace(/"\\u0000float:(-?\d+)"/g, "$1.0")}\n`;
}
