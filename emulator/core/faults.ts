// Decides, per admitted call, the injected latency and whether it fails, times out or gets a malformed body.
import type { Faults, Scenario } from './scenario';

export type FaultDecision =
  | { kind: 'none' }
  | { kind: 'error'; code: string; httpStatus?: number }
  | { kind: 'timeout'; holdMs: number }
  | { kind: 'drip' }
  | { kind: 'malformed'; truncate: boolean };

export class FaultInjector {
  constructor(
    private readonly latency: Scenario['latency'],
    private faults: Faults,
    private readonly random: () => number,
  ) {}

  current(): Faults {
    return this.faults;
  }

  replace(faults: Faults): void {
    this.faults = faults;
  }

  latencyMs(api: string): number {
    const range = this.latency.per_api[api] ?? this.latency;
    if (range.max_ms <= 0) return 0;
    return range.min_ms + Math.floor(this.random() * (range.max_ms - range.min_ms + 1));
  }

  decide(api: string): FaultDecision {
    const spec = this.faults[api];
    if (spec === undefined) return { kind: 'none' };
    let u = this.random();
    for (const [code, rate] of Object.entries(spec.error_rates)) {
      if (u < rate) return { kind: 'error', code, httpStatus: spec.http_status[code] };
      u -= rate;
    }
    if (u < spec.timeout_rate) return { kind: 'timeout', holdMs: spec.timeout_ms };
    u -= spec.timeout_rate;
    if (u < spec.drip_rate) return { kind: 'drip' };
    u -= spec.drip_rate;
    if (u < spec.malformed_rate) return { kind: 'malformed', truncate: this.random() < 0.5 };
    return { kind: 'none' };
  }
}
