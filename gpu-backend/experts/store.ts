import { statSync } from "node:fs";
import type { Device, Weight } from "../device/device.js";
import type { Checkpoint, ExpertWeights } from "../model/types.js";
import { type BudgetSpec, formatBytes, parseBudget } from "./budget.js";
import { GuessGate } from "./guess-gate.js";
import { type ExpertPlan, planExpert, type ReadOp } from "./layout.js";
import { createPolicy, type EvictionPolicy } from "./policy.js";
import type { ExpertProvider } from "./provider.js";
import { type BlockReader, defaultReader } from "./reader.js";
import { PagingCounters, ratio } from "./stats.js";

export interface ExpertStoreOptions {
  /** Bytes ("512MiB", "1073741824") or a share of all routed experts ("25%"). */
  budget: string | BudgetSpec;
  /** Eviction policy name (default "lfu"). */
  policy?: string;
  /** Start loads on hint() (default true). Off: hints are only scored, never acted on. */
  prefetch?: boolean;
  /**
   * The most distinct experts of one layer a single acquire() may ask for. The budget must hold
   * that many at once (they are pinned together), else construction fails.
   */
  maxExpertsPerStep: number;
  /** Where bytes come from (default: O_DIRECT through the native addon, else buffered reads). */
  reader?: BlockReader;
}

interface Entry {
  key: number;
  layer: number;
  expert: number;
  slot: Uint8Array;
  /** Bytes decode allocated outside the slot (0 when the weights are views into it). */
  extra: number;
  weights: ExpertWeights | null;
  /** Settles when the load finishes; rejects when it fails (the entry is gone by then). */
  ready: Promise<Entry>;
  /** Loaded by a hint and not used by a step yet. */
  prefetchedUnused: boolean;
  /** For a hint's load: the acquire of its layer the guess was for (see cacheHits); else -1. */
  guessFor: number;
  /** The device adopted the weights (its layout, in place): at the first hit, or while a step waits for reads. */
  adopted: boolean;
}

/** One report row per MoE layer (metrics endpoint, heatmaps). */
export interface LayerReport {
  layer: number;
  hits: number;
  misses: number;
  bytes_read: number;
  stall_ms: number;
  prefetch_issued: number;
  prefetch_used: number;
  resident: number[];
  expert_hits: number[];
  expert_misses: number[];
}

export interface StoreReport {
  policy: string;
  reader: "direct" | "buffered";
  prefetch: boolean;
  budget_bytes: number;
  capacity_experts: number;
  slot_bytes: number;
  expert_bytes: number;
  total_experts: number;
  totals: Record<string, number>;
  layers: LayerReport[];
}

/**
 * The expert store: the single owner of routed-expert residency. It holds at most `capacity`
 * experts in fixed-size slots of aligned memory (carved from slabs as first needed, reused
 * forever, so memory held never exceeds the budget), reads misses from the checkpoint with
 * positioned reads (by default O_DIRECT through native AIO), deduplicates loads in flight, pins
 * the experts of the current step, evicts by a pluggable policy and loads hinted experts ahead.
 *
 * Residency rule: an expert is resident only after every one of its byte ranges was read in full
 * and decoded; a failed read returns its slot to the free list and leaves no entry behind.
 */
export class ExpertStore implements ExpertProvider {
  readonly policy: EvictionPolicy;
  readonly capacity: number;
  readonly budgetBytes: number;
  readonly slotBytes: number;
  /** Memory one resident expert costs: its slot plus whatever decode allocates beside it. */
  readonly expertCost: number;
  readonly maxExpertsPerAcquire: number;
  readonly prefetchEnabled: boolean;

  private readonly reader: BlockReader;
  private readonly totalExperts: number;
  /** Experts whose weights are loaded now. */
  private residentCount = 0;
  private readonly plans: (ExpertPlan | null)[];
  private readonly numExperts: number;
  private readonly numLayers: number;
  private readonly entries = new Map<number, Entry>();
  private readonly freeSlots: Uint8Array[] = [];
  private allocatedSlots = 0;
  /** The slab slots are carved from, and how much of it is handed out. */
  private slab: Uint8Array = new Uint8Array(0);
  private slabUsed = 0;
  /** Bytes of all slabs (slots handed out and slots reserved for later). */
  private reservedBytes = 0;
  private extraBytes = 0;
  private pinned = new Set<number>();
  private readonly counters: PagingCounters;
  /** Per layer: the live guess's experts (keys) and their confidence (undefined: not given). */
  private readonly guesses = new Map<number, Map<number, number | undefined>>();
  /** Reads a guess only where guesses that confident were usually right (see GuessGate). */
  private readonly gate = new GuessGate(GUESS_TARGET_ACCURACY);
  private prefetchSkipped = 0;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  // Step-level counters (the per-expert ones live in `counters`).
  private acquires = 0;
  private acquiredExperts = 0;
  private missesInflight = 0;
  private stallMsTotal = 0;
  private hintGuesses = 0;
  private hintCorrect = 0;
  private hintNeeded = 0;
  private failedAcquires = 0;
  /** Experts already resident when acquire() was called (hits count those resident when awaited). */
  private hitsAtCall = 0;
  /**
   * Hits a read for this very step did not supply: experts resident from earlier steps, including
   * a guess's expert that its own step did not use. Hits minus these are prefetches that arrived in
   * time: reads the step needed, moved earlier (what T(h)'s disk term counts; see stats()).
   */
  private cacheHits = 0;
  /** Acquires per layer so far (a guess names the next one of its layer). */
  private readonly layerAcquires: Int32Array;
  /** Bytes of loads started and not finished (demand and prefetch). */
  private bytesInFlight = 0;
  /** The layer of the step running now (its acquire() was the last one). */
  private stepLayer = 0;
  /** Per layer: its index among the MoE layers (how far ahead a guess looks). */
  private readonly moeOrdinal: Int32Array;

  constructor(
    private readonly ckpt: Checkpoint,
    opts: ExpertStoreOptions,
  ) {
    const c = ckpt.config;
    this.numExperts = c.numExperts;
    this.numLayers = c.numLayers;
    this.layerAcquires = new Int32Array(c.numLayers);
    this.reader = opts.reader ?? defaultReader();
    this.prefetchEnabled = opts.prefetch ?? true;
    const sizes = new Map<string, number>();
    const fileSize = (f: string) => {
      let s = sizes.get(f);
      if (s === undefined) {
        s = statSync(f).size;
        sizes.set(f, s);
      }
      return s;
    };
    this.plans = [];
    let slotBytes = 0;
    let dataBytes = 0;
    let moeLayers = 0;
    for (let l = 0; l < c.numLayers; l++) {
      if (!c.moeLayers[l]) {
        for (let e = 0; e < c.numExperts; e++) this.plans.push(null);
        continue;
      }
      moeLayers++;
      for (let e = 0; e < c.numExperts; e++) {
        const p = planExpert(ckpt.expertRanges(l, e), fileSize);
        this.plans.push(p);
        slotBytes = Math.max(slotBytes, p.slotBytes);
        dataBytes = Math.max(dataBytes, p.dataBytes);
      }
    }
    const total = moeLayers * c.numExperts;
    this.totalExperts = total;
    if (total === 0) throw new Error("this model has no routed experts: an expert budget does not apply");
    this.slotBytes = slotBytes;
    this.expertCost = slotBytes + this.probeDecodeExtra();
    const spec = typeof opts.budget === "string" ? parseBudget(opts.budget) : opts.budget;
    let capacity: number;
    if (spec.kind === "percent") {
      // A share of experts, not of bytes: "25%" means a quarter of the routed experts resident.
      capacity = Math.floor((spec.percent / 100) * total + 1e-9);
      this.budgetBytes = Math.min(capacity, total) * this.expertCost;
    } else {
      capacity = Math.floor(spec.bytes / this.expertCost);
      this.budgetBytes = spec.bytes;
    }
    this.capacity = Math.min(capacity, total);
    const need = Math.min(opts.maxExpertsPerStep, c.numExperts);
    if (this.capacity < need) {
      const what = spec.kind === "percent" ? `${spec.percent}%` : formatBytes(spec.bytes);
      throw new RangeError(
        `expert budget ${what} is too small: it holds ${this.capacity} routed expert(s) of ${formatBytes(this.expertCost)} each ` +
          `(${formatBytes(dataBytes)} of weights + slot alignment), but one step can need ${need} experts of a layer at once; ` +
          `use at least ${formatBytes(need * this.expertCost)} (or ${Math.ceil((need / total) * 1000) / 10}%)`,
      );
    }
    this.maxExpertsPerAcquire = this.capacity;
    this.policy = createPolicy(opts.policy ?? "lfu", this.plans.length, this.capacity);
    this.counters = new PagingCounters(c.numLayers, c.numExperts);
    this.moeOrdinal = new Int32Array(c.numLayers);
    for (let l = 0, k = 0; l < c.numLayers; l++) this.moeOrdinal[l] = c.moeLayers[l] ? k++ : k;
  }

  /**
   * Guesses are wanted (and scored, even with prefetch off: that is how their accuracy is
   * measured) until every routed expert is resident in a budget that holds them all; from then on
   * nothing can be read or evicted, and computing guesses would only cost router products.
   */
  get wantsHints(): boolean {
    return this.residentCount < this.totalExperts;
  }

  /** Bytes decode allocates outside the slot for one expert (decoding zeros: no I/O needed). */
  private probeDecodeExtra(): number {
    const key = this.plans.findIndex((p) => p !== null);
    const plan = this.plans[key]!;
    const slot = new Uint8Array(this.slotBytes);
    const w = this.ckpt.decodeExpert(
      Math.floor(key / this.numExperts),
      key % this.numExperts,
      this.viewsOf(plan, slot),
    );
    return extraBytes(w, slot);
  }

  private viewsOf(plan: ExpertPlan, slot: Uint8Array): Uint8Array[] {
    return plan.views.map((v) => slot.subarray(v.slotOffset, v.slotOffset + v.length));
  }

  /** Memory the store holds for experts now: its slabs plus decode's own allocations. */
  residentBytes(): number {
    return this.reservedBytes + this.extraBytes;
  }

  /** Resolves once no load is in flight (tests and benchmarks read exact counters after it). */
  async settled(): Promise<void> {
    for (;;) {
      const inflight = [...this.entries.values()].filter((e) => !e.weights);
      if (inflight.length === 0) return;
      await Promise.all(inflight.map((e) => e.ready.then(noop, noop)));
    }
  }

  /**
   * Load experts nobody asked for until the budget is full (benchmarks: a steady state without
   * the first touches of a cache that is still filling). Takes only free or unallocated slots,
   * never evicts; experts go layer by layer round-robin (expert 0 of every MoE layer, then 1, …),
   * so each layer gets an even share. Counted like any demand load (loads, bytes read).
   */
  async fill(): Promise<void> {
    const moeLayers: number[] = [];
    for (let l = 0; l < this.numLayers; l++) if (this.plans[l * this.numExperts]) moeLayers.push(l);
    const loads: Promise<unknown>[] = [];
    for (let e = 0; e < this.numExperts; e++) {
      for (const l of moeLayers) {
        const key = l * this.numExperts + e;
        if (this.entries.has(key)) continue;
        const slot =
          this.freeSlots.pop() ?? (this.allocatedSlots < this.capacity ? this.allocSlot() : undefined);
        if (!slot) return this.settleAll(loads);
        const entry = this.startLoad(key, slot, false);
        loads.push(entry.ready.then(noop, noop));
        // A few reads in flight at a time: enough to keep the disk busy.
        if (loads.length >= 16) await this.settleAll(loads.splice(0));
      }
    }
    await this.settleAll(loads);
  }

  private async settleAll(loads: Promise<unknown>[]): Promise<void> {
    await Promise.all(loads);
  }

  /**
   * A new slot, carved from a slab of several (at most what the budget still allows): one large
   * block is backed by huge pages, and O_DIRECT reads into huge pages run about twice as fast as
   * into 4 KiB pages for experts of a few MiB (measured on this VM's disk; see allocAligned).
   */
  private allocSlot(): Uint8Array {
    if (this.slabUsed + this.slotBytes > this.slab.byteLength) {
      const slots = Math.min(Math.ceil(SLAB_BYTES / this.slotBytes), this.capacity - this.allocatedSlots);
      this.slab = this.reader.alloc(slots * this.slotBytes);
      this.slabUsed = 0;
      this.reservedBytes += this.slab.byteLength;
    }
    const slot = this.slab.subarray(this.slabUsed, this.slabUsed + this.slotBytes);
    this.slabUsed += this.slotBytes;
    this.allocatedSlots++;
    return slot;
  }

  /** Resident (fully loaded) experts as [layer, expert] pairs. */
  residentSet(): [number, number][] {
    const out: [number, number][] = [];
    for (const e of this.entries.values()) if (e.weights) out.push([e.layer, e.expert]);
    return out.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  }

  /**
   * The step's weights at once when every one of them is resident and no other step is running;
   * null otherwise (nothing counted, nothing changed: the caller then uses acquire()). Counts and
   * pins exactly as an acquire() that hits everything does, with no stall. This lets the engine
   * run a layer's shared and routed experts in one fused dispatch when nothing has to be read.
   */
  acquireResident(layer: number, experts: number[]): ExpertWeights[] | null {
    if (this.closed || this.pending > 0 || experts.length > this.capacity) return null;
    if (!this.plans[layer * this.numExperts]) return null;
    const found: Entry[] = [];
    for (const e of experts) {
      if (!Number.isInteger(e) || e < 0 || e >= this.numExperts) return null;
      const entry = this.entries.get(layer * this.numExperts + e);
      if (!entry?.weights) return null;
      found.push(entry);
    }
    this.startStep(layer, experts);
    this.pinned = new Set(experts.map((e) => layer * this.numExperts + e));
    this.acquires++;
    this.acquiredExperts += experts.length;
    this.hitsAtCall += experts.length;
    return found.map((entry) => this.useResident(entry));
  }

  acquire(layer: number, experts: number[]): Promise<ExpertWeights[]> {
    // Steps are serialized: a step's pins must not be dropped by another step's acquire. When
    // none is running, start right away (synchronously) so this step's reads are queued on the
    // I/O threads before any hint() the engine sends next.
    const start = () => this.acquireNow(layer, experts);
    const run = this.pending === 0 ? start() : this.queue.then(start);
    this.pending++;
    this.queue = run.then(
      () => {
        this.pending--;
      },
      () => {
        this.pending--;
      },
    );
    // Stall is the time the caller really waits: from its await (the first then() on the
    // returned promise) to resolution. Work the caller does between acquire() and await (the
    // shared expert, the next layer's guess) overlaps the reads and is not stall.
    let waitStart = -1;
    const done = () => {
      if (waitStart < 0) return;
      const dt = performance.now() - waitStart;
      this.stallMsTotal += dt;
      this.counters.stallMs[layer] += dt;
    };
    const timed = new WaitTimedPromise<ExpertWeights[]>((resolve, reject) => {
      run.then(
        (v) => {
          done();
          resolve(v);
        },
        (e: unknown) => {
          done();
          reject(e);
        },
      );
    });
    timed.onWait = () => {
      if (waitStart < 0) waitStart = performance.now();
    };
    return timed;
  }

  /** Acquires called and not yet settled (running or queued). */
  private pending = 0;

  /**
   * Resident experts the device has not adopted yet, oldest load first: a step that waits for
   * reads adopts them meanwhile (adoptWhileWaiting), so a later hit finds them ready.
   */
  private readonly unadopted = new Set<Entry>();

  private async acquireNow(layer: number, experts: number[]): Promise<ExpertWeights[]> {
    if (this.closed) throw new Error("expert store is closed");
    this.pinned = new Set();
    if (!this.plans[layer * this.numExperts]) throw new RangeError(`layer ${layer} has no routed experts`);
    if (experts.length > this.capacity) {
      throw new RangeError(
        `acquire of ${experts.length} experts exceeds the store's capacity of ${this.capacity}; split the step into groups of maxExpertsPerAcquire`,
      );
    }
    this.startStep(layer, experts);
    const keys = experts.map((e) => {
      if (!Number.isInteger(e) || e < 0 || e >= this.numExperts)
        throw new RangeError(`expert id ${e} out of range`);
      return layer * this.numExperts + e;
    });
    for (const k of keys) this.pinned.add(k);
    this.acquires++;
    this.acquiredExperts += keys.length;
    const out: (ExpertWeights | null)[] = new Array(keys.length).fill(null);
    const waiting: { j: number; key: number }[] = [];
    // Pass 1 (synchronous): count hits and start every demand read we can right away, so the I/O
    // threads get this step's reads before anything a later hint() queues.
    const inflight: { j: number; key: number }[] = [];
    for (let j = 0; j < keys.length; j++) {
      const key = keys[j];
      const entry = this.entries.get(key);
      if (entry?.weights) {
        this.hitsAtCall++;
        out[j] = this.useResident(entry);
      } else if (entry) {
        inflight.push({ j, key });
      } else {
        this.counters.add("misses", key);
        const slot = this.takeDemandSlot();
        if (slot) this.startLoad(key, slot, false);
        waiting.push({ j, key });
      }
    }
    if (inflight.length > 0) {
      // Reads finish on I/O threads while this thread computes, but their completions are only
      // delivered when the event loop runs, and synchronous compute never lets it: a read that
      // landed a layer ago still looks in flight here. Let one loop turn deliver them (it runs
      // when the caller awaits, i.e. when the step needs its experts), then sort: what is
      // resident now is a hit (the step does not wait for it), the rest are misses whose read a
      // guess had already started.
      await new Promise<void>((resolve) => setImmediate(resolve));
      for (const w of inflight) {
        const entry = this.entries.get(w.key);
        if (entry?.weights) {
          out[w.j] = this.useResident(entry);
          continue;
        }
        this.counters.add("misses", w.key);
        if (entry) {
          this.missesInflight++;
          this.notePrefetchUse(entry);
        }
        waiting.push(w);
      }
    }
    if (waiting.length > 0) {
      const all = Promise.allSettled(waiting.map((w) => this.waitResident(w.key)));
      await this.adoptWhileWaiting(all);
      const results = await all;
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) {
        this.failedAcquires++;
        this.pinned = new Set();
        throw failed.reason;
      }
      for (let i = 0; i < waiting.length; i++) {
        const e = (results[i] as PromiseFulfilledResult<Entry>).value;
        this.policy.onUse(e.key);
        out[waiting[i].j] = e.weights;
      }
    }
    return out as ExpertWeights[];
  }

  /** Resolve when `key` is resident, starting its load once a slot frees up if it has none. */
  private async waitResident(key: number): Promise<Entry> {
    for (;;) {
      const entry = this.entries.get(key);
      if (entry) return entry.weights ? entry : entry.ready;
      const slot = this.takeDemandSlot();
      if (slot) {
        this.startLoad(key, slot, false);
        continue;
      }
      // Every slot we could take is a prefetch still reading: wait for one to land, then retry.
      const inflight = [...this.entries.values()].filter((e) => !e.weights && !this.pinned.has(e.key));
      if (inflight.length === 0) throw new Error("expert store: no slot can be freed (internal error)");
      await Promise.race(inflight.map((e) => e.ready.then(noop, noop)));
    }
  }

  /**
   * While `wait` is pending (the step waits for reads, its threads idle), adopt unadopted resident
   * experts one matrix at a time, letting the event loop deliver read completions in between: a
   * step then waits at most one matrix's conversion longer, and a later hit on those experts no
   * longer converts on its critical path (~95 us per Maverick-like expert). Only experts no step
   * holds: the engine uses a step's weights synchronously, before it awaits the next acquire.
   */
  private async adoptWhileWaiting(wait: Promise<unknown>): Promise<void> {
    const adopt = this.adopt;
    if (!adopt) return;
    let done = false;
    wait.then(
      () => {
        done = true;
      },
      () => {
        done = true;
      },
    );
    // Newest first: under LRU the oldest are the next to go, and converting them would be wasted.
    for (const entry of [...this.unadopted].reverse()) {
      for (const m of ["gate", "up", "down"] as const) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        // The entry may have been evicted, or adopted by a hit, while the loop yielded.
        if (done || this.closed) return;
        if (!entry.weights || entry.adopted || this.entries.get(entry.key) !== entry) break;
        entry.weights = { ...entry.weights, [m]: adopt(entry.weights[m]) };
      }
      if (entry.weights && this.entries.get(entry.key) === entry && !entry.adopted) this.markAdopted(entry);
    }
  }

  private markAdopted(entry: Entry): void {
    entry.adopted = true;
    this.unadopted.delete(entry);
  }

  /**
   * A resident expert serves the step: a hit. Its first hit is when the device adopts it (see
   * useDevice), unless a step waiting for reads did it first (adoptWhileWaiting): converting
   * costs about a third of the read (a pass over the expert), and most experts a small budget
   * loads are used once and evicted, so only those used again pay it.
   */
  private useResident(entry: Entry): ExpertWeights {
    this.counters.add("hits", entry.key);
    if (!entry.prefetchedUnused || entry.guessFor !== this.layerAcquires[entry.layer]) this.cacheHits++;
    this.notePrefetchUse(entry);
    this.policy.onUse(entry.key);
    const w = entry.weights!;
    if (!entry.adopted) {
      const adopt = this.adopt;
      if (adopt) entry.weights = { gate: adopt(w.gate), up: adopt(w.up), down: adopt(w.down) };
      this.markAdopted(entry);
    }
    return entry.weights!;
  }

  private notePrefetchUse(entry: Entry): void {
    if (entry.prefetchedUnused) {
      entry.prefetchedUnused = false;
      this.counters.add("prefetch_used", entry.key);
    }
  }

  /** True when a live guess names `key` (a later step of its layer is expected to use it). */
  private guessed(key: number): boolean {
    return this.guesses.get(Math.floor(key / this.numExperts))?.has(key) ?? false;
  }

  /**
   * A slot for a demand load: never a pinned expert's; an expert a live guess names only when
   * nothing else can go (evicting it would turn a coming hit into a miss).
   */
  private takeDemandSlot(): Uint8Array | undefined {
    if (!this.prefetchEnabled) return this.takeSlot((k) => !this.pinned.has(k));
    return (
      this.takeSlot((k) => !this.pinned.has(k) && !this.guessed(k)) ??
      this.takeSlot((k) => !this.pinned.has(k))
    );
  }

  /** A free slot, a newly allocated one under the budget, or the slot of a policy victim. */
  private takeSlot(mayEvict: (key: number) => boolean): Uint8Array | undefined {
    const free = this.freeSlots.pop();
    if (free) return free;
    if (this.allocatedSlots < this.capacity) return this.allocSlot();
    const victim = this.policy.victim((k) => {
      const e = this.entries.get(k);
      return e !== undefined && e.weights !== null && mayEvict(k);
    });
    if (victim === undefined) return undefined;
    return this.evict(victim);
  }

  private evict(key: number): Uint8Array {
    const e = this.entries.get(key)!;
    this.entries.delete(key);
    this.unadopted.delete(e);
    if (e.weights) this.residentCount--;
    this.policy.onEvict(key);
    this.counters.add("evictions", key);
    if (e.prefetchedUnused) this.counters.add("prefetch_wasted", key);
    this.extraBytes -= e.extra;
    return e.slot;
  }

  private startLoad(key: number, slot: Uint8Array, prefetch: boolean): Entry {
    const layer = Math.floor(key / this.numExperts);
    const expert = key % this.numExperts;
    const entry: Entry = {
      key,
      layer,
      expert,
      slot,
      extra: 0,
      weights: null,
      ready: Promise.resolve(null as unknown as Entry),
      prefetchedUnused: prefetch,
      guessFor: prefetch ? this.layerAcquires[layer] + 1 : -1,
      adopted: false,
    };
    entry.ready = this.load(entry);
    // Prefetch failures are counted, never thrown at anyone; demand waiters see the rejection.
    entry.ready.catch(noop);
    this.entries.set(key, entry);
    if (prefetch) this.counters.add("prefetch_issued", key);
    return entry;
  }

  /** Device layout conversion of a resident expert, in its slot (see useDevice, useResident); none: kept as read. */
  private adopt?: (w: Weight) => Weight;

  useDevice(device: Device): void {
    if (this.acquires > 0 || this.entries.size > 0)
      throw new Error("useDevice: call it before the first load");
    if (device.adopt) this.adopt = (w) => device.adopt!(w);
  }

  private async load(entry: Entry): Promise<Entry> {
    const plan = this.plans[entry.key]!;
    this.bytesInFlight += plan.readBytes;
    try {
      try {
        // Every op settles before the slot can go back to the free list (none still writing).
        const results = await Promise.allSettled(plan.ops.map((op) => this.readOp(op, plan, entry.slot)));
        const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
        if (failed) throw failed.reason;
      } finally {
        this.bytesInFlight -= plan.readBytes;
      }
      if (this.closed) throw new Error("expert store closed while loading");
      const w = this.ckpt.decodeExpert(entry.layer, entry.expert, this.viewsOf(plan, entry.slot));
      entry.extra = extraBytes(w, entry.slot);
      this.extraBytes += entry.extra;
      entry.weights = w;
      this.residentCount++;
      if (this.adopt) this.unadopted.add(entry);
    } catch (err) {
      // Nothing half-resident: drop the entry, give the slot back, report which expert failed.
      if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
      if (!this.closed) this.freeSlots.push(entry.slot);
      this.counters.add("read_errors", entry.key);
      const msg = err instanceof Error ? err.message : String(err);
      throw new Error(`loading expert ${entry.expert} of layer ${entry.layer} failed: ${msg}`);
    }
    this.counters.add("loads", entry.key);
    this.counters.add("bytes_read", entry.key, plan.readBytes);
    this.policy.onInsert(entry.key);
    return entry;
  }

  /**
   * One aligned read. If it comes up short (the file shrank since the plan was made, so the
   * aligned tail now runs past its end), read just the ranges inside it: only data that is really
   * missing fails the load.
   */
  private async readOp(op: ReadOp, plan: ExpertPlan, slot: Uint8Array): Promise<void> {
    try {
      await this.reader.read(op.file, op.offset, op.length, slot, op.slotOffset);
    } catch (err) {
      if (!(err instanceof Error) || !/short read/.test(err.message)) throw err;
      const inside = plan.views.filter(
        (v, i) =>
          plan.files[i] === op.file &&
          v.slotOffset < op.slotOffset + op.length &&
          v.slotOffset + v.length > op.slotOffset,
      );
      if (inside.length === 0) return;
      await Promise.all(
        inside.map((v) => {
          const from = Math.max(v.slotOffset, op.slotOffset);
          const to = Math.min(v.slotOffset + v.length, op.slotOffset + op.length);
          return this.reader.read(op.file, op.offset + (from - op.slotOffset), to - from, slot, from);
        }),
      );
    }
  }

  hint(layer: number, experts: number[], confidence?: number[]): void {
    if (this.closed || !this.plans[layer * this.numExperts]) return;
    const guess = new Map<number, number | undefined>();
    experts.forEach((e, i) => {
      const key = layer * this.numExperts + e;
      // A confidence that is not a finite number says nothing: such a guess is always read.
      const conf = confidence?.[i];
      if (Number.isInteger(e) && e >= 0 && e < this.numExperts && !guess.has(key))
        guess.set(key, conf !== undefined && Number.isFinite(conf) ? conf : undefined);
    });
    this.guesses.set(layer, guess);
    if (!this.prefetchEnabled) return;
    // A guess for a layer beyond the next MoE layer is guessed again, more accurately, one layer
    // later. When the disk is already behind, reading it now only delays the reads needed sooner
    // (and, with a full budget, evicts for a guess that is often wrong): leave it to the next
    // guess. On a cold start this also cuts the wasted reads of a prompt's first layers.
    if (
      this.moeOrdinal[layer] - this.moeOrdinal[this.stepLayer] > 1 &&
      this.bytesInFlight >= FAR_GUESS_BACKLOG_BYTES
    )
      return;
    for (const [key, conf] of guess) {
      // Pinned experts are the current step's: their loads are demand loads, never guesses.
      if (this.entries.has(key) || this.pinned.has(key)) continue;
      if (!this.gate.worthReading(conf)) {
        this.prefetchSkipped++;
        continue;
      }
      // A guess may only displace experts nobody is using, no other guess brought in and no
      // live guess names (one guess must not evict what another guess expects to be used).
      const slot = this.takeSlot(
        (k) => !this.pinned.has(k) && !this.entries.get(k)!.prefetchedUnused && !this.guessed(k),
      );
      if (!slot) break;
      this.startLoad(key, slot, true);
    }
  }

  /** A step of `layer` begins: score the guess made for it; later guesses name the next one. */
  private startStep(layer: number, experts: number[]): void {
    this.scoreGuess(layer, experts);
    this.layerAcquires[layer]++;
    this.stepLayer = layer;
  }

  /** How good the last guess for `layer` was, whether or not prefetch acted on it. */
  private scoreGuess(layer: number, experts: number[]): void {
    const guess = this.guesses.get(layer);
    if (!guess) return;
    this.guesses.delete(layer);
    this.hintGuesses += guess.size;
    this.hintNeeded += experts.length;
    const keys = experts.map((e) => layer * this.numExperts + e);
    for (const key of keys) if (guess.has(key)) this.hintCorrect++;
    const used = new Set(keys);
    for (const [key, conf] of guess) if (conf !== undefined) this.gate.record(conf, used.has(key));
  }

  /** Flat counters with stable names (the per-request summary subtracts two of these). */
  stats(): Record<string, number> {
    const k = this.counters;
    return {
      acquires: this.acquires,
      acquired_experts: this.acquiredExperts,
      hits: k.total("hits"),
      hits_at_call: this.hitsAtCall,
      cache_hits: this.cacheHits,
      misses: k.total("misses"),
      misses_inflight: this.missesInflight,
      loads: k.total("loads"),
      bytes_read: k.total("bytes_read"),
      evictions: k.total("evictions"),
      stall_ms: this.stallMsTotal,
      prefetch_issued: k.total("prefetch_issued"),
      prefetch_used: k.total("prefetch_used"),
      prefetch_wasted: k.total("prefetch_wasted"),
      prefetch_skipped: this.prefetchSkipped,
      hint_guesses: this.hintGuesses,
      hint_correct: this.hintCorrect,
      hint_needed: this.hintNeeded,
      read_errors: k.total("read_errors"),
      failed_acquires: this.failedAcquires,
      resident_experts: this.residentCount,
      resident_bytes: this.residentBytes(),
      budget_bytes: this.budgetBytes,
      capacity_experts: this.capacity,
    };
  }

  /** Everything for the metrics endpoint: totals, derived rates, per-layer and per-expert detail. */
  report(): StoreReport {
    const s = this.stats();
    const totals = {
      ...s,
      hit_rate: ratio(s.hits, s.hits + s.misses),
      // Served by the cache itself: resident without a read made for this step (prefetches that
      // landed in time are hits, but their reads were still needed).
      cache_hit_rate: ratio(s.cache_hits, s.hits + s.misses),
      // Resident, or already being read because a guess asked for it before the step did.
      covered_rate: ratio(s.hits + s.misses_inflight, s.hits + s.misses),
      // Of the prefetches whose fate is known (used by a step, or evicted unused), the share used.
      // Counted at resolution, so any window of two snapshots stays within 0..1.
      prefetch_precision: ratio(s.prefetch_used, s.prefetch_used + s.prefetch_wasted),
      // Of the experts steps needed from disk, the share prefetch had started reading ahead.
      prefetch_recall: ratio(s.prefetch_used, s.prefetch_used + (s.misses - s.misses_inflight)),
      // Of the experts the guesses named, the share the next step of that layer used.
      hint_accuracy: ratio(s.hint_correct, s.hint_guesses),
    };
    const layers: LayerReport[] = [];
    const resident = new Map<number, number[]>();
    for (const [l, e] of this.residentSet()) {
      const list = resident.get(l) ?? [];
      list.push(e);
      resident.set(l, list);
    }
    for (let l = 0; l < this.numLayers; l++) {
      if (!this.plans[l * this.numExperts]) continue;
      const k = this.counters;
      layers.push({
        layer: l,
        hits: k.layerTotal("hits", l),
        misses: k.layerTotal("misses", l),
        bytes_read: k.layerTotal("bytes_read", l),
        stall_ms: k.stallMs[l],
        prefetch_issued: k.layerTotal("prefetch_issued", l),
        prefetch_used: k.layerTotal("prefetch_used", l),
        resident: resident.get(l) ?? [],
        expert_hits: k.perExpert("hits", l),
        expert_misses: k.perExpert("misses", l),
      });
    }
    return {
      policy: this.policy.name,
      reader: this.reader.kind,
      prefetch: this.prefetchEnabled,
      budget_bytes: this.budgetBytes,
      capacity_experts: this.capacity,
      slot_bytes: this.slotBytes,
      expert_bytes: this.expertCost,
      total_experts: this.plans.filter((p) => p !== null).length,
      totals,
      layers,
    };
  }

  close(): void {
    this.closed = true;
    this.entries.clear();
    this.unadopted.clear();
    this.residentCount = 0;
    this.freeSlots.length = 0;
    this.slab = new Uint8Array(0);
    this.reader.close();
    this.ckpt.close();
  }
}

function noop(): void {}

/** Slots are allocated this many bytes at a time (never past the budget). */
const SLAB_BYTES = 32 * 1024 * 1024;

/**
 * Bytes in flight at or above which guesses beyond the next MoE layer are not read (see hint()).
 * Reads go to the device together (native AIO) and share its bandwidth, so a far guess slows the
 * reads needed sooner: with more than about one expert's worth in flight they wait (measured on
 * the Scout-like model at 50%: 3.6-4.0 ms of stall per token with 4 MiB, 4.0-4.4 with 12 MiB).
 */
const FAR_GUESS_BACKLOG_BYTES = 4 * 1024 * 1024;

/**
 * The accuracy guesses of a given confidence must have had to be read (see GuessGate). Against
 * reading every guess (.scratch A/Bs, 20-24 alternating 48-token requests per side), Scout-like
 * locality 50% / Maverick-like uniform 25%: +8% / +16% tok/s. 0.7, 0.8 and 0.95 (with an earlier,
 * slightly looser threshold rule) gave +1/+10, +6/+5 and +14/+14%; prefetch with the gate beat no
 * prefetch by 11% / 7%. Scored guesses are each layer's last (nearest) one, so farther guesses,
 * right less often at the same confidence, are judged by the next-layer standard: they are read
 * only while little is in flight anyway (FAR_GUESS_BACKLOG_BYTES).
 */
const GUESS_TARGET_ACCURACY = 0.9;

/** A promise that notes when someone first waits on it (await calls then()). */
class WaitTimedPromise<T> extends Promise<T> {
  onWait: (() => void) | null = null;
  // then() and friends return plain promises, not more of these.
  static override get [Symbol.species](): PromiseConstructor {
    return Promise;
  }
  // biome-ignore lint/suspicious/noThenProperty: a Promise subclass overrides then() to see the await.
  override then<A = T, B = never>(
    onFulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    this.onWait?.();
    this.onWait = null;
    return super.then(onFulfilled, onRejected);
  }
}

/** Bytes of a decoded expert that do not live in its slot (decode copied or converted them). */
function extraBytes(w: ExpertWeights, slot: Uint8Array): number {
  let n = 0;
  for (const m of [w.gate, w.up, w.down]) {
    if (m.data.buffer !== slot.buffer) n += m.data.byteLength;
    if (m.scales && m.scales.buffer !== slot.buffer) n += m.scales.byteLength;
  }
  return n;
}
