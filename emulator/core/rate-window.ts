// Sliding 1-second windows: the per-(account, API) QPS limiter, the per-source-IP ceiling of a product, and the
// "busiest second" meter of the stats.

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

/**
 * The per-source-IP ceiling of products that have one: every verified call from an IP to any of the product's APIs
 * counts, throttled or not. The cloud blocks an IP that goes over; so does this: for `blockMs` its calls to the
 * product are cut off (the connection is dropped: the answer a blocked client gets is not documented).
 */
export class SourceIpGuard {
  private readonly windows = new Map<string, SlidingWindowLimiter>();
  private readonly peaks = new Map<string, WindowPeak>();
  private readonly blockedUntil = new Map<string, number>();
  private readonly blocks = new Map<string, number>();

  constructor(
    /** Product of each API that has a ceiling. */
    private readonly productOf: ReadonlyMap<string, string>,
    private readonly limits: Readonly<Record<string, number>>,
    private readonly blockMs: number,
  ) {}

  /** Records the arrival; false when the IP is (now) blocked for the API's product. */
  admit(api: string, ip: string, nowMs: number): boolean {
    const product = this.productOf.get(api);
    if (product === undefined) return true;
    const key = `${product}\u0000${ip}`;
    let peak = this.peaks.get(key);
    if (!peak) this.peaks.set(key, (peak = new WindowPeak()));
    peak.record(nowMs);
    if ((this.blockedUntil.get(key) ?? -Infinity) > nowMs) return false;
    let window = this.windows.get(key);
    if (!window) this.windows.set(key, (window = new SlidingWindowLimiter(this.limits[product] ?? Infinity)));
    if (window.tryAcquire(nowMs)) return true;
    this.blockedUntil.set(key, nowMs + this.blockMs);
    this.blocks.set(key, (this.blocks.get(key) ?? 0) + 1);
    return false;
  }

  /** Per product and source IP: the ceiling, the busiest 1-second window of arrivals, and how often the IP was blocked. */
  snapshot(): Record<string, Record<string, { limit: number; busiest_window: number; blocked: number }>> {
    const out: Record<string, Record<string, { limit: number; busiest_window: number; blocked: number }>> = {};
    for (const [key, peak] of this.peaks) {
      const [product, ip] = key.split('\u0000') as [string, string];
      (out[product] ??= {})[ip] = { limit: this.limits[product] ?? Infinity, busiest_window: peak.peak, blocked: this.blocks.get(key) ?? 0 };
    }
    return out;
  }

  reset(): void {
    this.peaks.clear();
    this.blocks.clear();
  }
}
