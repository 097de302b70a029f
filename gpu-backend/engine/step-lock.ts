/**
 * Serialises model steps across concurrent requests in FIFO order, so sequences interleave one
 * step at a time (each has its own KV cache) and no request starves another.
 */
export class StepLock {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise((r) => {
      release = r;
    });
    await prev;
    try {
      return await fn();
    } finally {
      // Let the event loop flush streamed tokens before the next step starts.
      setImmediate(release);
    }
  }
}
