// One credentials provider per configured account, shared by every transport of the account (all its endpoints and
// API versions) and kept across reloads while the account's settings are unchanged, so a reload neither fetches a new
// role session nor resets the refresh schedule. Closed when the last transport using it is gone.
import type { AccountConfig } from '../../config/schema';
import type { Logger } from '../../util/log';
import { createAliyunCredentials, type AliyunCredentials } from './aliyun';
import { REFRESH_RESULTS, type CredentialMetrics } from './metrics';
import type { CredentialState, CredentialsOptions, RefreshResult } from './refresh';
import { proxyRoute, type ProxyEnv } from '../proxy';
import { createTencentCredentials, type TencentCredentials } from './tencent';

export type AccountCredentials = AliyunCredentials | TencentCredentials;

export interface CredentialsPoolOptions {
  logger: Logger;
  metrics?: CredentialMetrics;
  /** Where HTTPS_PROXY, HTTP_PROXY and NO_PROXY are read for STS calls (default process.env; metadata never uses a proxy). */
  proxyEnv?: ProxyEnv;
  /** Overrides for tests: clocks, retry pacing, exchange timeouts. */
  tuning?: Pick<CredentialsOptions, 'now' | 'minRetryMs' | 'httpTimeoutMs' | 'recheckMs' | 'settleMs'>;
}

/** An account's held credentials as the status page shows them. */
export interface CredentialsStatus {
  account: string;
  /** The credentials type (access_key, sts, ram_role_arn, oidc_role_arn, ...). */
  type: string;
  state: CredentialState;
  /** Of the held credential (Date.now() ms); undefined for static keys. */
  expiry?: number;
  refreshes: Readonly<Record<RefreshResult, number>>;
  lastError: string;
}

interface Entry {
  creds: AccountCredentials;
  users: number;
  account: string;
}

export class CredentialsPool {
  private readonly entries = new Map<string, Entry>();
  private readonly byCreds = new Map<AccountCredentials, string>();

  constructor(private readonly opts: CredentialsPoolOptions) {}

  /** `configDir`: base of the block's relative `*_file` and token paths (the config file's folder). */
  acquire(account: AccountConfig, configDir: string): AccountCredentials {
    // The account's name is in the key: its metrics and logs are per account, even for two with the same keys.
    const key = JSON.stringify([account.name, account.provider, account.credentials, configDir]);
    let entry = this.entries.get(key);
    if (!entry) {
      const creds = this.create(account, configDir);
      entry = { creds, users: 0, account: account.name };
      this.entries.set(key, entry);
      this.byCreds.set(creds, key);
    }
    entry.users++;
    return entry.creds;
  }

  release(creds: AccountCredentials): void {
    const key = this.byCreds.get(creds);
    const entry = key === undefined ? undefined : this.entries.get(key);
    if (!entry || --entry.users > 0) return;
    this.entries.delete(key!);
    this.byCreds.delete(creds);
    creds.close();
    // Another entry of the same account (its settings changed) keeps the series.
    if (![...this.entries.values()].some((e) => e.account === entry.account)) {
      this.opts.metrics?.expiry.remove({ account: entry.account });
      for (const result of REFRESH_RESULTS) this.opts.metrics?.refreshes.remove({ account: entry.account, result });
    }
  }

  /** The credentials held now, one entry per account (two while a reload replaces an account's settings). */
  list(): CredentialsStatus[] {
    return [...this.entries.values()].map(({ account, creds }) => ({ account, type: creds.type, state: creds.state, expiry: creds.expiry, refreshes: { ...creds.refreshes }, lastError: creds.lastError }));
  }

  /** Accounts whose credentials are held now (tests: reloads must not accumulate them). */
  get size(): number {
    return this.entries.size;
  }

  private create(account: AccountConfig, configDir: string): AccountCredentials {
    const labels = { account: account.name };
    const metrics = this.opts.metrics;
    for (const result of REFRESH_RESULTS) metrics?.refreshes.inc({ ...labels, result }, 0);
    const opts: CredentialsOptions = {
      ...this.opts.tuning,
      logger: this.opts.logger,
      account: account.name,
      configDir,
      // STS is a cloud API: it takes the account's route like every call; a route that cannot be used goes direct.
      stsProxy: (url) => {
        const route = proxyRoute(url, account, this.opts.proxyEnv ?? process.env);
        return route.via === 'proxy' ? route : undefined;
      },
      onRefresh: (e) => {
        metrics?.refreshes.inc({ ...labels, result: e.result });
        if (e.expiry !== undefined) metrics?.expiry.set(labels, e.expiry / 1000);
        else metrics?.expiry.remove(labels);
      },
    };
    return account.provider === 'aliyun' ? createAliyunCredentials(account.credentials, opts) : createTencentCredentials(account.credentials, opts);
  }
}
