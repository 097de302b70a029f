import type { Device, MatmulJob, Weight } from "../device/device.js";
import type { ExpertProvider } from "../experts/provider.js";
import type { Checkpoint, ExpertWeights, ModelConfig } from "../model/types.js";
import { dequantizeRow } from "./dequantize-row.js";
import type { KvCache } from "./kv-cache.js";

interface LayerWeights {
  attnNorm: Float32Array;
  ffnNorm: Float32Array;
  q: Weight;
  k: Weight;
  v: Weight;
  o: Weight;
  qNorm: Float32Array | null;
  kNorm: Float32Array | null;
  router: Weight | null;
  shared: { gate: Weight; up: Weight; down: Weight } | null;
  dense: { gate: Weight; up: Weight; down: Weight } | null;
}

/** Tokens computed together in one prefill pass; longer prompts are split into chunks of this size. */
export const PREFILL_CHUNK = 256;

/**
 * Decoder layers ahead whose MoE experts are guessed and prefetched (lazy expert store only). The
 * time a read has to land is the compute of the layers in between, so the window counts decoder
 * layers: 4 MoE layers when every layer is MoE (Scout-like), 2 when every other one is (Maverick).
 * Measured on the Scout-like model at 50% budget: stall hidden ~0.2 with 2 layers, ~0.45 with 4.
 */
const PREFETCH_LAYERS = 4;

/** Scratch buffers for up to `n` tokens, reused across steps. */
class Scratch {
  constructor(
    readonly n: number,
    c: ModelConfig,
  ) {
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    const ffn = Math.max(c.expertFfn, c.denseFfn);
    this.x = new Float32Array(n * c.hiddenSize);
    this.xn = new Float32Array(n * c.hiddenSize);
    this.q = new Float32Array(n * qDim);
    this.k = new Float32Array(n * kvDim);
    this.v = new Float32Array(n * kvDim);
    this.attn = new Float32Array(n * qDim);
    this.proj = new Float32Array(n * c.hiddenSize);
    this.gate = new Float32Array(n * ffn);
    this.up = new Float32Array(n * ffn);
    this.routerLogits = new Float32Array(n * Math.max(1, c.numExperts));
    this.expIds = new Int32Array(n * Math.max(1, c.topK));
    this.expWeights = new Float32Array(n * Math.max(1, c.topK));
    this.guessLogits = new Float32Array(n * Math.max(1, c.numExperts));
    this.guessIds = new Int32Array(n * Math.max(1, c.topK));
    this.guessWeights = new Float32Array(n * Math.max(1, c.topK));
    this.gathered = new Float32Array(n * c.hiddenSize);
    this.expertOut = new Float32Array(n * c.hiddenSize);
    const pairs = n * Math.max(1, c.topK);
    this.pairX = new Float32Array(pairs * c.hiddenSize);
    this.pairGate = new Float32Array(pairs * c.expertFfn);
    this.pairUp = new Float32Array(pairs * c.expertFfn);
    this.pairOut = new Float32Array(pairs * c.hiddenSize);
    this.pairRows = new Int32Array(pairs);
    this.pairScales = new Float32Array(pairs);
    this.positions = new Int32Array(n);
  }
  x: Float32Array;
  xn: Float32Array;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  attn: Float32Array;
  proj: Float32Array;
  gate: Float32Array;
  up: Float32Array;
  routerLogits: Float32Array;
  expIds: Int32Array;
  expWeights: Float32Array;
  guessLogits: Float32Array;
  guessIds: Int32Array;
  guessWeights: Float32Array;
  gathered: Float32Array;
  expertOut: Float32Array;
  /** Every (token, slot) pair of a step, grouped by expert: inputs, FFN activations, outputs. */
  pairX: Float32Array;
  pairGate: Float32Array;
  pairUp: Float32Array;
  pairOut: Float32Array;
  /** Per (token, slot) pair in expert order: its token's row and its router weight. */
  pairRows: Int32Array;
  pairScales: Float32Array;
  positions: Int32Array;
}

/**
 * Dense weights in the order a step reads them, for the device's idle-time prefetch (see
 * Device.prefetchWhenIdle): those of a whole layer, and what is left of it once q/k/v are done.
 */
interface ReadOrder {
  layer: Weight[];
  afterQkv: Weight[];
}

export interface BatchItem {
  tokens: number[];
  cache: KvCache;
  wantLogits: boolean;
  /** Logits of every token of the item, not only the last (prompt logprobs). */
  allLogits?: boolean;
}

/** Where one sequence's tokens sit in a batched step. */
interface Segment {
  start: number;
  len: number;
  cache: KvCache;
  pos0: number;
}

function vector(w: Weight): Float32Array {
  if (w.dtype !== "f32") throw new Error(`expected an f32 vector, got ${w.dtype}`);
  return new Float32Array(w.data.buffer, w.data.byteOffset, w.rows * w.cols);
}

/**
 * The decoder-only MoE transformer of the three families, orchestrated in TypeScript over the
 * device's ops. Dense weights are loaded eagerly; routed experts come from the ExpertProvider.
 */
export class MoeTransformer {
  readonly config: ModelConfig;
  private readonly embed: Weight;
  private readonly finalNorm: Float32Array;
  private readonly lmHead: Weight;
  private readonly layers: LayerWeights[] = [];
  private readonly scratch = new Map<number, Scratch>();
  private readonly readOrder: ReadOrder[];

  constructor(
    ckpt: Checkpoint,
    private readonly device: Device,
    private readonly experts: ExpertProvider,
  ) {
    const c = ckpt.config;
    this.config = c;
    experts.useDevice?.(device);
    const load = (name: string) => device.upload(ckpt.loadDense(name));
    const loadVec = (name: string) => vector(ckpt.loadDense(name));
    // The embedding table is only read one row per token: keep it as stored (no device copy).
    this.embed = ckpt.loadDense("embed");
    this.finalNorm = loadVec("norm");
    this.lmHead = c.tieWordEmbeddings || !ckpt.has("lm_head") ? device.upload(this.embed) : load("lm_head");
    for (let l = 0; l < c.numLayers; l++) {
      const p = `l${l}.`;
      const moe = c.moeLayers[l];
      this.layers.push({
        attnNorm: loadVec(`${p}attn_norm`),
        ffnNorm: loadVec(`${p}ffn_norm`),
        q: load(`${p}q`),
        k: load(`${p}k`),
        v: load(`${p}v`),
        o: load(`${p}o`),
        qNorm: c.headQkNorm ? loadVec(`${p}q_norm`) : null,
        kNorm: c.headQkNorm ? loadVec(`${p}k_norm`) : null,
        router: moe ? load(`${p}router`) : null,
        shared:
          moe && c.sharedExpert
            ? { gate: load(`${p}shexp.gate`), up: load(`${p}shexp.up`), down: load(`${p}shexp.down`) }
            : null,
        dense: moe
          ? null
          : { gate: load(`${p}mlp.gate`), up: load(`${p}mlp.up`), down: load(`${p}mlp.down`) },
      });
    }
    this.readOrder = this.layers.map((w) => {
      const ffn = w.shared ?? w.dense;
      const afterQkv = [w.o, ...(w.router ? [w.router] : []), ...(ffn ? [ffn.gate, ffn.up, ffn.down] : [])];
      return { layer: [w.q, w.k, w.v, ...afterQkv], afterQkv };
    });
  }

  /**
   * Tells the device which weights the step reads next: its idle threads pull them into the
   * caches while this thread runs the small ops and JS between matmuls (16-stream decode ~3%
   * faster in the ~45 GB/s state; single streams and steps waiting for expert reads gain nothing).
   */
  private readNext(ws: readonly Weight[]): void {
    this.device.prefetchWhenIdle?.(ws);
  }

  private scratchFor(n: number): Scratch {
    const size = n <= 1 ? 1 : PREFILL_CHUNK;
    let s = this.scratch.get(size);
    if (!s) {
      s = new Scratch(size, this.config);
      this.scratch.set(size, s);
    }
    return s;
  }

  /**
   * Run `tokens` at positions cache.length.. through the model (in chunks of PREFILL_CHUNK),
   * appending their K/V to the cache; returns the last token's logits.
   */
  async forward(tokens: number[], cache: KvCache): Promise<Float32Array> {
    let logits: Float32Array[] = [];
    for (let i = 0; i < tokens.length; i += PREFILL_CHUNK) {
      const chunk = tokens.slice(i, i + PREFILL_CHUNK);
      logits = await this.forwardBatch([
        { tokens: chunk, cache, wantLogits: i + PREFILL_CHUNK >= tokens.length },
      ]);
    }
    return logits[0];
  }

  /**
   * One step over several sequences at once (continuous batching): their tokens share every
   * dense matmul and each routed expert runs once over all tokens that picked it. Each item's
   * tokens are placed at positions cache.length.. of its own cache. Returns, in item order, the
   * logits of the last token of every item with wantLogits (of every token, for items with
   * allLogits). At most PREFILL_CHUNK tokens in all.
   */
  async forwardBatch(items: BatchItem[]): Promise<Float32Array[]> {
    const c = this.config;
    const d = this.device;
    const H = c.hiddenSize;
    const n = items.reduce((a, it) => a + it.tokens.length, 0);
    if (n === 0) return [];
    if (n > PREFILL_CHUNK) throw new RangeError(`a step holds at most ${PREFILL_CHUNK} tokens, got ${n}`);
    const s = this.scratchFor(n);
    const segs: Segment[] = [];
    let t = 0;
    for (const it of items) {
      it.cache.reserve(it.cache.length + it.tokens.length);
      segs.push({ start: t, len: it.tokens.length, cache: it.cache, pos0: it.cache.length });
      for (let i = 0; i < it.tokens.length; i++, t++) {
        dequantizeRow(this.embed, it.tokens[i], s.x.subarray(t * H, (t + 1) * H));
        s.positions[t] = it.cache.length + i;
      }
    }
    for (let l = 0; l < c.numLayers; l++) {
      const w = this.layers[l];
      if (l > 0) this.readNext(this.readOrder[l].layer); // layer 0's was hinted after the last step
      d.rmsnorm(s.xn, s.x, w.attnNorm, n, H, c.rmsNormEps);
      this.attention(l, w, s, n, segs);
      d.addScaled(s.x, s.proj, n * H);
      d.rmsnorm(s.xn, s.x, w.ffnNorm, n, H, c.rmsNormEps);
      if (w.dense) this.mlp(w.dense, s.xn, s.proj, n, c.denseFfn, s);
      else await this.moe(l, w, s, n);
      d.addScaled(s.x, s.proj, n * H);
    }
    for (const seg of segs) seg.cache.length = seg.pos0 + seg.len;
    // Final norm + LM head only for the rows whose logits are wanted, batched into one matmul.
    const want = items.flatMap((it, i) => {
      const { start, len } = segs[i];
      if (it.allLogits) return Array.from({ length: len }, (_, k) => start + k);
      return it.wantLogits ? [start + len - 1] : [];
    });
    if (want.length === 0) return [];
    this.readNext([this.lmHead]);
    for (const [j, row] of want.entries()) s.gathered.set(s.x.subarray(row * H, (row + 1) * H), j * H);
    d.rmsnorm(s.xn, s.gathered, this.finalNorm, want.length, H, c.rmsNormEps);
    const logits = new Float32Array(want.length * c.vocabSize);
    d.matmul(logits, s.xn, want.length, this.lmHead);
    // The next step starts with layer 0 once the scheduler has sampled and streamed this one's tokens.
    this.readNext(this.readOrder[0].layer);
    return want.map((_, j) => logits.subarray(j * c.vocabSize, (j + 1) * c.vocabSize));
  }

  /** Self-attention of layer l for n tokens; result (after o_proj) in s.proj. */
  private attention(l: number, w: LayerWeights, s: Scratch, n: number, segs: Segment[]): void {
    const c = this.config;
    const d = this.device;
    const hd = c.headDim;
    const qDim = c.numHeads * hd;
    const kvDim = c.numKvHeads * hd;
    d.matmulMany([
      { out: s.q, x: s.xn, n, w: w.q },
      { out: s.k, x: s.xn, n, w: w.k },
      { out: s.v, x: s.xn, n, w: w.v },
    ]);
    this.readNext(this.readOrder[l].afterQkv);
    if (w.qNorm && w.kNorm) {
      // Qwen3: learned RMSNorm per head, before RoPE.
      d.rmsnorm(s.q, s.q, w.qNorm, n * c.numHeads, hd, c.rmsNormEps);
      d.rmsnorm(s.k, s.k, w.kNorm, n * c.numKvHeads, hd, c.rmsNormEps);
    }
    const positions = s.positions.subarray(0, n);
    const useRope = c.ropeLayers[l];
    if (useRope) {
      d.rope(s.q, n, c.numHeads, hd, positions, c.rope.invFreq, c.rope.style);
      d.rope(s.k, n, c.numKvHeads, hd, positions, c.rope.invFreq, c.rope.style);
      if (c.l2QkNorm) {
        // Llama 4: parameter-free RMS norm of q and k after RoPE, on RoPE layers only.
        d.rmsnorm(s.q, s.q, null, n * c.numHeads, hd, c.rmsNormEps);
        d.rmsnorm(s.k, s.k, null, n * c.numKvHeads, hd, c.rmsNormEps);
      }
    } else if (c.attnTemperature) {
      // Llama 4 NoPE layers: scale queries up with the log of the position (temperature tuning).
      const { floorScale, attnScale } = c.attnTemperature;
      for (let t = 0; t < n; t++) {
        const scale = 1 + attnScale * Math.log1p(Math.floor((positions[t] + 1) / floorScale));
        if (scale === 1) continue; // every position below floorScale
        const row = s.q.subarray(t * qDim, (t + 1) * qDim);
        for (let i = 0; i < qDim; i++) row[i] *= scale;
      }
    }
    // The device stores each sequence's new K/V rows in its cache as part of the attention call.
    d.attentionMany(
      segs.map(({ start, len, cache, pos0 }) => ({
        q: s.q.subarray(start * qDim, (start + len) * qDim),
        kCache: cache.k[l],
        vCache: cache.v[l],
        kNew: s.k.subarray(start * kvDim, (start + len) * kvDim),
        vNew: s.v.subarray(start * kvDim, (start + len) * kvDim),
        out: s.attn.subarray(start * qDim, (start + len) * qDim),
        nTok: len,
        nHeads: c.numHeads,
        nKvHeads: c.numKvHeads,
        headDim: hd,
        pos0,
        scale: 1 / Math.sqrt(hd),
        chunkSize: useRope ? c.attentionChunk : 0,
        window: c.slidingWindow,
      })),
    );
    d.matmul(s.proj, s.attn, n, w.o);
  }

  /** SwiGLU MLP: out[n,H] = down(silu(gate x) * up x). */
  private mlp(
    m: { gate: Weight; up: Weight; down: Weight },
    x: Float32Array,
    out: Float32Array,
    n: number,
    ffn: number,
    s: Scratch,
  ): void {
    const d = this.device;
    d.matmulMany([
      { out: s.gate, x, n, w: m.gate },
      { out: s.up, x, n, w: m.up },
    ]);
    d.swiglu(s.gate, s.gate, s.up, n * ffn);
    d.matmul(out, s.gate, n, m.down);
  }

  /** Routed experts (+ the shared expert) for n tokens; result in s.proj. */
  private async moe(l: number, w: LayerWeights, s: Scratch, n: number): Promise<void> {
    const c = this.config;
    const d = this.device;
    const H = c.hiddenSize;
    const k = c.topK;
    d.matmul(s.routerLogits, s.xn, n, w.router!);
    d.route(s.routerLogits, n, c.numExperts, k, c.routing, c.normTopK, s.expIds, s.expWeights);
    // Group the (token, slot) pairs by expert so each expert runs once over all its tokens.
    const byExpert = new Map<number, number[]>();
    for (let i = 0; i < n * k; i++) {
      const e = s.expIds[i];
      let list = byExpert.get(e);
      if (!list) {
        list = [];
        byExpert.set(e, list);
      }
      list.push(i);
    }
    const ids = [...byExpert.keys()].sort((a, b) => a - b);
    // All weights already resident (eager, or a lazy store with nothing to read): the shared expert
    // and every routed expert run together, two dispatches for the whole layer.
    const resident = this.experts.acquireResident?.(l, ids);
    if (resident) {
      if (this.experts.wantsHints) this.hintNextLayer(l, s, n);
      this.runExpertsFused(
        w.shared,
        resident,
        ids.map((e) => byExpert.get(e)!),
        s,
        n,
      );
      return;
    }
    // Split into groups a lazy store can hold at once; summation order stays by expert id.
    const per = this.experts.maxExpertsPerAcquire ?? ids.length;
    const groups: number[][] = [];
    for (let i = 0; i < ids.length; i += per) groups.push(ids.slice(i, i + per));
    // Start the reads, then guess the next MoE layer's experts and compute the shared expert
    // while the I/O threads work.
    let pending = this.experts.acquire(l, groups[0]);
    if (this.experts.wantsHints) this.hintNextLayer(l, s, n);
    if (w.shared) this.mlp(w.shared, s.xn, s.proj, n, c.expertFfn, s);
    else s.proj.fill(0, 0, n * H);
    for (let gi = 0; gi < groups.length; gi++) {
      const weights = await pending;
      groups[gi].forEach((e, j) => {
        this.runExpert(weights[j], byExpert.get(e)!, s);
      });
      // Only now: a group's weights stay valid until the next acquire().
      if (gi + 1 < groups.length) pending = this.experts.acquire(l, groups[gi + 1]);
    }
  }

  /** Lists the pairs' token rows and router weights in s.pairRows / s.pairScales from `at`. */
  private listPairs(pairs: number[], s: Scratch, at: number): void {
    const k = this.config.topK;
    for (let j = 0; j < pairs.length; j++) {
      s.pairRows[at + j] = Math.floor(pairs[j] / k);
      s.pairScales[at + j] = s.expWeights[pairs[j]];
    }
  }

  /**
   * Copies the token rows of the `count` pairs listed from `at` into `dst` (scaled by the router
   * weight where Llama 4 does so: it scales an expert's input, the others its output).
   */
  private gatherPairs(s: Scratch, at: number, count: number, dst: Float32Array): void {
    const scales = this.config.scoreOnInput ? s.pairScales.subarray(at) : null;
    this.device.gatherRows(dst, s.xn, s.pairRows.subarray(at), count, this.config.hiddenSize, scales);
  }

  /** Adds the expert outputs (rows of `out`) of the pairs listed from `at` into their tokens' rows of s.proj. */
  private scatterPairs(s: Scratch, at: number, count: number, out: Float32Array): void {
    const scales = this.config.scoreOnInput ? null : s.pairScales.subarray(at);
    this.device.scatterAddRows(s.proj, out, s.pairRows.subarray(at), count, this.config.hiddenSize, scales);
  }

  /**
   * Shared expert + routed experts (pairs[i] routed to weights[i]) with one dispatch for every
   * gate/up product and one for every down product. Same per-row arithmetic and the same order of
   * additions into s.proj as the shared-then-runExpert path, so the results are identical.
   */
  private runExpertsFused(
    shared: LayerWeights["shared"],
    weights: ExpertWeights[],
    pairs: number[][],
    s: Scratch,
    n: number,
  ): void {
    const c = this.config;
    const d = this.device;
    const H = c.hiddenSize;
    const F = c.expertFfn;
    const up: MatmulJob[] = [];
    const down: MatmulJob[] = [];
    if (shared) {
      up.push({ out: s.gate, x: s.xn, n, w: shared.gate }, { out: s.up, x: s.xn, n, w: shared.up });
      down.push({ out: s.proj, x: s.gate, n, w: shared.down });
    }
    let r = 0;
    for (const list of pairs) {
      this.listPairs(list, s, r);
      r += list.length;
    }
    this.gatherPairs(s, 0, r, s.pairX);
    r = 0;
    for (const [i, list] of pairs.entries()) {
      const m = list.length;
      const x = s.pairX.subarray(r * H, (r + m) * H);
      const g = s.pairGate.subarray(r * F, (r + m) * F);
      up.push(
        { out: g, x, n: m, w: weights[i].gate },
        { out: s.pairUp.subarray(r * F, (r + m) * F), x, n: m, w: weights[i].up },
      );
      down.push({ out: s.pairOut.subarray(r * H, (r + m) * H), x: g, n: m, w: weights[i].down });
      r += m;
    }
    d.matmulMany(up);
    if (shared) d.swiglu(s.gate, s.gate, s.up, n * F);
    d.swiglu(s.pairGate, s.pairGate, s.pairUp, r * F);
    d.matmulMany(down);
    if (!shared) s.proj.fill(0, 0, n * H);
    this.scatterPairs(s, 0, r, s.pairOut);
  }

  /** One expert over the (token, slot) pairs routed to it; adds its weighted output into s.proj. */
  private runExpert(weights: ExpertWeights, pairs: number[], s: Scratch): void {
    this.listPairs(pairs, s, 0);
    this.gatherPairs(s, 0, pairs.length, s.gathered);
    this.mlp(weights, s.gathered, s.expertOut, pairs.length, this.config.expertFfn, s);
    this.scatterPairs(s, 0, pairs.length, s.expertOut);
  }

  /**
   * Prefetch guess: apply the routers of the MoE layers among the next PREFETCH_LAYERS layers to
   * this layer's MoE input (hidden states change little between nearby layers) and hint their
   * top-k experts, nearest layer first, most-picked expert first.
   */
  private hintNextLayer(l: number, s: Scratch, n: number): void {
    const c = this.config;
    const d = this.device;
    for (let next = l + 1; next <= l + PREFETCH_LAYERS && next < c.numLayers; next++) {
      if (!c.moeLayers[next]) continue;
      d.matmul(s.guessLogits, s.xn, n, this.layers[next].router!);
      d.route(s.guessLogits, n, c.numExperts, c.topK, c.routing, c.normTopK, s.guessIds, s.guessWeights);
      const votes = new Map<number, { n: number; margin: number }>();
      for (let t = 0; t < n; t++) {
        const ids = s.guessIds.subarray(t * c.topK, (t + 1) * c.topK);
        const row = s.guessLogits.subarray(t * c.numExperts, (t + 1) * c.numExperts);
        // Confidence: how far the pick's logit beats the best expert this token left out.
        let leftOut = Number.NEGATIVE_INFINITY;
        for (let e = 0; e < c.numExperts; e++) if (row[e] > leftOut && !ids.includes(e)) leftOut = row[e];
        for (const e of ids) {
          const v = votes.get(e);
          const margin = row[e] - leftOut;
          if (v) {
            v.n++;
            v.margin = Math.max(v.margin, margin);
          } else votes.set(e, { n: 1, margin });
        }
      }
      const ranked = [...votes.entries()].sort((a, b) => b[1].n - a[1].n || a[0] - b[0]);
      this.experts.hint(
        next,
        ranked.map(([e]) => e),
        ranked.map(([, v]) => v.margin),
      );
    }
  }
}
