// Client IPs and connection counts of a simulated TencentDB for MongoDB instance, including mid-walk mutations.
import { hashInts, hashString, intBetween, unitHash } from '../../core/prng';
import type { MongoInstanceConfig } from './scenario';

export interface ClientConnection {
  IP: string;
  Count: number;
  InternalService: boolean;
}

interface BaseClient {
  ip: string;
  count: number;
  internal: boolean;
  /** Explicit clients keep their count; generated ones may churn. */
  churns: boolean;
}

const EXTRA_KEY = 0x40000000;

/**
 * The list is the explicit clients followed by `client_ips` generated ones, in a stable order. With
 * `mutate_between_pages`, every answered page changes it before the next one: `insert_front` adds a new
 * IP at the head (later pages shift and repeat a record, TotalCount grows), `remove_front` drops the head
 * (a record is skipped, TotalCount shrinks), `append` adds at the tail (TotalCount grows only).
 */
export class MongoInstanceState {
  readonly id: string;
  private readonly seed: number;
  private readonly base: BaseClient[] = [];
  private mutations = 0;

  constructor(
    readonly config: MongoInstanceConfig,
    scenarioSeed: number,
  ) {
    this.id = config.instance_id;
    this.seed = hashInts(scenarioSeed, hashString(`mongodb/${config.instance_id}`));
    for (const c of config.clients) this.base.push({ ip: c.ip, count: c.count, internal: c.internal_service, churns: false });
    const ipOffset = hashInts(this.seed, 1) % (1 << 20);
    const { min, max } = config.connections_per_ip;
    for (let k = 0; k < config.client_ips; k++) {
      const n = ipOffset + k;
      this.base.push({
        ip: `10.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`,
        count: intBetween(unitHash(this.seed, k, 2), min, max),
        internal: unitHash(this.seed, k, 3) < config.internal_service_ratio,
        churns: true,
      });
    }
  }

  /** Called after each answered page. */
  mutate(): void {
    if (this.config.mutate_between_pages !== 'none') this.mutations++;
  }

  length(): number {
    const n = this.base.length;
    switch (this.config.mutate_between_pages) {
      case 'insert_front':
      case 'append':
        return n + this.mutations;
      case 'remove_front':
        return n - Math.min(this.mutations, n);
      default:
        return n;
    }
  }

  private extra(j: number, nowMs: number): ClientConnection {
    const { min, max } = this.config.connections_per_ip;
    return {
      IP: `172.${16 + ((j >>> 16) & 15)}.${(j >>> 8) & 255}.${j & 255}`,
      Count: this.churned(EXTRA_KEY + j, intBetween(unitHash(this.seed, EXTRA_KEY + j, 2), min, max), nowMs),
      InternalService: unitHash(this.seed, EXTRA_KEY + j, 3) < this.config.internal_service_ratio,
    };
  }

  private churned(key: number, count: number, nowMs: number): number {
    const churn = this.config.churn_per_minute;
    if (churn === 0) return count;
    const slot = Math.floor(nowMs / 60_000);
    if (unitHash(this.seed, key, slot, 1) >= churn) return count;
    const { min, max } = this.config.connections_per_ip;
    return intBetween(unitHash(this.seed, key, slot, 2), min, max);
  }

  private baseAt(i: number, nowMs: number): ClientConnection {
    const b = this.base[i] as BaseClient;
    return { IP: b.ip, Count: b.churns ? this.churned(i, b.count, nowMs) : b.count, InternalService: b.internal };
  }

  at(k: number, nowMs: number): ClientConnection {
    const g = this.mutations;
    switch (this.config.mutate_between_pages) {
      case 'insert_front':
        return k < g ? this.extra(g - k, nowMs) : this.baseAt(k - g, nowMs);
      case 'remove_front':
        return this.baseAt(k + Math.min(g, this.base.length), nowMs);
      case 'append':
        return k < this.base.length ? this.baseAt(k, nowMs) : this.extra(k - this.base.length + 1, nowMs);
      default:
        return this.baseAt(k, nowMs);
    }
  }

  page(offset: number, limit: number, nowMs: number): ClientConnection[] {
    const end = Math.min(this.length(), offset + limit);
    const out: ClientConnection[] = [];
    for (let k = offset; k < end; k++) out.push(this.at(k, nowMs));
    return out;
  }

  truth(nowMs: number): { TotalCount: number; Clients: ClientConnection[] } {
    return { TotalCount: this.length(), Clients: this.page(0, this.length(), nowMs) };
  }
}
