// Recent cloud calls per (account, API) for the status page: calls, throttled answers and retries in the last minute
// (60 one-second buckets, so a page view sums 60 numbers instead of reading the prom-client registry) and since start.
export type ActivityKind = 'calls' | 'throttled' | 'retries';

const KINDS: readonly ActivityKind[] = ['calls', 'throttled', 'retries'];
const BUCKETS = 60;

class Buckets {
  readonly perSecond: Record<ActivityKind, Uint32Array> = { calls: new Uint32Array(BUCKETS), throttled: new Uint32Array(BUCKETS), retries: new Uint32Array(BUCKETS) };
  readonly total: Record<ActivityKind, number> = { calls: 0, throttled: 0, retries: 0 };
  /** The whole second (Date.now() / 1000) the newest bucket counts. */
  private second = 0;

  /** Moves the window to `second`, emptying the buckets of the seconds it passes over. */
  advance(second: number): void {
    if (second <= this.second) return;
    const passed = Math.min(BUCKETS, second - this.second);
    for (let i = 1; i <= passed; i++) for (const k of KINDS) this.perSecond[k][(this.second + i) % BUCKETS] = 0;
    this.second = second;
  }

  add(kind: ActivityKind, second: number): void {
    this.advance(second);
    this.perSecond[kind][second % BUCKETS]++;
    this.total[kind]++;
  }

  lastMinute(kind: ActivityKind): number {
    let sum = 0;
    for (const n of this.perSecond[kind]) sum += n;
    return sum;
  }
}

export interface ActivityCounts {
  /** Within the last 60 whole seconds, the current one included. */
  lastMinute: Record<ActivityKind, number>;
  /** Since the pair was first used (or since a reload that dropped it). */
  total: Record<ActivityKind, number>;
}

export class ApiActivity {
  private readonly pairs = new Map<string, Buckets>();

  constructor(private readonly now: () => number = Date.now) {}

  note(account: string, api: string, kind: ActivityKind): void {
    const key = `${account}\u0000${api}`;
    let b = this.pairs.get(key);
    if (!b) this.pairs.set(key, (b = new Buckets()));
    b.add(kind, Math.floor(this.now() / 1000));
  }

  counts(account: string, api: string): ActivityCounts {
    const b = this.pairs.get(`${account}\u0000${api}`);
    if (!b) return { lastMinute: { calls: 0, throttled: 0, retries: 0 }, total: { calls: 0, throttled: 0, retries: 0 } };
    b.advance(Math.floor(this.now() / 1000));
    return { lastMinute: { calls: b.lastMinute('calls'), throttled: b.lastMinute('throttled'), retries: b.lastMinute('retries') }, total: { ...b.total } };
  }

  /** The pair is no longer configured (a reload dropped it), as its prom-client series are removed. */
  forget(account: string, api: string): void {
    this.pairs.delete(`${account}\u0000${api}`);
  }
}
