import { afterEach, describe, expect, test, vi } from 'vitest';
import { defaultGuardMs, RateLimitAbortedError, WindowRateLimiter } from '../../src/cloud/rate-limiter';

function busiestWindow(starts: number[], windowMs = 1000): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < starts.length; hi++) {
    while (starts[hi] - starts[lo] >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

describe('WindowRateLimiter', () => {
  afterEach(() => vi.useRealTimers());

  for (const rate of [5, 100, 500, 1000]) {
    test(`never starts more than ${rate} calls in any 1-second window, and reaches >= 99% of the rate with a 6 ms margin`, async () => {
      vi.useFakeTimers();
      const limiter = new WindowRateLimiter({ rate, guardMs: 6, now: () => Date.now() });
      const starts: number[] = [];
      const t0 = Date.now();
      const total = rate * 4 + 7;
      const done = Array.from({ length: total }, () => limiter.schedule(async () => void starts.push(Date.now())));
      await vi.advanceTimersByTimeAsync(10_000);
      await Promise.all(done);
      expect(starts).toHaveLength(total);
      expect(busiestWindow(starts)).toBeLessThanOrEqual(rate);
      // Steady state: the last `rate * 3` calls took no longer than 3 windows / 0.99.
      const tail = starts.slice(rate);
      const achieved = (tail.length - 1) / ((tail[tail.length - 1] - tail[0]) / 1000);
      expect(achieved).toBeGreaterThanOrEqual(rate * 0.99);
      expect(starts[0]).toBe(t0);
    });
  }

  test('the default guard scales with the rate: 100 ms at 5/s, 20 ms from 25/s up', () => {
    expect(defaultGuardMs(5)).toBe(100);
    expect(defaultGuardMs(10)).toBe(50);
    expect(defaultGuardMs(100)).toBe(20);
    expect(defaultGuardMs(1000)).toBe(20);
    expect(new WindowRateLimiter({ rate: 5 }).guardMs).toBe(100);
  });

  // The cloud sees a call somewhere between its start and its completion: every window over either must hold <= rate.
  async function saturate(rate: number, latencyMs: number, total: number) {
    vi.useFakeTimers();
    const limiter = new WindowRateLimiter({ rate, now: () => Date.now() });
    const starts: number[] = [];
    const ends: number[] = [];
    const done = Array.from({ length: total }, () =>
      limiter.schedule(async () => {
        starts.push(Date.now());
        await new Promise((r) => setTimeout(r, latencyMs));
        ends.push(Date.now());
      }),
    );
    await vi.advanceTimersByTimeAsync(60_000);
    await Promise.all(done);
    const tail = starts.slice(rate);
    return { starts, ends, achieved: (tail.length - 1) / ((tail[tail.length - 1] - tail[0]) / 1000) };
  }

  test('a call that completes within the guard holds its window slot only until it completed', async () => {
    const { starts, ends, achieved } = await saturate(1000, 5, 4000);
    expect(busiestWindow(starts)).toBeLessThanOrEqual(1000);
    expect(busiestWindow(ends)).toBeLessThanOrEqual(1000);
    // A 5 ms call costs 5 ms per window, not the 20 ms guard.
    expect(achieved).toBeGreaterThanOrEqual(1000 * 0.99);
  });

  test('a call slower than the guard is assumed to have arrived within the guard, and still reaches 98% of the rate', async () => {
    const { starts, achieved } = await saturate(1000, 200, 4000);
    expect(busiestWindow(starts, 1020)).toBeLessThanOrEqual(1000);
    expect(achieved).toBeGreaterThanOrEqual(980);
  });

  test('at 5/s with 300 ms calls, no window over any arrival moment within the 100 ms guard holds more than 5', async () => {
    const { starts } = await saturate(5, 300, 40);
    expect(busiestWindow(starts, 1100)).toBeLessThanOrEqual(5);
  });

  test('calls spread across the window instead of one burst per second', async () => {
    vi.useFakeTimers();
    const limiter = new WindowRateLimiter({ rate: 100, now: () => Date.now() });
    const starts: number[] = [];
    const done = Array.from({ length: 100 }, () => limiter.schedule(async () => void starts.push(Date.now())));
    await vi.advanceTimersByTimeAsync(2_000);
    await Promise.all(done);
    // With a burst of 2% (2 calls), 100 calls take most of a second rather than arriving at once.
    expect(starts[99] - starts[0]).toBeGreaterThan(900);
    expect(busiestWindow(starts, 100)).toBeLessThanOrEqual(12);
  });

  test('a queued call whose signal aborts is rejected and never starts', async () => {
    vi.useFakeTimers();
    const limiter = new WindowRateLimiter({ rate: 1, now: () => Date.now() });
    const ran: number[] = [];
    const first = limiter.schedule(async () => void ran.push(1));
    const ctl = new AbortController();
    const second = limiter.schedule(async () => void ran.push(2), ctl.signal);
    ctl.abort();
    await expect(second).rejects.toBeInstanceOf(RateLimitAbortedError);
    await first;
    await vi.advanceTimersByTimeAsync(3_000);
    expect(ran).toEqual([1]);
    expect(limiter.queueDepth).toBe(0);
  });

  test('slow start: the first call goes out alone and its window slot counts from when it completed', async () => {
    vi.useFakeTimers();
    const limiter = new WindowRateLimiter({ rate: 2, guardMs: 0, burst: 2, now: () => Date.now() });
    const t0 = Date.now();
    const starts: number[] = [];
    let finishFirst!: () => void;
    const first = limiter.schedule(() => new Promise<void>((r) => { starts.push(Date.now()); finishFirst = r; }));
    const rest = [1, 2].map(() => limiter.schedule(async () => void starts.push(Date.now())));
    await vi.advanceTimersByTimeAsync(300);
    expect(starts).toEqual([t0]);
    finishFirst();
    await first;
    await vi.advanceTimersByTimeAsync(5_000);
    await Promise.all(rest);
    // Call 2 shares the first call's slot: it waits a full window from the first call's completion (t0+300).
    expect(starts).toEqual([t0, t0 + 300, t0 + 1300]);
  });

  test('throttling by the cloud widens the guard once per window, up to 250 ms, and it decays back with a 60 s half-life', () => {
    let now = 0;
    const seen: number[] = [];
    const limiter = new WindowRateLimiter({ rate: 100, now: () => now, onGuardChange: (g) => seen.push(Math.round(g)) });
    expect(limiter.currentGuardMs).toBe(20);
    limiter.noteThrottled();
    expect(limiter.currentGuardMs).toBe(40);
    limiter.noteThrottled(); // same throttling episode (same second): no further widening
    expect(limiter.currentGuardMs).toBe(40);
    for (let i = 0; i < 5; i++) {
      now += 1000;
      limiter.noteThrottled();
    }
    expect(limiter.currentGuardMs).toBeCloseTo(250, 0);
    now += 60_000;
    expect(limiter.currentGuardMs).toBeCloseTo(20 + 230 / 2, 0);
    now += 600_000;
    expect(limiter.currentGuardMs).toBeLessThan(20.3);
    expect(seen.slice(0, 2)).toEqual([40, 80]);
    expect(limiter.guardMs).toBe(20);
  });

  test('a widened guard spaces the windows further apart', async () => {
    vi.useFakeTimers();
    const limiter = new WindowRateLimiter({ rate: 10, guardMs: 0, now: () => Date.now() });
    limiter.noteThrottled(); // 0 -> 10 ms
    limiter.noteThrottled(); // same second: ignored
    const starts: number[] = [];
    const done = Array.from({ length: 31 }, () =>
      limiter.schedule(async () => {
        starts.push(Date.now());
        await new Promise((r) => setTimeout(r, 50));
      }),
    );
    await vi.advanceTimersByTimeAsync(10_000);
    await Promise.all(done);
    // Slow start aside, call k+10 starts a full window after call k's assumed arrival (start + 10 ms).
    for (let k = 1; k + 10 < starts.length; k++) expect(starts[k + 10] - starts[k]).toBeGreaterThanOrEqual(1005);
  });

  test('a limiter replacing another (reload with a new rate) counts the calls the old one just made', async () => {
    vi.useFakeTimers();
    const t0 = Date.now();
    const old = new WindowRateLimiter({ rate: 10, guardMs: 0, burst: 10, now: () => Date.now() });
    await old.schedule(async () => undefined); // slow start: the first call alone
    await Promise.all(Array.from({ length: 9 }, () => old.schedule(async () => undefined)));
    // 10 calls at t0. A lower rate: no call before a second has passed since them.
    const lower = new WindowRateLimiter({ rate: 5, guardMs: 0, burst: 5, now: () => Date.now() });
    lower.inheritWindow(old);
    const lowerStarts: number[] = [];
    const a = Array.from({ length: 2 }, () => lower.schedule(async () => void lowerStarts.push(Date.now() - t0)));
    // A higher rate: room for exactly 10 more in that second.
    const higher = new WindowRateLimiter({ rate: 20, guardMs: 0, burst: 20, now: () => Date.now() });
    higher.inheritWindow(old);
    const higherStarts: number[] = [];
    const b = Array.from({ length: 11 }, () => higher.schedule(async () => void higherStarts.push(Date.now() - t0)));
    await vi.advanceTimersByTimeAsync(3_000);
    await Promise.all([...a, ...b]);
    expect(Math.min(...lowerStarts)).toBeGreaterThanOrEqual(1000);
    expect(higherStarts.filter((t) => t < 1000)).toHaveLength(10);
    expect(higherStarts[10]).toBeGreaterThanOrEqual(1000);
  });

  test('shared ceiling: three limiters of 500/s counting on one of 300/s start at most 300 calls in any second together, and reach it', async () => {
    vi.useFakeTimers();
    const now = () => Date.now();
    const ceiling = new WindowRateLimiter({ rate: 300, guardMs: 6, now });
    const own = [0, 1, 2].map(() => new WindowRateLimiter({ rate: 500, guardMs: 6, now, shared: [ceiling] }));
    const starts: number[][] = [[], [], []];
    const done = own.flatMap((l, i) => Array.from({ length: 600 }, () => l.schedule(async () => void starts[i]!.push(Date.now()))));
    await vi.advanceTimersByTimeAsync(10_000);
    await Promise.all(done);
    const all = starts.flat().sort((a, b) => a - b);
    expect(all).toHaveLength(1800);
    expect(busiestWindow(all)).toBeLessThanOrEqual(300);
    // Each limiter alone stays within its own 500 too, and the ceiling is the pace: 1,800 calls in about 6 s.
    for (const st of starts) expect(busiestWindow(st)).toBeLessThanOrEqual(500);
    expect(all.at(-1)! - all[0]!).toBeLessThan(6_300);
    expect(all.at(-1)! - all[0]!).toBeGreaterThan(5_000);
  });

  test('shared ceiling: a slot freed early on the ceiling wakes the limiters waiting on it; detach() stops counting', async () => {
    vi.useFakeTimers();
    const now = () => Date.now();
    // 10/s with a 200 ms guard: a 1 ms call frees its ceiling slot when it completes, so the calls run at the pacing
    // of the ceiling (one per 100 ms), not at one window plus the guard per 10 calls.
    const ceiling = new WindowRateLimiter({ rate: 10, guardMs: 200, now });
    const a = new WindowRateLimiter({ rate: 1000, now, shared: [ceiling] });
    const starts: number[] = [];
    const t0 = Date.now();
    const done = Array.from({ length: 31 }, () => a.schedule(async () => { starts.push(Date.now() - t0); await new Promise((r) => setTimeout(r, 1)); }));
    await vi.advanceTimersByTimeAsync(10_000);
    await Promise.all(done);
    expect(busiestWindow(starts)).toBeLessThanOrEqual(10);
    expect(starts.at(-1)).toBeLessThan(3_300);
    expect(a.sharesWith).toEqual([ceiling]);
    a.detach();
    // Detached, its calls are still its own to pace, and the ceiling's queue-less wake-ups no longer reach it.
    expect((ceiling as unknown as { dependents: Set<unknown> }).dependents.has(a)).toBe(false);
  });

  test('rejects a non-positive rate with a clear message', () => {
    expect(() => new WindowRateLimiter({ rate: 0 })).toThrow(/positive/);
  });
});
