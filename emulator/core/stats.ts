// Request statistics per API and per account, exposed to tests and benchmarks on the admin path.
import { WindowPeak } from './rate-window';

export interface ApiCounters {
  /** Arrivals whose signature verified, throttled ones included. */
  calls: number;
  ok: number;
  throttled: number;
  /** Error answers by code (injected faults, business and parameter errors); throttling is only in `throttled`. */
  errors: Record<string, number>;
  timeouts: number;
  malformed: number;
  /** Requests refused by authentication (signature, timestamp, key, nonce, token), by code. Not in `calls`. */
  signature_failures: Record<string, number>;
  /** Largest batch seen (APIs that take a list), rejected oversize batches included. */
  largest_batch: number;
  /** Most admitted calls in any sliding 1-second window (throttled calls excluded). */
  busiest_window: number;
  /** Most arrivals in any sliding 1-second window, throttled calls included. */
  busiest_window_with_throttled: number;
}

export interface ApiStats extends ApiCounters {
  accounts: Record<string, ApiCounters>;
}

export interface EmulatorStats {
  since_ms: number;
  apis: Record<string, ApiStats>;
  /** Per product with a per-source-IP ceiling, per source IP: the ceiling, the busiest second, how often it was blocked. */
  source_ips?: Record<string, Record<string, { limit: number; busiest_window: number; blocked: number }>>;
}

class Counters {
  calls = 0;
  ok = 0;
  throttled = 0;
  errors: Record<string, number> = {};
  timeouts = 0;
  malformed = 0;
  signatureFailures: Record<string, number> = {};
  largestBatch = 0;
  readonly admitted = new WindowPeak();
  readonly arrivals = new WindowPeak();

  snapshot(): ApiCounters {
    return {
      calls: this.calls,
      ok: this.ok,
      throttled: this.throttled,
      errors: { ...this.errors },
      timeouts: this.timeouts,
      malformed: this.malformed,
      signature_failures: { ...this.signatureFailures },
      largest_batch: this.largestBatch,
      busiest_window: this.admitted.peak,
      busiest_window_with_throttled: this.arrivals.peak,
    };
  }
}

export type Outcome = { kind: 'ok' } | { kind: 'error'; code: string } | { kind: 'timeout' } | { kind: 'malformed' };

export class StatsRecorder {
  private apis = new Map<string, { total: Counters; accounts: Map<string, Counters> }>();
  private since: number;

  constructor(private readonly now: () => number) {
    this.since = now();
  }

  reset(): void {
    this.apis = new Map();
    this.since = this.now();
  }

  private both(api: string, account: string | undefined): Counters[] {
    let entry = this.apis.get(api);
    if (entry === undefined) {
      entry = { total: new Counters(), accounts: new Map() };
      this.apis.set(api, entry);
    }
    if (account === undefined) return [entry.total];
    let perAccount = entry.accounts.get(account);
    if (perAccount === undefined) {
      perAccount = new Counters();
      entry.accounts.set(account, perAccount);
    }
    return [entry.total, perAccount];
  }

  signatureFailure(api: string, account: string | undefined, code: string): void {
    for (const c of this.both(api, account)) c.signatureFailures[code] = (c.signatureFailures[code] ?? 0) + 1;
  }

  arrival(api: string, account: string, nowMs: number): void {
    for (const c of this.both(api, account)) {
      c.calls++;
      c.arrivals.record(nowMs);
    }
  }

  admitted(api: string, account: string, nowMs: number): void {
    for (const c of this.both(api, account)) c.admitted.record(nowMs);
  }

  throttled(api: string, account: string): void {
    for (const c of this.both(api, account)) c.throttled++;
  }

  batchSize(api: string, account: string, size: number): void {
    for (const c of this.both(api, account)) c.largestBatch = Math.max(c.largestBatch, size);
  }

  outcome(api: string, account: string, outcome: Outcome): void {
    for (const c of this.both(api, account)) {
      switch (outcome.kind) {
        case 'ok':
          c.ok++;
          break;
        case 'timeout':
          c.timeouts++;
          break;
        case 'malformed':
          c.malformed++;
          break;
        case 'error':
          c.errors[outcome.code] = (c.errors[outcome.code] ?? 0) + 1;
          break;
      }
    }
  }

  snapshot(): EmulatorStats {
    const apis: Record<string, ApiStats> = {};
    for (const [name, entry] of this.apis) {
      const accounts: Record<string, ApiCounters> = {};
      for (const [account, c] of entry.accounts) accounts[account] = c.snapshot();
      apis[name] = { ...entry.total.snapshot(), accounts };
    }
    return { since_ms: this.since, apis };
  }
}
