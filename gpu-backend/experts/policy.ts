/**
 * Eviction policies. The store tells a policy what happened (an expert was used, inserted,
 * evicted) and asks it for a victim among the experts it may evict; the store alone decides what
 * may be evicted (pinned and in-flight experts never are). Keys are layer * numExperts + expert.
 */
export interface EvictionPolicy {
  readonly name: string;
  /** A step used this resident expert (a hit, or right after its demand load). */
  onUse(key: number): void;
  /** The expert became resident (demand load or prefetch). */
  onInsert(key: number): void;
  onEvict(key: number): void;
  /** The expert to evict next among those `evictable` accepts, or undefined when none. */
  victim(evictable: (key: number) => boolean): number | undefined;
}

/** Least recently used: Map insertion order is the recency order (re-inserted on use). */
export class LruPolicy implements EvictionPolicy {
  readonly name = "lru";
  private readonly order = new Map<number, true>();
  onUse(key: number): void {
    if (this.order.delete(key)) this.order.set(key, true);
  }
  onInsert(key: number): void {
    this.order.delete(key);
    this.order.set(key, true);
  }
  onEvict(key: number): void {
    this.order.delete(key);
  }
  victim(evictable: (key: number) => boolean): number | undefined {
    for (const key of this.order.keys()) if (evictable(key)) return key;
    return undefined;
  }
}

/**
 * Frequency-aware LFU with aging. Use counts are kept for every expert, resident or not (a
 * history, as in TinyLFU), so an expert that was popular before its eviction comes back with its
 * count; all counts halve every `agingPeriod` uses so yesterday's favourites fade. The victim is
 * the resident expert with the lowest count, ties going to the least recently used. A prefetched
 * expert enters with the count it has: a guess does not make it valuable, only use does.
 */
export class LfuAgingPolicy implements EvictionPolicy {
  readonly name = "lfu";
  private readonly count: Float64Array;
  private readonly lastUse: Float64Array;
  private readonly resident = new Set<number>();
  private clock = 0;
  private sinceAging = 0;

  constructor(
    totalExperts: number,
    private readonly agingPeriod: number,
  ) {
    this.count = new Float64Array(totalExperts);
    this.lastUse = new Float64Array(totalExperts);
  }

  onUse(key: number): void {
    this.count[key] += 1;
    this.lastUse[key] = ++this.clock;
    if (++this.sinceAging >= this.agingPeriod) {
      this.sinceAging = 0;
      for (let i = 0; i < this.count.length; i++) this.count[i] *= 0.5;
    }
  }
  onInsert(key: number): void {
    this.resident.add(key);
    if (this.lastUse[key] === 0) this.lastUse[key] = ++this.clock;
  }
  onEvict(key: number): void {
    this.resident.delete(key);
  }
  victim(evictable: (key: number) => boolean): number | undefined {
    let best: number | undefined;
    for (const key of this.resident) {
      if (!evictable(key)) continue;
      if (
        best === undefined ||
        this.count[key] < this.count[best] ||
        (this.count[key] === this.count[best] && this.lastUse[key] < this.lastUse[best])
      ) {
        best = key;
      }
    }
    return best;
  }
}

export const POLICY_NAMES = ["lru", "lfu"] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

/** Build a policy by name (the `--policy` option). */
export function createPolicy(name: string, totalExperts: number, capacity: number): EvictionPolicy {
  switch (name) {
    case "lru":
      return new LruPolicy();
    case "lfu":
      // Age over a window of several cache-fulls of uses: long enough to learn popularity,
      // short enough to follow a change of topic.
      return new LfuAgingPolicy(totalExperts, Math.max(64, 8 * capacity));
    default:
      throw new RangeError(
        `unknown expert eviction policy ${JSON.stringify(name)}; known: ${POLICY_NAMES.join(", ")}`,
      );
  }
}
