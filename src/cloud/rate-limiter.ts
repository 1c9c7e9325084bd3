// Per (account, API) rate limiter that guarantees no sliding 1-second window ever holds more than `rate` call starts,
// retries included, while still reaching >= 99% of the rate (Bottleneck tops out near 400 jobs/s: see README, design notes).
//
// Guarantee: starts are kept in a ring of the last `rate` start times; a call may start only when the start `rate`
// calls ago is at least `windowMs + guardMs` in the past. The guard absorbs jitter between our start and the cloud's
// arrival clock. A small token bucket paces starts evenly so the quota is not spent in one burst per second.

/**
 * Default margin added to each 1-second window. The limiter alone sustains 99.4% of any rate with a 6 ms margin,
 * but the cloud counts arrivals, not our starts: measured here, arrival jitter between processes on a busy 2-core
 * machine reached 30 ms. 20 ms (98% of the quota) kept the emulator from throttling; accounts can tune it.
 */
export const DEFAULT_GUARD_MS = 20;

export interface RateLimiterOptions {
  /** Calls per window. */
  rate: number;
  windowMs?: number;
  /** Extra margin added to the window; throughput at saturation is windowMs / (windowMs + guardMs) of `rate`. */
  guardMs?: number;
  /** Largest burst of back-to-back starts, in calls (default: 2% of the rate, at least 1). */
  burst?: number;
  now?: () => number;
  onQueueDepth?: (depth: number) => void;
}

interface Waiter {
  start: () => void;
  onSettled?: () => void;
  reject: (err: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
  settled: boolean;
}

export class RateLimitAbortedError extends Error {
  constructor() {
    super('rate-limited call aborted before it started (deadline reached or shutting down)');
    this.name = 'RateLimitAbortedError';
  }
}

export class WindowRateLimiter {
  readonly rate: number;
  readonly guardMs: number;
  private readonly span: number;
  private readonly ring: Float64Array;
  private ringPos = 0;
  private readonly burst: number;
  private tokens: number;
  private lastRefill: number;
  private readonly msPerToken: number;
  private readonly queue: Waiter[] = [];
  private queueHead = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private readonly now: () => number;
  private readonly onQueueDepth?: (depth: number) => void;
  private started = 0;
  /**
   * Slow start: the first call of a fresh limiter goes out alone and its slot is stamped when it completes. Cold code
   * paths (module loading, JIT, new connections) make the first calls reach the cloud tens of milliseconds late, and
   * calls a window later would otherwise share a window with them (measured: the 2 initial-burst calls, every time).
   */
  private warm = false;
  private warming = false;

  constructor(opts: RateLimiterOptions) {
    if (!(opts.rate > 0) || !Number.isFinite(opts.rate)) throw new Error(`rate limit must be a positive number, got ${opts.rate}`);
    this.rate = Math.max(1, Math.floor(opts.rate));
    const windowMs = opts.windowMs ?? 1000;
    this.guardMs = opts.guardMs ?? DEFAULT_GUARD_MS;
    this.span = windowMs + this.guardMs;
    this.now = opts.now ?? (() => performance.now());
    this.ring = new Float64Array(this.rate).fill(-Infinity);
    this.burst = Math.max(1, Math.min(this.rate, opts.burst ?? Math.ceil(this.rate * 0.02)));
    this.tokens = this.burst;
    this.lastRefill = this.now();
    this.msPerToken = this.span / this.rate;
    this.onQueueDepth = opts.onQueueDepth;
  }

  get queueDepth(): number {
    return this.queue.length - this.queueHead;
  }

  get totalStarted(): number {
    return this.started;
  }

  /** Runs `fn` as soon as the window allows. Rejects with RateLimitAbortedError if `signal` aborts while queued. */
  schedule<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(new RateLimitAbortedError());
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = {
        settled: false,
        signal,
        reject,
        start: () => {
          fn()
            .then(resolve, reject)
            .finally(() => waiter.onSettled?.());
        },
      };
      if (signal) {
        waiter.onAbort = () => {
          if (waiter.settled) return;
          waiter.settled = true;
          reject(new RateLimitAbortedError());
          this.reportDepth();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
      this.reportDepth();
      this.drain();
    });
  }

  /** Rejects everything still queued (shutdown). */
  cancelAll(): void {
    for (let i = this.queueHead; i < this.queue.length; i++) {
      const w = this.queue[i];
      if (w && !w.settled) {
        w.settled = true;
        w.reject(new RateLimitAbortedError());
      }
    }
    this.queue.length = 0;
    this.queueHead = 0;
    this.clearTimer();
    this.reportDepth();
  }

  private refill(now: number): void {
    if (this.tokens < this.burst) {
      this.tokens = Math.min(this.burst, this.tokens + (now - this.lastRefill) / this.msPerToken);
    }
    this.lastRefill = now;
  }

  /** Earliest time a start is allowed, given the ring and the pacing bucket. */
  private nextAllowed(now: number): number {
    const windowFree = this.ring[this.ringPos] + this.span;
    const tokenFree = this.tokens >= 1 ? now : now + (1 - this.tokens) * this.msPerToken;
    return Math.max(windowFree, tokenFree);
  }

  private drain(): void {
    const now = this.now();
    this.refill(now);
    while (this.queueHead < this.queue.length) {
      const w = this.queue[this.queueHead];
      if (w.settled) {
        this.queueHead++;
        continue;
      }
      if (this.warming) break;
      const at = this.nextAllowed(now);
      if (at > now) {
        this.armTimer(at - now);
        this.compact();
        return;
      }
      this.queueHead++;
      w.settled = true;
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      this.ring[this.ringPos] = now;
      this.ringPos = (this.ringPos + 1) % this.rate;
      this.tokens -= 1;
      this.started++;
      if (!this.warm) {
        const slot = (this.ringPos + this.rate - 1) % this.rate;
        this.warming = true;
        w.onSettled = () => {
          this.ring[slot] = Math.max(this.ring[slot], this.now());
          this.warm = true;
          this.warming = false;
          this.drain();
        };
      }
      w.start();
    }
    this.compact();
    this.reportDepth();
  }

  private compact(): void {
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    } else if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    }
  }

  private armTimer(delayMs: number): void {
    const at = this.now() + delayMs;
    if (this.timer && this.timerAt <= at) return;
    this.clearTimer();
    this.timerAt = at;
    // setTimeout may fire up to ~1 ms early or late; drain() re-checks and re-arms, so the guarantee never depends on it.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.drain();
    }, Math.max(0, Math.ceil(delayMs)));
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private reportDepth(): void {
    this.onQueueDepth?.(this.queueDepth);
  }
}
