import { KvCache, type KvDtype } from "./kv-cache.js";
import { type BatchItem, type MoeTransformer, PREFILL_CHUNK } from "./model.js";
import type { PrefixCache } from "./prefix-cache.js";

/** A sequence as the scheduler sees it; the engine supplies what happens with its logits. */
export interface ScheduledSequence {
  readonly prompt: number[];
  readonly maxTotal: number;
  /** Fairness key: admission prefers the tenant with the fewest running sequences. */
  readonly tenant: string;
  readonly signal?: AbortSignal;
  /** Called with the logits after the prompt (and after each fed token); returns the next token, or null when done. */
  onLogits(logits: Float32Array): number | null;
  /**
   * Prompt logprobs: called with the logits of every prompt token (rows[k] after the token at
   * position pos0 + k), chunk by chunk. Such a sequence computes its whole prompt (no prefix cache).
   */
  onPromptLogits?(rows: Float32Array[], pos0: number): void;
  /** True while the reader is behind (too many unread events): skip its decode steps. */
  paused(): boolean;
  /** Called once when the sequence leaves (done, aborted or failed). */
  onEnd(error?: Error): void;
  /** Set by the scheduler when the prompt's KV came partly from the prefix cache. */
  cachedTokens: number;
}

export interface SchedulerLimits {
  /** Sequences decoding together in one batch. */
  maxRunning: number;
  /** Sequences waiting for a batch slot; beyond this new requests are refused. */
  maxQueued: number;
  /** Tokens per step (decode tokens + prefill chunk). */
  stepTokens: number;
}

export class AdmissionError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

interface Running {
  seq: ScheduledSequence;
  cache: KvCache;
  /** Prompt tokens already in the cache. */
  prefilled: number;
  /** Token to feed in the next step (decode phase). */
  next: number | null;
}

export interface SchedulerStats {
  running: number;
  queued: number;
  steps: number;
  lastBatchTokens: number;
  lastBatchSequences: number;
  kvBytes: number;
}

/**
 * Continuous batching: every step runs one token for each decoding sequence plus a chunk of
 * pending prompts (chunked prefill, so long prompts never stall running streams); new requests
 * join between steps; finished or aborted ones leave between steps and free their KV.
 */
export class Scheduler {
  private readonly waiting: Running[] = [];
  private readonly running: Running[] = [];
  private loopActive = false;
  /** Admissions per tenant (fairness). */
  private readonly served = new Map<string, number>();
  private steps = 0;
  private lastBatchTokens = 0;
  private lastBatchSequences = 0;

  constructor(
    private readonly model: MoeTransformer,
    readonly limits: SchedulerLimits,
    private readonly prefixCache: PrefixCache | null,
    private readonly kvDtype: KvDtype,
  ) {
    if (limits.stepTokens > PREFILL_CHUNK || limits.stepTokens < 1) {
      throw new RangeError(`stepTokens must be in 1..${PREFILL_CHUNK}`);
    }
  }

  submit(seq: ScheduledSequence): void {
    if (this.running.length + this.waiting.length >= this.limits.maxRunning + this.limits.maxQueued) {
      throw new AdmissionError(
        `the server is at capacity (${this.limits.maxRunning} running, ${this.limits.maxQueued} queued); retry shortly`,
        503,
        1,
      );
    }
    this.levelServed(seq.tenant);
    this.waiting.push({
      seq,
      cache: new KvCache(this.model.config, 0, this.kvDtype),
      prefilled: 0,
      next: null,
    });
    seq.signal?.addEventListener("abort", () => this.kick(), { once: true });
    this.kick();
  }

  /** Start the step loop unless it runs (new work, a resumed reader, an abort to clean up). */
  kick(): void {
    if (this.loopActive) return;
    this.loopActive = true;
    setImmediate(() => void this.loop());
  }

  stats(): SchedulerStats {
    let kvBytes = 0;
    for (const r of this.running) kvBytes += r.cache.bytes();
    return {
      running: this.running.length,
      queued: this.waiting.length,
      steps: this.steps,
      lastBatchTokens: this.lastBatchTokens,
      lastBatchSequences: this.lastBatchSequences,
      kvBytes,
    };
  }

  private async loop(): Promise<void> {
    try {
      while (this.running.length + this.waiting.length > 0) {
        this.dropAborted();
        this.admit();
        const batch = this.plan();
        if (batch.length === 0) break;
        let logits: Float32Array[];
        try {
          logits = await this.model.forwardBatch(batch.map((b) => b.item));
        } catch (err) {
          // A failed step (e.g. an expert read error) fails the sequences in it, not the server.
          for (const b of batch) this.finish(b.r, err instanceof Error ? err : new Error(String(err)));
          continue;
        }
        this.steps++;
        this.lastBatchTokens = batch.reduce((a, b) => a + b.item.tokens.length, 0);
        this.lastBatchSequences = batch.length;
        let j = 0;
        for (const b of batch) {
          const r = b.r;
          let last: Float32Array;
          if (b.item.allLogits) {
            const n = b.item.tokens.length;
            const rows = logits.slice(j, j + n);
            j += n;
            r.seq.onPromptLogits?.(rows, r.prefilled - n);
            if (!b.item.wantLogits) continue;
            last = rows[n - 1];
          } else if (b.item.wantLogits) last = logits[j++];
          else continue;
          if (r.prefilled === r.seq.prompt.length && r.next === null)
            this.prefixCache?.store(r.seq.prompt, r.cache);
          const next = r.seq.signal?.aborted ? null : r.seq.onLogits(last);
          if (next === null || r.cache.length >= r.seq.maxTotal) this.finish(r);
          else r.next = next;
        }
        // Let sockets flush the tokens just produced before the next step.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      // Remaining sequences are all paused by slow readers; their reader kicks the loop again.
      this.loopActive = false;
    }
  }

  private dropAborted(): void {
    for (const list of [this.running, this.waiting]) {
      for (const r of [...list]) if (r.seq.signal?.aborted) this.finish(r, new Error("aborted"));
    }
  }

  private admit(): void {
    const deferred: Running[] = [];
    while (this.running.length < this.limits.maxRunning && this.waiting.length > 0) {
      const r = this.waiting.splice(this.nextWaiting(), 1)[0];
      if (this.twinPrefilling(r)) {
        deferred.push(r);
        continue;
      }
      // Room for the whole prompt now: growing chunk by chunk would copy every layer's K/V (and
      // fault its pages in) again at each doubling, on the time to first token.
      try {
        r.cache.reserve(r.seq.prompt.length);
      } catch (err) {
        // (The engine refuses prompts beyond the context before they get here.)
        r.seq.onEnd(err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      if (this.prefixCache && !r.seq.onPromptLogits) {
        r.prefilled = this.prefixCache.restore(r.seq.prompt, r.cache);
        r.seq.cachedTokens = r.prefilled;
      }
      this.running.push(r);
    }
    this.waiting.unshift(...deferred);
  }

  /**
   * A running sequence is still prefilling the same first prompt block (the n choices of one
   * request, a burst behind one system prompt): waiting until it is done lets the prefix cache
   * give this one the shared blocks instead of computing them twice. Bounded by that prefill.
   */
  private twinPrefilling(r: Running): boolean {
    const cache = this.prefixCache;
    if (!cache || r.seq.onPromptLogits) return false;
    const bt = cache.blockTokens;
    const p = r.seq.prompt;
    if (p.length <= bt) return false;
    return this.running.some((o) => {
      const q = o.seq.prompt;
      if (o.next !== null || o.prefilled >= q.length || q.length <= bt) return false;
      for (let i = 0; i < bt; i++) if (p[i] !== q[i]) return false;
      return true;
    });
  }

  /**
   * Fair admission: the oldest waiting sequence of the tenant with the fewest running sequences,
   * then the fewest admissions so far (so a flood from one tenant cannot starve another).
   */
  private nextWaiting(): number {
    const load = new Map<string, number>();
    for (const r of this.running) load.set(r.seq.tenant, (load.get(r.seq.tenant) ?? 0) + 1);
    const key = (i: number) => {
      const t = this.waiting[i].seq.tenant;
      return [load.get(t) ?? 0, this.served.get(t) ?? 0];
    };
    let best = 0;
    for (let i = 1; i < this.waiting.length; i++) {
      const [a, b] = key(i);
      const [c, d] = key(best);
      if (a < c || (a === c && b < d)) best = i;
    }
    const tenant = this.waiting[best].seq.tenant;
    this.served.set(tenant, (this.served.get(tenant) ?? 0) + 1);
    return best;
  }

  /** A tenant returning after idling starts level with the active ones, not far behind them. */
  private levelServed(tenant: string): void {
    const active = new Set([...this.running, ...this.waiting].map((r) => r.seq.tenant));
    if (active.has(tenant)) return;
    let min = Number.POSITIVE_INFINITY;
    for (const t of active) min = Math.min(min, this.served.get(t) ?? 0);
    if (Number.isFinite(min)) this.served.set(tenant, Math.max(this.served.get(tenant) ?? 0, min));
    else this.served.clear(); // nothing active: everyone starts from zero
  }

  /** Decode tokens first (one per running sequence), then prompt chunks in arrival order. */
  private plan(): { r: Running; item: BatchItem }[] {
    const out: { r: Running; item: BatchItem }[] = [];
    let budget = this.limits.stepTokens;
    for (const r of this.running) {
      if (r.next !== null && budget > 0 && !r.seq.paused()) {
        out.push({ r, item: { tokens: [r.next], cache: r.cache, wantLogits: true } });
        budget--;
      }
    }
    for (const r of this.running) {
      if (r.next !== null || budget <= 0) continue;
      const take = Math.min(budget, r.seq.prompt.length - r.prefilled);
      const tokens = r.seq.prompt.slice(r.prefilled, r.prefilled + take);
      r.prefilled += take;
      budget -= take;
      const wantLogits = r.prefilled === r.seq.prompt.length;
      out.push({
        r,
        item: { tokens, cache: r.cache, wantLogits, allLogits: r.seq.onPromptLogits !== undefined },
      });
    }
    // Chunks whose K/V were written advance the cache even when they yield no logits.
    return out;
  }

  private finish(r: Running, error?: Error): void {
    for (const list of [this.running, this.waiting]) {
      const i = list.indexOf(r);
      if (i >= 0) list.splice(i, 1);
    }
    r.seq.onEnd(error);
  }
}
