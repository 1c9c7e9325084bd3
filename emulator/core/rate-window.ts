// Sliding 1-second windows: the per-(account, API) QPS limiter and the "busiest second" meter of the stats.

const WINDOW_MS = 1000;

/**
 * Admits at most `limit` arrivals in any window (t - 1000 ms, t]. A ring of the last `limit` admitted
 * arrival times makes each decision O(1): the call is admitted iff the limit-th most recent admission
 * is at least 1000 ms old. Refused arrivals are not recorded, so a client hammering a full window
 * does not push its own recovery further away.
 */
class SlidingWindowLimiter {
  private readonly ring: Float64Array;
  private next = 0;

  constructor(readonly limit: number) {
    // A fractional limit rounds down (at least 1 per second); an infinite one needs no ring.
    const size = Number.isFinite(limit) ? Math.max(1, Math.min(Math.floor(limit), 1_000_000)) : 1;
    this.ring = new Float64Array(size).fill(-Infinity);
  }

  tryAcquire(nowMs: number): boolean {
    if (!Number.isFinite(this.limit)) return true;
    const oldest = this.ring[this.next] as number;
    if (nowMs - oldest < WINDOW_MS) return false;
    this.ring[this.next] = nowMs;
    this.next = (this.next + 1) % this.ring.length;
    return true;
  }
}

/** Tracks the largest number of events seen in any sliding 1-second window. */
export class WindowPeak {
  private times: number[] = [];
  private head = 0;
  peak = 0;

  record(nowMs: number): void {
    this.times.push(nowMs);
    while (nowMs - (this.times[this.head] as number) >= WINDOW_MS) this.head++;
    const inWindow = this.times.length - this.head;
    if (inWindow > this.peak) this.peak = inWindow;
    if (this.head > 4096 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }
}

/** One limiter per (account, API), created on first use; limits are fixed for the emulator's lifetime. */
export class RateLimiterRegistry {
  private readonly limiters = new Map<string, SlidingWindowLimiter>();

  constructor(private readonly limits: Record<string, number>) {}

  limit(api: string): number {
    return this.limits[api] ?? Infinity;
  }

  tryAcquire(api: string, account: string, nowMs: number): boolean {
    const key = `${account}\u0000${api}`;
    let limiter = this.limiters.get(key);
    if (limiter === undefined) {
      limiter = new SlidingWindowLimiter(this.limit(api));
      this.limiters.set(key, limiter);
    }
    return limiter.tryAcquire(nowMs);
  }
}
