// The one place a configured rate (calls per second, possibly fractional) becomes the rule the limiter enforces and
// the quota plan computes with: at most `calls` call starts in any sliding window of `windowMs`.
export interface RateRule {
  calls: number;
  windowMs: number;
}

/**
 * 0.5 → one call per 2 s; 2.5 → 2 per second (rounding down: no 1-second window may ever hold more than the rate,
 * and 5 calls per 2 s could put all 5 into one second).
 */
export function rateRule(qps: number): RateRule {
  if (!(qps > 0) || !Number.isFinite(qps)) throw new Error(`a rate must be a positive number of calls per second, got ${qps}`);
  if (qps >= 1) return { calls: Math.floor(qps), windowMs: 1000 };
  return { calls: 1, windowMs: Math.ceil(1000 / qps) };
}

/** Calls per second the rule allows on average. */
export function ruleQps(rule: RateRule): number {
  return (rule.calls * 1000) / rule.windowMs;
}

export function sameRule(a: RateRule, b: RateRule): boolean {
  return a.calls === b.calls && a.windowMs === b.windowMs;
}
