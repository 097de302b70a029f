import type { KvArray } from "../device/device.js";
import type { ModelConfig } from "../model/types.js";
import { type KvCache, type KvDtype, kvElementBytes, newKvArray } from "./kv-cache.js";

interface Block {
  id: number;
  key: string;
  parent: Block | null;
  children: number;
  /** [layer][k|v] rows for this block's tokens, one KV array (the caches' element type) of nLayers*2*blockTokens*kvDim. */
  kv: KvArray;
}

export interface PrefixCacheStats {
  blocks: number;
  bytes: number;
  capacityBytes: number;
  lookups: number;
  hitTokens: number;
  evictions: number;
}

/**
 * Prompt caching: KV of full token blocks in a prefix tree (a block is identified by its parent
 * block and its own tokens), so requests sharing a prefix (system prompt, earlier chat turns)
 * copy its K/V instead of recomputing it. Bounded in bytes; evicts least-recently-used leaves.
 */
export class PrefixCache {
  private readonly blocks = new Map<string, Block>();
  private nextId = 1;
  private readonly blockElems: number;
  private readonly kvDim: number;
  private lookups = 0;
  private hitTokens = 0;
  private evictions = 0;

  constructor(
    private readonly config: ModelConfig,
    readonly blockTokens: number,
    private readonly maxBytes: number,
    /** The element type of the caches it serves (blocks are stored as they are). */
    readonly kvDtype: KvDtype = "f32",
  ) {
    this.kvDim = config.numKvHeads * config.headDim;
    this.blockElems = config.numLayers * 2 * blockTokens * this.kvDim;
  }

  private get blockBytes(): number {
    return this.blockElems * kvElementBytes(this.kvDtype);
  }

  /**
   * Copy the longest cached prefix of `prompt` into the (empty) cache and return its length in
   * tokens. At least one prompt token is always left to compute, so the step yields logits.
   */
  restore(prompt: number[], cache: KvCache): number {
    this.checkDtype(cache);
    this.lookups++;
    const bt = this.blockTokens;
    const maxBlocks = Math.floor((prompt.length - 1) / bt);
    const found: Block[] = [];
    let parent: Block | null = null;
    for (let b = 0; b < maxBlocks; b++) {
      const block = this.blocks.get(blockKey(parent, prompt, b, bt));
      if (!block) break;
      found.push(block);
      parent = block;
    }
    if (found.length === 0) return 0;
    const tokens = found.length * bt;
    cache.reserve(tokens);
    const L = this.config.numLayers;
    const rows = bt * this.kvDim;
    found.forEach((block, b) => {
      for (let l = 0; l < L; l++) {
        cache.k[l].set(block.kv.subarray(2 * l * rows, (2 * l + 1) * rows), b * rows);
        cache.v[l].set(block.kv.subarray((2 * l + 1) * rows, (2 * l + 2) * rows), b * rows);
      }
      this.touch(block);
    });
    cache.length = tokens;
    this.hitTokens += tokens;
    return tokens;
  }

  /** After a prompt is prefilled: keep its full blocks (those not cached yet) for later requests. */
  store(prompt: number[], cache: KvCache): void {
    this.checkDtype(cache);
    const bt = this.blockTokens;
    const nBlocks = Math.floor(Math.min(prompt.length, cache.length) / bt);
    if (this.blockBytes > this.maxBytes) return;
    const L = this.config.numLayers;
    const rows = bt * this.kvDim;
    let parent: Block | null = null;
    for (let b = 0; b < nBlocks; b++) {
      const key = blockKey(parent, prompt, b, bt);
      let block = this.blocks.get(key);
      if (block) {
        this.touch(block);
      } else {
        if (!this.makeRoom(parent)) return;
        const kv = newKvArray(this.kvDtype, this.blockElems);
        for (let l = 0; l < L; l++) {
          kv.set(cache.k[l].subarray(b * rows, (b + 1) * rows), 2 * l * rows);
          kv.set(cache.v[l].subarray(b * rows, (b + 1) * rows), (2 * l + 1) * rows);
        }
        block = { id: this.nextId++, key, parent, children: 0, kv };
        if (parent) parent.children++;
        this.blocks.set(key, block);
      }
      parent = block;
    }
  }

  /** Copying blocks between arrays of two element types would convert values, not bits. */
  private checkDtype(cache: KvCache): void {
    if (cache.dtype !== this.kvDtype) {
      throw new Error(`prefix cache holds ${this.kvDtype} KV, the sequence's cache is ${cache.dtype}`);
    }
  }

  stats(): PrefixCacheStats {
    return {
      blocks: this.blocks.size,
      bytes: this.blocks.size * this.blockBytes,
      capacityBytes: this.maxBytes,
      lookups: this.lookups,
      hitTokens: this.hitTokens,
      evictions: this.evictions,
    };
  }

  clear(): void {
    this.blocks.clear();
  }

  /** Map order is recency order: re-insert on use. */
  private touch(block: Block): void {
    this.blocks.delete(block.key);
    this.blocks.set(block.key, block);
  }

  /** Evict LRU leaves until one more block fits; never the block we are about to extend. */
  private makeRoom(keep: Block | null): boolean {
    while ((this.blocks.size + 1) * this.blockBytes > this.maxBytes) {
      let victim: Block | undefined;
      for (const b of this.blocks.values()) {
        if (b.children === 0 && b !== keep) {
          victim = b;
          break;
        }
      }
      if (!victim) return false;
      this.blocks.delete(victim.key);
      if (victim.parent) victim.parent.children--;
      this.evictions++;
    }
    return true;
  }
}

function blockKey(parent: Block | null, prompt: number[], b: number, bt: number): string {
  return `${parent?.id ?? 0}|${prompt.slice(b * bt, (b + 1) * bt).join(",")}`;
}
