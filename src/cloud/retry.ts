// Retries a cloud call with exponential backoff and full jitter, never sleeping past the caller's deadline.
import { CloudError } from './errors';

export interface RetryPolicy {
  /** Total attempts, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 200, maxDelayMs: 5_000 };

export interface RetryHooks {
  /** Absolute deadline in Date.now() milliseconds. */
  deadline: number;
  signal?: AbortSignal;
  random?: () => number;
  onRetry?: (err: CloudError, attempt: number, delayMs: number) => void;
}

export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number, throttled: boolean): number {
  // Throttling means the cloud's window is full: start further out so the retry does not land in the same window.
  const base = throttled ? Math.max(policy.baseDelayMs, 1_000) : policy.baseDelayMs;
  const cap = Math.min(policy.maxDelayMs, base * 2 ** (attempt - 1));
  return Math.floor(cap / 2 + random() * (cap / 2));
}

export async function withRetries<T>(attemptFn: (attempt: number) => Promise<T>, policy: RetryPolicy, hooks: RetryHooks): Promise<T> {
  const random = hooks.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    try {
      return await attemptFn(attempt);
    } catch (err) {
      if (!(err instanceof CloudError) || !err.retryable || attempt >= policy.maxAttempts) throw err;
      const delay = backoffDelay(policy, attempt, random, err.throttled);
      if (Date.now() + delay >= hooks.deadline || hooks.signal?.aborted) throw err;
      hooks.onRetry?.(err, attempt, delay);
      await sleep(delay, hooks.signal);
      if (hooks.signal?.aborted) throw err;
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
