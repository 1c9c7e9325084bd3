// Cloud accounts from the config. Four lifetimes:
// - LimiterPool (per app): one rate limiter per (account, API), shared by every job of the account; limiters outlive
//   reloads so a reload never resets a window. In a cluster the windows are kept in Redis (SharedLimiters), one per
//   (account or quota group, API) for every replica together.
// - TransportPool (per app): one SDK transport (and its sockets) per (account settings, endpoint, API version),
//   shared by the jobs that use it and closed when the last of them is gone and its calls have ended, so reloads
//   neither leak sockets nor reconnect for unchanged accounts. It decides each transport's proxy route (proxy.ts)
//   from the account and the environment it was given when the transport is made.
// - CredentialsPool (per app, credentials/pool.ts): one credentials provider per account, held by its transports.
// - CloudAccounts (per job): what one job holds from the pools; released when the job is stopped.
import type { AccountConfig } from '../config/schema';
import { createApiClient, type ApiCaller, type CallLimiter } from './client';
import type { ApiMetrics } from './api-metrics';
import { CloudError } from './errors';
import { proxyRoute, type ProxyEndpoint, type ProxyEnv } from './proxy';
import { AliyunRpcTransport } from './providers/aliyun';
import { TencentTransport } from './providers/tencent';
import { defaultGuardMs, WindowRateLimiter } from './rate-limiter';
import { rateRule, ruleQps, sameRule } from './rate';
import type { CallRequest, CloudTransport } from './transport';
import type { AccountCredentials, CredentialsPool } from './credentials/pool';

export type TransportFactory = (account: AccountConfig, endpoint: string, apiVersion: string, credentials: AccountCredentials, proxy: ProxyEndpoint | undefined) => CloudTransport;

const DEFAULT_TRANSPORTS: Record<string, TransportFactory> = {
  aliyun: (account, endpoint, apiVersion, credentials, proxy) => {
    if (account.provider !== 'aliyun' || !('getCredentials' in credentials)) throw new Error(`account ${account.name} is not an aliyun account`);
    return new AliyunRpcTransport(credentials, endpoint, apiVersion, account.max_response_size, proxy);
  },
  tencentcloud: (account, endpoint, apiVersion, credentials, proxy) => {
    if (account.provider !== 'tencentcloud' || !('getCredential' in credentials)) throw new Error(`account ${account.name} is not a tencentcloud account`);
    return new TencentTransport(credentials, endpoint, apiVersion, { maxTimeoutMs: account.request_timeout, maxResponseBytes: account.max_response_size, proxy });
  },
};

/** A transport whose every call fails: the environment names a proxy that cannot be used (the variable, never its value). */
function unusableRoute(provider: CloudTransport['provider'], problem: string): CloudTransport {
  return {
    provider,
    call: async (req) => {
      throw new CloudError({ provider, api: req.api, code: 'ProxyMisconfigured', message: `${req.api} not sent: ${problem}`, retryable: false, throttled: false, finalForRun: 'account' });
    },
  };
}

/** A product's per-source-IP ceiling: all calls from this process to its APIs, whatever the account (job-type.ts). */
export interface SourceIpCeiling {
  product: string;
  qps: number;
}

export interface LimiterStatus {
  account: string;
  api: string;
  /** The rate the limiter enforces (rate.ts rounding applied), calls per second. */
  qps: number;
  marginMs: number;
  queueDepth: number;
}

/**
 * Going over a per-IP ceiling gets the IP blocked, with no throttled answer to widen the margin from: assume a call
 * may reach the cloud up to this long after it started (costs at most ~9% of the ceiling's rate when every call is
 * that slow; calls that complete sooner free their slot on completion).
 */
export const CEILING_GUARD_MS = 100;

/** A limiter of the pool: what the API client needs, and how the pool replaces it. */
export interface PoolLimiter extends CallLimiter {
  readonly guardMs: number;
  readonly currentGuardMs: number;
  /** Calls waiting for their slot now (the status page). */
  readonly queueDepth: number;
  /** Rejects the calls still waiting: the limiter is being replaced or the process stops. */
  cancelAll(): void;
}

export interface SharedLimiterSpec {
  /** `<account or quota group>/<API>`: the quota's name, the same on every replica. */
  key: string;
  rate: number;
  guardMs?: number;
  ceiling?: SourceIpCeiling;
  onQueueDepth: (depth: number) => void;
  onGuardChange: (guardMs: number) => void;
}

/** Limiters whose windows every replica of a cluster shares (src/cluster/): the pool asks for them instead. */
export interface SharedLimiters {
  create(spec: SharedLimiterSpec): PoolLimiter & { close(): void };
}

export class LimiterPool {
  private readonly limiters = new Map<string, WindowRateLimiter>();
  /** Per product: the per-source-IP ceiling every account's limiter of its APIs also counts against. */
  private readonly ceilings = new Map<string, WindowRateLimiter>();
  /** In a cluster: per key, the shared limiter and what it was made for (a change makes a new one). */
  private readonly sharedLimiters = new Map<string, { limiter: PoolLimiter & { close(): void }; made: string }>();

  constructor(
    private readonly metrics: ApiMetrics,
    /** In a cluster: where the windows are kept for every replica together. */
    private readonly shared?: SharedLimiters,
  ) {}

  /** `account`: the limiter's owner — the account, or the quota group it shares its quota with (limiterOwner()). */
  get(account: string, api: string, qps: number, marginMs?: number, ceiling?: SourceIpCeiling): PoolLimiter {
    if (this.shared) return this.getShared(this.shared, account, api, qps, marginMs, ceiling);
    const key = `${account}\u0000${api}`;
    const existing = this.limiters.get(key);
    const shared = ceiling ? [this.ceiling(ceiling)] : [];
    if (
      existing &&
      sameRule(existing.rule, rateRule(qps)) &&
      existing.guardMs === (marginMs ?? defaultGuardMs(ruleQps(existing.rule))) &&
      existing.sharesWith.length === shared.length &&
      existing.sharesWith.every((l, i) => l === shared[i])
    ) {
      return existing;
    }
    existing?.cancelAll();
    existing?.detach();
    const labels = { account, api };
    const limiter = new WindowRateLimiter({ rate: qps, guardMs: marginMs, shared, ...this.reporting(labels) });
    // The quota is the cloud's, not this object's: the calls just made still count against the new rate.
    if (existing) limiter.inheritWindow(existing);
    this.known(labels, limiter);
    this.limiters.set(key, limiter);
    return limiter;
  }

  /**
   * The cluster's limiter of this quota. A changed rate, margin or ceiling makes a new one with the same key: the
   * calls already recorded in Redis keep counting, whatever this replica's object.
   */
  private getShared(shared: SharedLimiters, account: string, api: string, qps: number, marginMs: number | undefined, ceiling: SourceIpCeiling | undefined): PoolLimiter {
    const key = `${account}\u0000${api}`;
    const made = JSON.stringify([rateRule(qps), marginMs ?? null, ceiling ? [ceiling.product, rateRule(ceiling.qps)] : null]);
    const existing = this.sharedLimiters.get(key);
    if (existing?.made === made) return existing.limiter;
    existing?.limiter.close();
    const labels = { account, api };
    const limiter = shared.create({ key: `${account}/${api}`, rate: qps, guardMs: marginMs, ceiling, ...this.reporting(labels) });
    this.known(labels, limiter);
    this.sharedLimiters.set(key, { limiter, made });
    return limiter;
  }

  private reporting(labels: { account: string; api: string }): Pick<SharedLimiterSpec, 'onQueueDepth' | 'onGuardChange'> {
    return { onQueueDepth: (d) => this.metrics.queueDepth.set(labels, d), onGuardChange: (ms) => this.metrics.margin.set(labels, ms / 1000) };
  }

  /** Known (account, API) pairs have their series from the start, so rate() and alerts never see a gap. */
  private known(labels: { account: string; api: string }, limiter: PoolLimiter): void {
    this.metrics.qps.set(labels, ruleQps(limiter.rule));
    this.metrics.margin.set(labels, limiter.currentGuardMs / 1000);
    this.metrics.queueDepth.set(labels, 0);
    this.metrics.throttled.inc(labels, 0);
    this.metrics.retries.inc(labels, 0);
  }

  /** The product's ceiling limiter; a changed ceiling replaces it, keeping the calls of the last second counted. */
  private ceiling(c: SourceIpCeiling): WindowRateLimiter {
    const existing = this.ceilings.get(c.product);
    if (existing && sameRule(existing.rule, rateRule(c.qps))) return existing;
    const limiter = new WindowRateLimiter({ rate: c.qps, guardMs: CEILING_GUARD_MS });
    if (existing) limiter.inheritWindow(existing);
    this.ceilings.set(c.product, limiter);
    return limiter;
  }

  /** Forget limiters of accounts or APIs no longer in use. */
  retain(keys: ReadonlySet<string>): void {
    const forget = (key: string) => {
      const [account, api] = key.split('\u0000');
      for (const m of [this.metrics.qps, this.metrics.margin, this.metrics.queueDepth, this.metrics.throttled, this.metrics.retries]) m.remove({ account, api });
      this.metrics.activity.forget(account, api);
    };
    for (const [key, limiter] of this.limiters) {
      if (!keys.has(key)) {
        limiter.cancelAll();
        limiter.detach();
        this.limiters.delete(key);
        forget(key);
      }
    }
    for (const [key, { limiter }] of this.sharedLimiters) {
      if (!keys.has(key)) {
        limiter.close();
        this.sharedLimiters.delete(key);
        forget(key);
      }
    }
    const inUse = new Set([...this.limiters.values()].flatMap((l) => l.sharesWith));
    for (const [product, limiter] of this.ceilings) if (!inUse.has(limiter)) this.ceilings.delete(product);
  }

  /** Every limiter in use, read live (the status page): its rate, the margin in use now and its queue. */
  list(): LimiterStatus[] {
    return [...this.limiters, ...[...this.sharedLimiters].map(([key, s]) => [key, s.limiter] as const)].map(([key, limiter]) => {
      const [account, api] = key.split('\u0000');
      return { account, api, qps: ruleQps(limiter.rule), marginMs: limiter.currentGuardMs, queueDepth: limiter.queueDepth };
    });
  }

  cancelAll(): void {
    for (const limiter of this.limiters.values()) limiter.cancelAll();
    for (const { limiter } of this.sharedLimiters.values()) limiter.close();
  }
}

/** Whose quota an account's calls use: its quota group's, shared with the group's other accounts, or its own. */
export function limiterOwner(account: AccountConfig): string {
  return account.quota_group ?? account.name;
}

/** A shared transport with its users and calls counted, so it is closed only when both are gone. */
class PooledTransport implements CloudTransport {
  readonly provider: CloudTransport['provider'];
  users = 0;
  private inFlight = 0;
  private closing = false;

  constructor(
    private readonly inner: CloudTransport,
    private readonly onClosed: () => void,
  ) {
    this.provider = inner.provider;
  }

  get credentials(): CloudTransport['credentials'] {
    return this.inner.credentials;
  }

  async call(req: CallRequest): Promise<unknown> {
    this.inFlight++;
    try {
      return await this.inner.call(req);
    } finally {
      this.inFlight--;
      if (this.closing && this.inFlight === 0) this.closeNow();
    }
  }

  closeWhenIdle(): void {
    this.closing = true;
    if (this.inFlight === 0) this.closeNow();
  }

  private closeNow(): void {
    this.inner.close?.();
    this.onClosed();
  }
}

export class TransportPool {
  private readonly pooled = new Map<string, PooledTransport>();

  constructor(
    private readonly factories: Readonly<Record<string, TransportFactory>> = DEFAULT_TRANSPORTS,
    /** Where HTTPS_PROXY, HTTP_PROXY and NO_PROXY are read (tests pass their own). */
    private readonly env: ProxyEnv = process.env,
  ) {}

  /** The transport for these account settings, endpoint and version; a new one takes the account's credentials from `credentials`. */
  acquire(account: AccountConfig, endpoint: string, apiVersion: string, credentials: CredentialsPool, configDir: string): PooledTransport {
    // Keyed by every setting of the account: a reload that changes a key or a timeout gets a new transport.
    const key = JSON.stringify([account, endpoint, apiVersion, configDir]);
    let entry = this.pooled.get(key);
    if (!entry) {
      const factory = this.factories[account.provider] ?? DEFAULT_TRANSPORTS[account.provider];
      if (!factory) throw new Error(`no SDK transport for provider ${account.provider}`);
      const route = proxyRoute(endpoint, account, this.env);
      let inner: CloudTransport;
      let creds: AccountCredentials | undefined;
      if (route.via === 'unusable') inner = unusableRoute(account.provider, route.problem);
      else {
        creds = credentials.acquire(account, configDir);
        try {
          inner = factory(account, endpoint, apiVersion, creds, route.via === 'proxy' ? route : undefined);
        } catch (err) {
          credentials.release(creds);
          throw err;
        }
      }
      const created = new PooledTransport(inner, () => {
        if (creds) credentials.release(creds);
        if (this.pooled.get(key) === created) this.pooled.delete(key);
      });
      entry = created;
      this.pooled.set(key, entry);
    }
    entry.users++;
    return entry;
  }

  release(transport: PooledTransport): void {
    transport.users--;
    if (transport.users === 0) transport.closeWhenIdle();
  }

  /** Transports open now (tests: reloads must not accumulate them). */
  get size(): number {
    return this.pooled.size;
  }
}

export interface CloudAccountsOptions {
  accounts: readonly AccountConfig[];
  metrics: ApiMetrics;
  limiters: LimiterPool;
  transports: TransportPool;
  credentials: CredentialsPool;
  /** The config file's folder: base of relative paths in `credentials:` blocks. */
  configDir: string;
  /** Documented QPS of every API a job type calls, by API name. */
  defaultQps: Readonly<Record<string, number>>;
  /** Per API, the per-source-IP ceiling its calls also count against (config/spec.ts sourceIpCeilings). */
  sourceIpCeilings?: Readonly<Record<string, SourceIpCeiling>>;
}

/** One job's view of the configured accounts; `close()` gives back what it took from the pools. */
export class CloudAccounts {
  private readonly byName: Map<string, AccountConfig>;
  private readonly callers = new Map<string, ApiCaller>();
  private readonly held: PooledTransport[] = [];

  constructor(private readonly opts: CloudAccountsOptions) {
    this.byName = new Map(opts.accounts.map((a) => [a.name, a]));
  }

  account(name: string): AccountConfig {
    const account = this.byName.get(name);
    if (!account) throw new Error(`no account named "${name}"`);
    return account;
  }

  qpsFor(accountName: string, api: string): number {
    return accountQps(this.account(accountName), api, this.opts.defaultQps);
  }

  /** The rate-limited, retrying caller of one account at one endpoint and API version. */
  caller(accountName: string, endpoint: string, apiVersion: string): ApiCaller {
    const key = `${accountName}\u0000${endpoint}\u0000${apiVersion}`;
    let client = this.callers.get(key);
    if (!client) {
      const account = this.account(accountName);
      const transport = this.opts.transports.acquire(account, endpoint, apiVersion, this.opts.credentials, this.opts.configDir);
      this.held.push(transport);
      client = createApiClient({
        account: accountName,
        transport,
        limiterFor: (api) => this.opts.limiters.get(limiterOwner(account), api, this.qpsFor(accountName, api), account.rate_limit_margin, this.opts.sourceIpCeilings?.[api]),
        metrics: this.opts.metrics,
        requestTimeoutMs: account.request_timeout,
      });
      this.callers.set(key, client);
    }
    return client;
  }

  close(): void {
    for (const t of this.held.splice(0)) this.opts.transports.release(t);
    this.callers.clear();
  }
}

/** The QPS an account allows for an API: its override, else the documented default. */
export function accountQps(account: AccountConfig, api: string, defaultQps: Readonly<Record<string, number>>): number {
  const qps = account.qps?.[api] ?? defaultQps[api];
  if (!qps) throw new Error(`no rate limit known for API ${api}: set accounts[].qps.${api}`);
  return qps;
}
