/** Counters kept per (layer, expert) and summed on demand: every number is exact, nothing sampled. */
export const EXPERT_COUNTERS = [
  "hits",
  "misses",
  "bytes_read",
  "loads",
  "evictions",
  "prefetch_issued",
  "prefetch_used",
  "prefetch_wasted",
  "read_errors",
] as const;
export type ExpertCounter = (typeof EXPERT_COUNTERS)[number];

export class PagingCounters {
  private readonly data: Record<ExpertCounter, Float64Array>;
  /** Stall is a property of a step (one layer), not of one expert. */
  readonly stallMs: Float64Array;

  constructor(
    readonly numLayers: number,
    readonly numExperts: number,
  ) {
    const n = numLayers * numExperts;
    this.data = Object.fromEntries(EXPERT_COUNTERS.map((c) => [c, new Float64Array(n)])) as Record<
      ExpertCounter,
      Float64Array
    >;
    this.stallMs = new Float64Array(numLayers);
  }

  add(counter: ExpertCounter, key: number, amount = 1): void {
    this.data[counter][key] += amount;
  }

  total(counter: ExpertCounter): number {
    let s = 0;
    for (const v of this.data[counter]) s += v;
    return s;
  }

  layerTotal(counter: ExpertCounter, layer: number): number {
    const a = this.data[counter];
    let s = 0;
    for (let e = 0; e < this.numExperts; e++) s += a[layer * this.numExperts + e];
    return s;
  }

  perExpert(counter: ExpertCounter, layer: number): number[] {
    return Array.from(this.data[counter].subarray(layer * this.numExperts, (layer + 1) * this.numExperts));
  }
}

/** Share that avoids 0/0: an empty denominator reads as 0. */
export function ratio(num: number, den: number): number {
  return den > 0 ? num / den : 0;
}
