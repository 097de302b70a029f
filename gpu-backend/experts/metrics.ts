import type { StoreReport } from "./store.js";

/**
 * The expert store's report in Prometheus text exposition format (for the backend's /metrics):
 * totals, per-layer counters and a per-expert hit/miss heatmap, each line labelled with the
 * model. Counters only grow; gauges (resident set, budget) are current values.
 */
export function pagingPrometheus(report: StoreReport, model: string): string {
  const m = `model="${model.replace(/["\\\n]/g, "_")}"`;
  const out: string[] = [];
  const metric = (name: string, type: "counter" | "gauge", help: string, lines: string[]) => {
    out.push(`# HELP moe_expert_${name} ${help}`, `# TYPE moe_expert_${name} ${type}`, ...lines);
  };
  const t = report.totals;
  const total = (name: string, type: "counter" | "gauge", help: string, value: number) =>
    metric(name, type, help, [`moe_expert_${name}{${m}} ${value}`]);
  total("hits_total", "counter", "Routed-expert acquisitions served from memory.", t.hits);
  total("misses_total", "counter", "Routed-expert acquisitions that waited for a disk read.", t.misses);
  total("bytes_read_total", "counter", "Bytes read from the checkpoint for routed experts.", t.bytes_read);
  total("stall_seconds_total", "counter", "Time steps waited for expert reads.", t.stall_ms / 1000);
  total("evictions_total", "counter", "Experts evicted to make room.", t.evictions);
  total("prefetch_issued_total", "counter", "Expert reads started from a prefetch guess.", t.prefetch_issued);
  total("prefetch_used_total", "counter", "Prefetched experts a step then used.", t.prefetch_used);
  total(
    "prefetch_skipped_total",
    "counter",
    "Guesses not read: guesses that confident were usually wrong.",
    t.prefetch_skipped,
  );
  total(
    "read_errors_total",
    "counter",
    "Expert loads that failed (I/O error or truncated data).",
    t.read_errors,
  );
  total("resident", "gauge", "Routed experts resident now.", t.resident_experts);
  total("resident_bytes", "gauge", "Memory held for routed experts now.", t.resident_bytes);
  total("budget_bytes", "gauge", "Hard memory budget for routed experts.", report.budget_bytes);
  total("hit_rate", "gauge", "hits / (hits + misses) since start.", t.hit_rate);
  total(
    "cache_hit_rate",
    "gauge",
    "Hits no read for that step supplied (prefetches that landed in time excluded) / acquisitions.",
    t.cache_hit_rate,
  );
  total("prefetch_precision", "gauge", "prefetch_used / prefetch_issued since start.", t.prefetch_precision);
  total(
    "prefetch_recall",
    "gauge",
    "Share of disk-bound experts that prefetch started early.",
    t.prefetch_recall,
  );
  const perLayer = (name: string, help: string, get: (l: StoreReport["layers"][number]) => number) =>
    metric(
      name,
      "counter",
      help,
      report.layers.map((l) => `moe_expert_${name}{${m},layer="${l.layer}"} ${get(l)}`),
    );
  perLayer("layer_hits_total", "Hits per MoE layer.", (l) => l.hits);
  perLayer("layer_misses_total", "Misses per MoE layer.", (l) => l.misses);
  perLayer("layer_bytes_read_total", "Bytes read per MoE layer.", (l) => l.bytes_read);
  perLayer("layer_stall_seconds_total", "Stall per MoE layer.", (l) => l.stall_ms / 1000);
  metric(
    "layer_resident",
    "gauge",
    "Resident experts per MoE layer.",
    report.layers.map((l) => `moe_expert_layer_resident{${m},layer="${l.layer}"} ${l.resident.length}`),
  );
  const heat = (name: string, help: string, get: (l: StoreReport["layers"][number]) => number[]) =>
    metric(
      name,
      "counter",
      help,
      report.layers.flatMap((l) =>
        get(l).map((v, e) => `moe_expert_${name}{${m},layer="${l.layer}",expert="${e}"} ${v}`),
      ),
    );
  heat("expert_hits_total", "Hits per (layer, expert): the heatmap of expert use.", (l) => l.expert_hits);
  heat("expert_misses_total", "Misses per (layer, expert).", (l) => l.expert_misses);
  return `${out.join("\n")}\n`;
}
