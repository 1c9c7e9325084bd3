// Cloud accounts from the config: one SDK client per (account, endpoint, API version), one rate limiter per
// (account, API) shared by every job of that account. Limiters outlive config reloads so a reload never resets a window.
import type { AccountConfig } from '../config/schema';
import { ApiClient, type ApiCaller } from './api-client';
import type { ApiMetrics } from './api-metrics';
import { AliyunRpcTransport } from './aliyun';
import { TencentTransport } from './tencent';
import { defaultGuardMs, WindowRateLimiter } from './rate-limiter';
import type { CloudTransport } from './transport';

export type TransportFactory = (account: AccountConfig, endpoint: string, apiVersion: string) => CloudTransport;

export const DEFAULT_TRANSPORTS: Record<string, TransportFactory> = {
  aliyun: (account, endpoint, apiVersion) => {
    if (account.provider !== 'aliyun') throw new Error(`account ${account.name} is not an aliyun account`);
    return new AliyunRpcTransport(
      { accessKeyId: account.access_key_id, accessKeySecret: account.access_key_secret, securityToken: account.security_token },
      endpoint,
      apiVersion,
    );
  },
  tencentcloud: (account, endpoint, apiVersion) => {
    if (account.provider !== 'tencentcloud') throw new Error(`account ${account.name} is not a tencentcloud account`);
    return new TencentTransport({ secretId: account.secret_id, secretKey: account.secret_key, token: account.token }, endpoint, apiVersion, { maxTimeoutMs: account.request_timeout });
  },
};

export class LimiterPool {
  private readonly limiters = new Map<string, WindowRateLimiter>();

  constructor(private readonly metrics: ApiMetrics) {}

  get(account: string, api: string, qps: number, marginMs?: number): WindowRateLimiter {
    const key = `${account}\u0000${api}`;
    const existing = this.limiters.get(key);
    if (existing && existing.rate === Math.floor(qps) && existing.guardMs === (marginMs ?? defaultGuardMs(existing.rate))) return existing;
    existing?.cancelAll();
    const labels = { account, api };
    const limiter = new WindowRateLimiter({
      rate: qps,
      guardMs: marginMs,
      onQueueDepth: (d) => this.metrics.queueDepth.set(labels, d),
      onGuardChange: (ms) => this.metrics.margin.set(labels, ms / 1000),
    });
    // The quota is the cloud's, not this object's: the calls just made still count against the new rate.
    if (existing) limiter.inheritWindow(existing);
    this.metrics.qps.set(labels, limiter.rate);
    this.metrics.margin.set(labels, limiter.currentGuardMs / 1000);
    this.metrics.queueDepth.set(labels, 0);
    // Known (account, API) pairs have their counters from the start, so rate() and alerts never see a gap.
    this.metrics.throttled.inc(labels, 0);
    this.metrics.retries.inc(labels, 0);
    this.limiters.set(key, limiter);
    return limiter;
  }

  /** Forget limiters of accounts or APIs no longer in use. */
  retain(keys: ReadonlySet<string>): void {
    for (const [key, limiter] of this.limiters) {
      if (!keys.has(key)) {
        limiter.cancelAll();
        this.limiters.delete(key);
        const [account, api] = key.split('\u0000');
        for (const m of [this.metrics.qps, this.metrics.margin, this.metrics.queueDepth, this.metrics.throttled, this.metrics.retries]) m.remove({ account, api });
      }
    }
  }

  cancelAll(): void {
    for (const limiter of this.limiters.values()) limiter.cancelAll();
  }
}

export interface CloudAccountsOptions {
  accounts: readonly AccountConfig[];
  metrics: ApiMetrics;
  limiters: LimiterPool;
  /** Documented QPS of every API a job type calls, by API name. */
  defaultQps: Readonly<Record<string, number>>;
  transports?: Readonly<Record<string, TransportFactory>>;
}

export class CloudAccounts {
  private readonly byName: Map<string, AccountConfig>;
  private readonly callers = new Map<string, ApiClient>();
  private readonly transports: CloudTransport[] = [];

  constructor(private readonly opts: CloudAccountsOptions) {
    this.byName = new Map(opts.accounts.map((a) => [a.name, a]));
  }

  account(name: string): AccountConfig {
    const account = this.byName.get(name);
    if (!account) throw new Error(`no account named "${name}"`);
    return account;
  }

  qpsFor(accountName: string, api: string): number {
    const override = this.account(accountName).qps?.[api];
    const qps = override ?? this.opts.defaultQps[api];
    if (!qps) throw new Error(`no rate limit known for API ${api}: set accounts[].qps.${api}`);
    return qps;
  }

  /** The rate-limited, retrying caller of one account at one endpoint and API version. */
  caller(accountName: string, endpoint: string, apiVersion: string): ApiCaller {
    const key = `${accountName}\u0000${endpoint}\u0000${apiVersion}`;
    let client = this.callers.get(key);
    if (!client) {
      const account = this.account(accountName);
      const factory = (this.opts.transports ?? DEFAULT_TRANSPORTS)[account.provider] ?? DEFAULT_TRANSPORTS[account.provider];
      if (!factory) throw new Error(`no SDK transport for provider ${account.provider}`);
      const transport = factory(account, endpoint, apiVersion);
      this.transports.push(transport);
      client = new ApiClient({
        account: accountName,
        transport,
        limiterFor: (api) => this.opts.limiters.get(accountName, api, this.qpsFor(accountName, api), account.rate_limit_margin),
        metrics: this.opts.metrics,
        requestTimeoutMs: account.request_timeout,
      });
      this.callers.set(key, client);
    }
    return client;
  }

  close(): void {
    for (const t of this.transports) t.close?.();
  }
}
