/**
 * The backend's /metrics (Prometheus text format, prom-client). Two kinds of numbers:
 *  - what the server observes per request: requests by outcome, generated / prompt / cached
 *    tokens, time to first token and inter-token latency (histograms);
 *  - what the engine holds, read at scrape time: scheduler queue and batch, KV bytes, prefix
 *    cache, and the expert store (its own renderer, experts/metrics.ts).
 * One registry per server (not prom-client's global one), so several servers in one process
 * (tests) do not collide.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { FinishReason } from "../engine/types.js";
import { pagingPrometheus } from "../experts/metrics.js";
import { type IntrospectableEngine, storeReport } from "./introspect.js";

export type Endpoint = "chat" | "completion" | "internal";
/** How a request ended: ok (finished), rejected (4xx/5xx before any token), aborted (client left), error (mid-stream). */
export type Outcome = "ok" | "rejected" | "aborted" | "error";

/** Latency buckets in seconds: sub-millisecond decode steps up to minute-long prefills. */
const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const ITL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** A counter whose value is owned elsewhere (a cumulative engine counter), copied at scrape. */
function mirrorCounter(registry: Registry, name: string, help: string, read: () => number | null): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const v = read();
      this.reset();
      if (v !== null && v > 0) this.inc(v);
    },
  });
}

function mirrorGauge(registry: Registry, name: string, help: string, read: () => number | null): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      const v = read();
      if (v === null) this.reset();
      else this.set(v);
    },
  });
}

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"endpoint" | "outcome" | "status" | "finish_reason">;
  private readonly generated: Counter<"endpoint">;
  private readonly promptTokens: Counter<"endpoint">;
  private readonly cachedTokens: Counter<"endpoint">;
  private readonly ttft: Histogram<"endpoint">;
  private readonly itl: Histogram<"endpoint">;
  private readonly inflight: Gauge<"endpoint">;

  constructor(private readonly engine: () => IntrospectableEngine | null) {
    const r = [this.registry];
    this.requests = new Counter({
      name: "moe_requests_total",
      help: "Generation requests by endpoint, outcome, HTTP status and finish reason.",
      labelNames: ["endpoint", "outcome", "status", "finish_reason"],
      registers: r,
    });
    this.generated = new Counter({
      name: "moe_generated_tokens_total",
      help: "Completion tokens generated (rate() of it is tokens/s).",
      labelNames: ["endpoint"],
      registers: r,
    });
    this.promptTokens = new Counter({
      name: "moe_prompt_tokens_total",
      help: "Prompt tokens of finished requests.",
      labelNames: ["endpoint"],
      registers: r,
    });
    this.cachedTokens = new Counter({
      name: "moe_cached_prompt_tokens_total",
      help: "Prompt tokens whose KV came from the prefix cache.",
      labelNames: ["endpoint"],
      registers: r,
    });
    this.ttft = new Histogram({
      name: "moe_time_to_first_token_seconds",
      help: "From the request reaching the handler to its first generated token.",
      labelNames: ["endpoint"],
      buckets: TTFT_BUCKETS,
      registers: r,
    });
    this.itl = new Histogram({
      name: "moe_inter_token_latency_seconds",
      help: "Between consecutive generated tokens of one request.",
      labelNames: ["endpoint"],
      buckets: ITL_BUCKETS,
      registers: r,
    });
    this.inflight = new Gauge({
      name: "moe_requests_in_flight",
      help: "Requests generating now (admitted by the server, not yet finished).",
      labelNames: ["endpoint"],
      registers: r,
    });
    this.engineMetrics();
  }

  private engineMetrics(): void {
    const reg = this.registry;
    const sched = () => this.engine()?.scheduler.stats() ?? null;
    const prefix = () => this.engine()?.prefixCache?.stats() ?? null;
    mirrorGauge(
      reg,
      "moe_scheduler_queued",
      "Sequences waiting for a batch slot.",
      () => sched()?.queued ?? null,
    );
    mirrorGauge(
      reg,
      "moe_scheduler_running",
      "Sequences in the running batch.",
      () => sched()?.running ?? null,
    );
    mirrorGauge(
      reg,
      "moe_scheduler_max_running",
      "Admission limit: sequences decoding together.",
      () => this.engine()?.scheduler.limits?.maxRunning ?? null,
    );
    mirrorGauge(
      reg,
      "moe_scheduler_max_queued",
      "Admission limit: sequences waiting.",
      () => this.engine()?.scheduler.limits?.maxQueued ?? null,
    );
    mirrorCounter(
      reg,
      "moe_scheduler_steps_total",
      "Batched forward steps run.",
      () => sched()?.steps ?? null,
    );
    mirrorGauge(
      reg,
      "moe_batch_tokens",
      "Tokens in the last step (decode tokens plus prefill chunk).",
      () => sched()?.lastBatchTokens ?? null,
    );
    mirrorGauge(
      reg,
      "moe_batch_sequences",
      "Sequences in the last step.",
      () => sched()?.lastBatchSequences ?? null,
    );
    mirrorGauge(reg, "moe_kv_bytes", "KV cache memory of running sequences.", () => sched()?.kvBytes ?? null);
    mirrorGauge(
      reg,
      "moe_prefix_cache_blocks",
      "KV blocks held by the prefix cache.",
      () => prefix()?.blocks ?? null,
    );
    mirrorGauge(
      reg,
      "moe_prefix_cache_bytes",
      "Memory held by the prefix cache.",
      () => prefix()?.bytes ?? null,
    );
    mirrorGauge(
      reg,
      "moe_prefix_cache_capacity_bytes",
      "Prefix cache memory bound.",
      () => prefix()?.capacityBytes ?? null,
    );
    mirrorCounter(
      reg,
      "moe_prefix_cache_lookups_total",
      "Prompts looked up in the prefix cache.",
      () => prefix()?.lookups ?? null,
    );
    mirrorCounter(
      reg,
      "moe_prefix_cache_hit_tokens_total",
      "Prompt tokens restored from the prefix cache.",
      () => prefix()?.hitTokens ?? null,
    );
    mirrorCounter(
      reg,
      "moe_prefix_cache_evictions_total",
      "Prefix cache blocks evicted to make room.",
      () => prefix()?.evictions ?? null,
    );
  }

  /** One request's life, observed by the code that drives its generator. */
  request(endpoint: Endpoint): RequestObserver {
    return new RequestObserver(this, endpoint);
  }

  /** A request refused before generation (validation, admission, tenant cap). */
  rejected(endpoint: Endpoint, status: number): void {
    this.requests.inc({ endpoint, outcome: "rejected", status: String(status), finish_reason: "" });
  }

  /** @internal used by RequestObserver */
  record(
    endpoint: Endpoint,
    ev:
      | { kind: "start" }
      | { kind: "token"; ttft?: number; itl?: number }
      | {
          kind: "end";
          outcome: Outcome;
          status: number;
          finishReason: FinishReason | "";
          prompt: number;
          cached: number;
        },
  ): void {
    if (ev.kind === "start") {
      this.inflight.inc({ endpoint });
    } else if (ev.kind === "token") {
      this.generated.inc({ endpoint });
      if (ev.ttft !== undefined) this.ttft.observe({ endpoint }, ev.ttft);
      if (ev.itl !== undefined) this.itl.observe({ endpoint }, ev.itl);
    } else {
      this.inflight.dec({ endpoint });
      this.requests.inc({
        endpoint,
        outcome: ev.outcome,
        status: String(ev.status),
        finish_reason: ev.finishReason,
      });
      if (ev.prompt > 0) this.promptTokens.inc({ endpoint }, ev.prompt);
      if (ev.cached > 0) this.cachedTokens.inc({ endpoint }, ev.cached);
    }
  }

  /** The whole exposition: the server's and engine's metrics, then the expert store's. */
  async render(model: string | null): Promise<string> {
    let text = await this.registry.metrics();
    const engine = this.engine();
    const report = engine ? storeReport(engine) : null;
    if (report && model !== null) text += pagingPrometheus(report, model);
    else if (engine) text += eagerExperts(engine.experts.stats());
    return text;
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** The eager provider has no report: its hits counter is all there is to say. */
function eagerExperts(stats: Record<string, number>): string {
  return [
    "# HELP moe_expert_hits_total Routed-expert acquisitions served from memory.",
    "# TYPE moe_expert_hits_total counter",
    `moe_expert_hits_total ${stats.hits ?? 0}`,
    "",
  ].join("\n");
}

/** Timing of one request: first token, gaps between tokens, the end. Ends once. */
export class RequestObserver {
  private readonly t0 = performance.now();
  private last: number | null = null;
  private ended = false;

  constructor(
    private readonly metrics: ServerMetrics,
    private readonly endpoint: Endpoint,
  ) {
    metrics.record(endpoint, { kind: "start" });
  }

  token(): void {
    const now = performance.now();
    if (this.last === null)
      this.metrics.record(this.endpoint, { kind: "token", ttft: (now - this.t0) / 1000 });
    else this.metrics.record(this.endpoint, { kind: "token", itl: (now - this.last) / 1000 });
    this.last = now;
  }

  end(
    outcome: Outcome,
    status: number,
    result?: { finishReason: FinishReason; promptTokens: number; cachedTokens: number },
  ): void {
    if (this.ended) return;
    this.ended = true;
    this.metrics.record(this.endpoint, {
      kind: "end",
      outcome,
      status,
      finishReason: result?.finishReason ?? "",
      prompt: result?.promptTokens ?? 0,
      cached: result?.cachedTokens ?? 0,
    });
  }
}
