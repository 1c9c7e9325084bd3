// Per (account, API) rate limiter that guarantees no sliding window (1 s; longer for rates below 1/s, see rate.ts) ever
// holds more than its calls, retries included, while still reaching >= 99% of the rate (Bottleneck tops out near 400 jobs/s: see README, design notes).
//
// The cloud counts arrivals, and a call arrives somewhere between our start and its completion. The ring holds, for
// each of the last `rate` calls, the latest moment it can have arrived: its completion when that came within the
// guard, else start + guard (an assumption: the request left within the guard). A call may start only when the call
// `rate` calls ago is a full window behind that moment. A small token bucket paces starts evenly so the quota is not
// spent in one burst per second.
import { rateRule, ruleQps, type RateRule } from './rate';

/**
 * Default guard for a rate: 500 ms / rate, between 20 and 100 ms. A call that completes within the guard costs only
 * its latency (its arrival is known to lie before its completion); the guard bounds what a slower call may cost.
 * Measured here: arrival jitter between processes on a busy 2-core machine reached 30 ms, so 20 ms alone drew a
 * throttled call now and then; at low rates (5/s) a call slot is 200 ms wide, so a 100 ms guard costs little.
 */
export function defaultGuardMs(rate: number): number {
  return Math.min(100, Math.max(20, Math.round(500 / rate)));
}

/**
 * When the cloud throttles a call anyway, arrivals were later than the guard assumed: the guard doubles (up to
 * MAX_GUARD_MS), and the excess over the configured guard halves every GUARD_HALF_LIFE_MS without throttling.
 */
export const MAX_GUARD_MS = 250;
export const GUARD_HALF_LIFE_MS = 60_000;

export interface RateLimiterOptions {
  /** Calls per second, possibly fractional; rateRule() turns it into calls per window. */
  rate: number;
  /**
   * Longest a call is assumed to take to reach the cloud (default: defaultGuardMs(rate)). Throughput at saturation is
   * windowMs / (windowMs + min(latency, guardMs)) of `rate`.
   */
  guardMs?: number;
  /** Largest burst of back-to-back starts, in calls (default: 2% of the rate, at least 1). */
  burst?: number;
  now?: () => number;
  onQueueDepth?: (depth: number) => void;
  /** Called when the guard in use changes by a whole millisecond or more (throttling widened it, or it decayed). */
  onGuardChange?: (guardMs: number) => void;
  /**
   * Wider limits this limiter's calls also count against (a product's per-source-IP ceiling across accounts and
   * APIs). A call starts only when this limiter and every shared one allow it at the same moment, and takes a slot in
   * each: nesting one limiter inside another would let the inner wait break the outer's assumed arrival.
   */
  shared?: readonly WindowRateLimiter[];
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
  /** The aborting signal's reason (undefined when the limiter itself was cancelled). */
  constructor(readonly reason?: unknown) {
    super('rate-limited call aborted before it started (deadline reached or shutting down)');
    this.name = 'RateLimitAbortedError';
  }
}

export class WindowRateLimiter {
  readonly rule: RateRule;
  /** Calls per window (rule.calls). */
  readonly rate: number;
  /** The configured guard; the one in use (`currentGuardMs`) widens after throttling and decays back to it. */
  readonly guardMs: number;
  private widenedGuardMs = 0;
  private widenedAt = 0;
  private readonly windowMs: number;
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
  private readonly onGuardChange?: (guardMs: number) => void;
  private reportedGuardMs: number;
  /**
   * Slow start: the first call of a fresh limiter goes out alone and its slot is stamped when it completes. Cold code
   * paths (module loading, JIT, new connections) make the first calls reach the cloud tens of milliseconds late, and
   * calls a window later would otherwise share a window with them (measured: the 2 initial-burst calls, every time).
   */
  private warm = false;
  private warming = false;
  private readonly shared: readonly WindowRateLimiter[];
  /** Limiters whose calls also take slots here: they are told when a slot frees early. */
  private readonly dependents = new Set<WindowRateLimiter>();

  constructor(opts: RateLimiterOptions) {
    this.rule = rateRule(opts.rate);
    this.rate = this.rule.calls;
    this.windowMs = this.rule.windowMs;
    this.guardMs = opts.guardMs ?? defaultGuardMs(ruleQps(this.rule));
    this.now = opts.now ?? (() => performance.now());
    this.ring = new Float64Array(this.rate).fill(-Infinity);
    this.burst = Math.max(1, Math.min(this.rate, opts.burst ?? Math.ceil(this.rate * 0.02)));
    this.tokens = this.burst;
    this.lastRefill = this.now();
    this.msPerToken = this.windowMs / this.rate;
    this.onQueueDepth = opts.onQueueDepth;
    this.onGuardChange = opts.onGuardChange;
    this.reportedGuardMs = this.guardMs;
    this.shared = opts.shared ?? [];
    for (const s of this.shared) s.dependents.add(this);
  }

  /** The shared limiters this one's calls also count against. */
  get sharesWith(): readonly WindowRateLimiter[] {
    return this.shared;
  }

  /** Stops counting on the shared limiters (this limiter was replaced or is no longer used). */
  detach(): void {
    for (const s of this.shared) s.dependents.delete(this);
  }

  /** The guard in use now: the configured one plus what throttling added, decaying. */
  get currentGuardMs(): number {
    if (this.widenedGuardMs <= this.guardMs) return this.guardMs;
    const excess = (this.widenedGuardMs - this.guardMs) * 2 ** (-(this.now() - this.widenedAt) / GUARD_HALF_LIFE_MS);
    return this.guardMs + excess;
  }

  /** The cloud throttled a call this limiter let through: assume arrivals lag more than the guard allowed for. */
  noteThrottled(): void {
    // One throttling episode refuses many calls of the same second: widen once per window, not once per call.
    if (this.widenedGuardMs > 0 && this.now() - this.widenedAt < this.windowMs) return;
    const widened = Math.min(MAX_GUARD_MS, Math.max(this.currentGuardMs * 2, this.guardMs + 10));
    this.widenedGuardMs = widened;
    this.widenedAt = this.now();
    this.reportGuard();
  }

  get queueDepth(): number {
    return this.queue.length - this.queueHead;
  }

  /** Runs `fn` as soon as the window allows. Rejects with RateLimitAbortedError if `signal` aborts while queued. */
  schedule<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(new RateLimitAbortedError(signal.reason));
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
          reject(new RateLimitAbortedError(signal.reason));
          this.reportDepth();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
      this.reportDepth();
      this.drain();
    });
  }

  /**
   * Takes over the recent calls of the limiter this one replaces (a reload changed the rate or margin), so the new
   * rate holds from the first call: the last min(old, new rate) assumed arrivals, the slow-start state and any
   * widened guard. Calls the old limiter still has in flight keep their assumed arrival (start + its guard).
   */
  inheritWindow(previous: WindowRateLimiter): void {
    const recent: number[] = [];
    for (let i = 0; i < previous.rate; i++) {
      const t = previous.ring[(previous.ringPos + i) % previous.rate];
      if (t !== -Infinity) recent.push(t);
    }
    const keep = recent.slice(-this.rate);
    this.ring.fill(-Infinity);
    // Oldest first, ending just before ringPos 0: the next start replaces the oldest kept one.
    keep.forEach((t, i) => (this.ring[(this.rate - keep.length + i) % this.rate] = t));
    this.ringPos = 0;
    this.warm = previous.warm || previous.warming;
    if (previous.widenedGuardMs > this.guardMs) {
      this.widenedGuardMs = previous.widenedGuardMs;
      this.widenedAt = previous.widenedAt;
    }
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

  /** Earliest time a start is allowed, given the ring and the pacing bucket; Infinity while the first call is out. */
  private nextAllowed(now: number): number {
    if (this.warming) return Infinity;
    this.refill(now);
    const windowFree = this.ring[this.ringPos] + this.windowMs;
    const tokenFree = this.tokens >= 1 ? now : now + (1 - this.tokens) * this.msPerToken;
    return Math.max(windowFree, tokenFree);
  }

  /** This limiter's slot for a call starting now; the returned function is called when the call has settled. */
  private take(now: number): () => void {
    const slot = this.ringPos;
    const assumedArrival = now + this.currentGuardMs;
    this.ring[slot] = assumedArrival;
    this.ringPos = (this.ringPos + 1) % this.rate;
    this.tokens -= 1;
    if (!this.warm) {
      this.warming = true;
      return () => {
        this.ring[slot] = Math.max(this.ring[slot], this.now());
        this.warm = true;
        this.warming = false;
        this.freed();
      };
    }
    return () => {
      // Only if the slot still holds this call (a later call reuses it after `rate` starts).
      if (this.ring[slot] !== assumedArrival) return;
      const done = this.now();
      if (done < assumedArrival) {
        this.ring[slot] = done;
        this.freed();
      }
    };
  }

  /** A slot came free before its time: this queue and the limiters counting on this one may start calls now. */
  private freed(): void {
    if (this.queueHead < this.queue.length) this.drain();
    for (const d of this.dependents) if (d.queueHead < d.queue.length) d.drain();
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
      // A limiter (this or a shared one) with its first call out is woken by that call's end, not by a timer.
      const at = Math.max(this.nextAllowed(now), ...this.shared.map((s) => s.nextAllowed(now)));
      if (at === Infinity) break;
      if (at > now) {
        this.armTimer(at - now);
        this.compact();
        return;
      }
      this.queueHead++;
      w.settled = true;
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      const settles = [this.take(now), ...this.shared.map((s) => s.take(now))];
      w.onSettled = () => {
        for (const settle of settles) settle();
      };
      w.start();
    }
    this.compact();
    this.reportDepth();
    if (this.widenedGuardMs > this.guardMs) this.reportGuard();
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

  private reportGuard(): void {
    const g = this.currentGuardMs;
    if (Math.abs(g - this.reportedGuardMs) < 1) return;
    this.reportedGuardMs = g;
    this.onGuardChange?.(g);
  }

  private reportDepth(): void {
    this.onQueueDepth?.(this.queueDepth);
  }
}
