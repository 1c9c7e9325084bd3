// The one interface the API client needs from a rate limiter, so an in-process WindowRateLimiter and the shared
// RedisWindowLimiter can stand behind it interchangeably (both satisfy it structurally).
import type { RateRule } from '../cloud/rate';

export interface CallLimiter {
  /** The rule enforced: at most `calls` arrivals in any sliding window of `windowMs`. */
  readonly rule: RateRule;
  /** The guard in use now (configured, plus what throttling added, decaying). */
  readonly currentGuardMs: number;
  /** Calls waiting to start. */
  readonly queueDepth: number;
  /** Runs `fn` as soon as the rule allows; rejects with RateLimitAbortedError(signal.reason) if `signal` aborts first. */
  schedule<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  /** The cloud throttled a call this limiter let through: widen the guard. */
  noteThrottled(): void;
  /** Rejects everything still waiting (shutdown, or the limiter is being replaced). */
  cancelAll(): void;
}
