// Timers behind injected latency and held (timed-out) responses, all cancelled when the emulator closes.

export class Timers {
  private readonly pending = new Set<NodeJS.Timeout>();
  private readonly cleanups = new Set<() => void>();

  /** Runs `fn` when the emulator closes (intervals and other resources not made with after()); returns its removal. */
  onClear(fn: () => void): () => void {
    this.cleanups.add(fn);
    return () => this.cleanups.delete(fn);
  }

  after(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.pending.delete(t);
      fn();
    }, ms);
    this.pending.add(t);
  }

  sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => this.after(ms, resolve));
  }

  clear(): void {
    for (const t of this.pending) clearTimeout(t);
    this.pending.clear();
    for (const fn of this.cleanups) fn();
    this.cleanups.clear();
  }
}
