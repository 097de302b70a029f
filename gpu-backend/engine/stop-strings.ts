/**
 * Holds back generated text that might be the start of a stop string, and cuts the text at the
 * first stop string. Stop strings are never emitted.
 */
export class StopStringFilter {
  private full = "";
  private emitted = 0;
  private readonly maxLen: number;
  stopped = false;

  constructor(private readonly stops: string[]) {
    this.maxLen = Math.max(0, ...stops.map((s) => s.length));
  }

  /** Add decoded text; returns the text that is now safe to emit. */
  push(delta: string): string {
    if (this.stopped) return "";
    this.full += delta;
    if (this.stops.length === 0) return this.take(this.full.length);
    const from = Math.max(0, this.emitted - this.maxLen + 1);
    let cut = -1;
    for (const s of this.stops) {
      const i = this.full.indexOf(s, from);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.stopped = true;
      return this.take(cut);
    }
    return this.take(this.full.length - this.heldBack());
  }

  /** Everything still held back (at the end of generation). */
  flush(): string {
    return this.stopped ? "" : this.take(this.full.length);
  }

  /** Length of the longest suffix of the text that is a proper prefix of some stop string. */
  private heldBack(): number {
    const tail = this.full.slice(Math.max(this.emitted, this.full.length - this.maxLen));
    for (let n = tail.length; n > 0; n--) {
      const suffix = tail.slice(tail.length - n);
      if (this.stops.some((s) => s.length > n && s.startsWith(suffix))) return n;
    }
    return 0;
  }

  private take(end: number): string {
    const out = this.full.slice(this.emitted, end);
    this.emitted = Math.max(this.emitted, end);
    return out;
  }
}
