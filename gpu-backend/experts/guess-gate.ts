/**
 * Which prefetch guesses are worth a read. A wrong guess costs a whole expert read (disk time the
 * reads a step needs wait behind) and evicts a resident expert; a right one saves only the part
 * of its read that its lead time covers. The router's own margin says how likely a guess is to be
 * right (measured: Maverick-like uniform routing, next-MoE-layer guesses right 75% of the time
 * overall, 90% for the most confident 60%), but its scale differs between models, so the gate
 * learns it: it keeps the latest guesses' confidence and outcome and reads a guess only where
 * guesses of about that confidence were right at least `target` of the time.
 */
export class GuessGate {
  private readonly conf: Float64Array;
  private readonly used: Uint8Array;
  private count = 0;
  private sinceUpdate = 0;
  private threshold = Number.NEGATIVE_INFINITY;

  /**
   * @param target accuracy a guess's neighbourhood must reach to be read
   * @param window how many guesses around a confidence estimate its accuracy
   * @param history how many outcomes are kept (the newest replace the oldest)
   */
  constructor(
    readonly target: number,
    private readonly window = 32,
    history = 256,
  ) {
    this.conf = new Float64Array(history);
    this.used = new Uint8Array(history);
  }

  /** The lowest confidence read now (-Infinity until half the history is known: read all; +Infinity: none). */
  get minConfidence(): number {
    return this.threshold;
  }

  /** A guess with unknown confidence is always read. */
  worthReading(confidence: number | undefined): boolean {
    return confidence === undefined || confidence >= this.threshold;
  }

  /** One scored guess: its confidence and whether the step it was for used that expert. */
  record(confidence: number, used: boolean): void {
    const i = this.count % this.conf.length;
    this.conf[i] = confidence;
    this.used[i] = used ? 1 : 0;
    this.count++;
    if (++this.sinceUpdate >= this.window && this.count >= this.conf.length / 2) {
      this.sinceUpdate = 0;
      this.update();
    }
  }

  /**
   * Accuracy grows with confidence, so the threshold is where it crosses the target: the lowest
   * confidence whose `window` neighbours (by confidence, centred on it) were right often enough.
   */
  private update(): void {
    const n = Math.min(this.count, this.conf.length);
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => this.conf[a] - this.conf[b]);
    const w = Math.min(this.window, n);
    let right = 0;
    for (let j = 0; j < w; j++) right += this.used[order[j]];
    for (let start = 0; ; start++) {
      if (right >= this.target * w) {
        this.threshold = this.conf[order[start + (w >> 1)]];
        return;
      }
      if (start + w >= n) break;
      right += this.used[order[start + w]] - this.used[order[start]];
    }
    // Not even the most confident guesses reach the target: read none. They are still scored,
    // so the gate opens again once they improve (or, when a noisy window closed it, at one of the
    // next updates, 32 guesses apart).
    this.threshold = Number.POSITIVE_INFINITY;
  }
}
