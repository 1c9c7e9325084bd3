// Alibaba credential types against the emulator's identity endpoints, driving real signed pop-core calls to a
// verifying endpoint: rotations without a refused call, outages ridden out, the default chain's stickiness fixed.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DefaultCredentialsProvider } from '@alicloud/credentials';
import { aliyunCredentialsSchema } from '../../src/config/credentials';
import { createAliyunCredentials, type AliyunCredentialsOptions } from '../../src/cloud/credentials/aliyun';
import type { RefreshEvent } from '../../src/cloud/credentials/refresh';
import { captureLogger, credentialSuite, providerFactory, drive, expectFetchesFollowRefreshes, expectRotations, popClient, startRotationRuns, stsThrough, until, type IdentityServer } from './helpers';
import { startProxy } from '../helpers/proxy';

const BASE = { account: 'aliyun-main', provider: 'aliyun' as const, access_key_id: 'LTAI5tBaseKeyForCredTests', access_key_secret: 'base-secret-for-credential-tests-0001' };
const ROLE = 'acs:ram::1234567890:role/cse-exporter';
const OIDC_PROVIDER = 'acs:ram::1234567890:oidc-provider/ack-rrsa-test';
const ISSUER = 'https://oidc-ack.test/clusters/c1';

const suite = credentialSuite('cse-creds-aliyun-', { baseSecret: BASE.access_key_secret, oidc: { issuer: ISSUER, audience: 'sts.aliyuncs.com', file: 'token' } });
const { dir, logs, closers: open, identity: start } = suite;

function identity(ttlSeconds: number): Promise<IdentityServer> {
  return start({
    ttlSeconds,
    aliyunCredentials: [BASE],
    aliyun: {
      roles: [{ arn: ROLE, account: 'aliyun-main' }],
      oidcProviders: [{ arn: OIDC_PROVIDER, issuer: ISSUER, clientIds: ['sts.aliyuncs.com'] }],
      ecs: { roleName: 'cse-ecs-role', account: 'aliyun-main' },
      credentialsUri: { path: '/credentials', account: 'aliyun-main' },
    },
  });
}

const create = providerFactory((cfg, opts: AliyunCredentialsOptions) => createAliyunCredentials(aliyunCredentialsSchema.parse(cfg), opts), suite, 200);

function collect(lines: string[]): void {
  logs.push(...lines);
}

describe('Alibaba credentials', () => {
  let server: IdentityServer;
  beforeAll(async () => {
    server = await identity(4);
  });

  test('ram_role_arn, oidc_role_arn, credentials_uri and ecs_ram_role rotate every few seconds with no call refused', async () => {
    const configs: Record<string, Record<string, unknown>> = {
      ram_role_arn: { type: 'ram_role_arn', role_arn: ROLE, access_key_id: BASE.access_key_id, access_key_secret: BASE.access_key_secret, sts_endpoint: server.url },
      oidc_role_arn: { type: 'oidc_role_arn', role_arn: ROLE, oidc_provider_arn: OIDC_PROVIDER, oidc_token_file: 'token', sts_endpoint: server.url },
      credentials_uri: { type: 'credentials_uri', uri: `${server.url}/credentials` },
      ecs_ram_role: { type: 'ecs_ram_role', metadata_endpoint: server.url },
    };
    const runs = await startRotationRuns(configs, create);

    // 9 s with credentials living 3-4 s: at least three rotations each, calls every 25 ms throughout.
    const results = await Promise.all(runs.map((r) => drive(popClient(server.url, r.creds), 9000, 25)));
    expectRotations(runs, results, logs);
    if (process.env.CSE_CRED_FIGURES) console.log(JSON.stringify({ results, refreshes: runs.map((r) => [r.name, r.events.length, r.events.map((e) => e.expiry)]), stats: server.identity.stats() }));
    expect(server.refused).toEqual({});
    // Fetches follow rotations, not calls: hundreds of calls, a handful of STS requests each.
    const stats = server.identity.stats();
    expectFetchesFollowRefreshes(stats['aliyun-sts AssumeRole ok'], runs[0]!);
    expectFetchesFollowRefreshes(stats['aliyun-sts AssumeRoleWithOIDC ok'], runs[1]!);
    expect(results[0]!.ok).toBeGreaterThan(10 * stats['aliyun-sts AssumeRole ok']!);
    for (const r of runs) r.creds.close();
  }, 30_000);

  test('sts: keys and token re-read from files rewritten during the run, no call refused', async () => {
    const write = (): void => {
      const c = server.identity.store.issueAliyun({ account: 'aliyun-main', role: 'files', ttlMs: 3000 });
      // Each file replaced by a rename, one after the other, as a careless writer would.
      for (const [name, value] of [['ak', c.keyId], ['sk', c.secret], ['tok', c.token]] as const) {
        fs.writeFileSync(path.join(dir, `${name}.tmp`), `${value}\n`);
        fs.renameSync(path.join(dir, `${name}.tmp`), path.join(dir, name));
      }
    };
    write();
    const events: RefreshEvent[] = [];
    const { creds, lines } = create({ type: 'sts', access_key_id_file: 'ak', access_key_secret_file: 'sk', security_token_file: 'tok' }, { events, recheckMs: 150, settleMs: 60 });
    await creds.ready();
    const rotate = setInterval(write, 1200);
    const res = await drive(popClient(server.url, creds), 7000, 25);
    clearInterval(rotate);
    collect(lines);
    expect(res.failed).toEqual([]);
    expect(res.ok).toBeGreaterThan(100);
    expect(events.filter((e) => e.result === 'success').length).toBeGreaterThanOrEqual(5);
    expect(creds.expiry).toBeUndefined();
    creds.close();
  }, 20_000);

  test('refreshNow(generation) after an "expired" answer: one fetch, the call retried once succeeds', async () => {
    const { creds, lines } = create({ type: 'ram_role_arn', role_arn: ROLE, access_key_id: BASE.access_key_id, access_key_secret: BASE.access_key_secret, sts_endpoint: server.url });
    await creds.ready();
    const call = popClient(server.url, creds);
    await call();
    // The cloud's clock says the held token is over (skew, revocation): the store's copy is aged.
    const { accessKeyId } = await creds.getCredentials();
    const held = server.identity.store.all().find((c) => c.keyId === accessKeyId);
    held!.expiresAt = Date.now() - 1000;
    const gen = creds.generation;
    const err = (await call().catch((e: unknown) => e)) as { code?: string };
    expect(err.code).toBe('InvalidSecurityToken.Expired');
    const before = server.identity.stats()['aliyun-sts AssumeRole ok'] ?? 0;
    // Ten refused calls at once share one fetch.
    await Promise.all(Array.from({ length: 10 }, () => creds.refreshNow(gen)));
    expect(server.identity.stats()['aliyun-sts AssumeRole ok']).toBe(before + 1);
    expect(creds.generation).toBe(gen + 1);
    await expect(call()).resolves.toBeTruthy();
    // A refusal seen with an older generation fetches nothing.
    await creds.refreshNow(gen);
    expect(server.identity.stats()['aliyun-sts AssumeRole ok']).toBe(before + 1);
    collect(lines);
  });
});

describe('Alibaba credentials through a proxy', () => {
  test('STS (ram_role_arn, oidc_role_arn) goes through the account\'s proxy; instance metadata and the credentials URI never do', async () => {
    const server = await identity(600);
    const proxy = await startProxy();
    // Only the proxy can reach this name (it routes it to the identity server): a fetch that did not use it fails.
    const sts = `http://sts.emulator.test:${server.port}`;
    const stsProxy = stsThrough(proxy.url);
    const made = [
      create({ type: 'ram_role_arn', role_arn: ROLE, access_key_id: BASE.access_key_id, access_key_secret: BASE.access_key_secret, sts_endpoint: sts }, { stsProxy }),
      create({ type: 'oidc_role_arn', role_arn: ROLE, oidc_provider_arn: OIDC_PROVIDER, oidc_token_file: 'token', sts_endpoint: sts }, { stsProxy }),
      create({ type: 'ecs_ram_role', metadata_endpoint: server.url }, { stsProxy }),
      create({ type: 'credentials_uri', uri: `${server.url}/credentials` }, { stsProxy }),
    ];
    for (const { creds } of made) await creds.ready();
    expect(made.map(({ creds }) => creds.state)).toEqual(['ok', 'ok', 'ok', 'ok']);
    // One STS answer each for the two role types, all forwarded; the instance metadata (token, role, credential) and the URI were fetched directly.
    expect(Object.values(proxy.forwarded).reduce((a, b) => a + b, 0)).toBe(2);
    expect(server.identity.stats()['aliyun-sts AssumeRole ok']).toBe(1);
    expect(server.identity.stats()['aliyun-sts AssumeRoleWithOIDC ok']).toBe(1);
    for (const { creds, lines } of made) {
      creds.close();
      collect(lines);
    }
  });
});

describe('Alibaba credentials when an endpoint is down', () => {
  let server: IdentityServer;
  beforeAll(async () => {
    server = await identity(6);
  });

  test('STS black-holed across the refresh: calls go on with the held credential, refresh resumes when it is back', async () => {
    // STS comes back as soon as the scheduled refresh (at 2/3 of the held credential's 5-6 s) has hung and failed.
    const events: RefreshEvent[] = [];
    const { creds, lines } = create({ type: 'ram_role_arn', role_arn: ROLE, access_key_id: BASE.access_key_id, access_key_secret: BASE.access_key_secret, sts_endpoint: server.url }, { events, httpTimeoutMs: 700, onRefresh: (e) => void (e.result === 'failure' && server.identity.setMode('aliyun-sts', 'up')) });
    await creds.ready();
    const firstExpiry = creds.expiry!;
    server.identity.setMode('aliyun-sts', 'blackhole');
    const res = await drive(popClient(server.url, creds), 6500, 25);
    collect(lines);
    expect(res.failed).toEqual([]);
    // A hanging refresh never holds a call up: calls read the cached credential.
    expect(res.slowestMs).toBeLessThan(600);
    const failures = events.filter((e) => e.result === 'failure');
    expect(failures.length).toBeGreaterThanOrEqual(1);
    expect(failures[0]!.error).toMatch(/no complete answer within 700 ms/);
    expect(creds.expiry!).toBeGreaterThan(firstExpiry);
    expect(creds.state).toBe('ok');
    // Logged once per state change, not per attempt.
    expect(lines.filter((l) => l.includes('credential refresh failed')).length).toBe(1);
    expect(lines.filter((l) => l.includes('credential refresh recovered')).length).toBe(1);
    expect(server.refused).toEqual({});
  }, 20_000);

  test('ecs_ram_role with metadata black-holed: each attempt ends at the timeout; no credential -> calls fail fast, then recover', async () => {
    server.identity.setMode('ecs-metadata', 'blackhole');
    const events: RefreshEvent[] = [];
    const { creds, lines } = create({ type: 'ecs_ram_role', role_name: 'cse-ecs-role', metadata_endpoint: server.url }, { events, httpTimeoutMs: 300 });
    const t0 = Date.now();
    await creds.ready();
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(creds.state).toBe('expired');
    const call = popClient(server.url, creds);
    const err = (await call().catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('CredentialsUnavailableError');
    server.identity.setMode('ecs-metadata', 'up');
    await until(() => creds.state === 'ok', 5000, 'recovery');
    await expect(call()).resolves.toBeTruthy();
    expect(events.filter((e) => e.result === 'failure').length).toBeGreaterThanOrEqual(1);
    expect(lines.filter((l) => l.includes('could not be obtained')).length).toBe(1);
    collect(lines);
  }, 15_000);
});

describe('default chain', () => {
  const saved = { ...process.env };
  let server: IdentityServer;
  beforeAll(async () => {
    server = await identity(30);
    // Only the instance role is configured (no profile files, no environment keys, no RRSA, no URI).
    for (const k of Object.keys(process.env)) if (k.startsWith('ALIBABA_CLOUD_')) delete process.env[k];
    process.env.HOME = dir;
    process.env.ALIBABA_CLOUD_CREDENTIALS_FILE = path.join(dir, 'no-such-file');
    process.env.ALIBABA_CLOUD_CLI_PROFILE_DISABLED = 'true';
  });
  afterAll(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  test('one failed start leaves the vendor chain stuck on its last provider; ours walks the chain again and recovers', async () => {
    server.identity.setMode('ecs-metadata', 'unavailable');
    // The vendor chain, its instance-metadata requests sent to the emulator (and nothing else anywhere).
    const vendor = DefaultCredentialsProvider.builder().build() as unknown as { providers: Array<{ doRequest?: unknown; getProviderName(): string }>; getCredentials(): Promise<unknown> };
    for (const p of vendor.providers) {
      p.doRequest = async (r: { host?: string; path?: string; method: string; headers?: Record<string, string>; url?: string }) => {
        if (r.host !== '100.100.100.200') throw new Error(`not sent: ${p.getProviderName()} is not configured here`);
        const res = await fetch(`${server.url}${r.path}`, { method: r.method, headers: r.headers });
        return { statusCode: res.status, headers: Object.fromEntries(res.headers), body: Buffer.from(await res.arrayBuffer()) };
      };
    }
    const { logger, lines } = captureLogger();
    const chain = createAliyunCredentials({ type: 'default' }, { logger, account: 'chain', minRetryMs: 200, endpoints: { ecsMetadata: server.url } });
    open.push(chain);
    await expect(vendor.getCredentials()).rejects.toThrow();
    await chain.ready();
    expect(chain.state).toBe('expired');

    server.identity.setMode('ecs-metadata', 'up');
    // The vendor chain now only ever asks its last provider (the unset credentials URI): it never recovers.
    await expect(vendor.getCredentials()).rejects.toThrow(/credential_uri is not configured/);
    await until(() => chain.state === 'ok', 5000, 'the default chain to recover');
    const key = await chain.getCredentials();
    expect(key.accessKeyId).toMatch(/^STS\./);
    expect(await popClient(server.url, chain)()).toBeTruthy();
    collect(lines);
  }, 15_000);

  test('walked from the start each time: environment keys that appear win, and when they go the instance role answers again', async () => {
    const { logger, lines } = captureLogger();
    const chain = createAliyunCredentials({ type: 'default' }, { logger, account: 'chain2', minRetryMs: 100, recheckMs: 200, endpoints: { ecsMetadata: server.url } });
    open.push(chain);
    await chain.ready();
    expect((await chain.getCredentials()).accessKeyId).toMatch(/^STS\./);
    // Environment keys appear: they come first in the chain, so the next walk takes them.
    process.env.ALIBABA_CLOUD_ACCESS_KEY_ID = BASE.access_key_id;
    process.env.ALIBABA_CLOUD_ACCESS_KEY_SECRET = BASE.access_key_secret;
    await chain.refreshNow(chain.generation);
    await until(() => chain.expiry === undefined, 3000, 'the environment keys');
    expect((await chain.getCredentials()).accessKeyId).toBe(BASE.access_key_id);
    delete process.env.ALIBABA_CLOUD_ACCESS_KEY_ID;
    delete process.env.ALIBABA_CLOUD_ACCESS_KEY_SECRET;
    await until(() => chain.expiry !== undefined, 3000, 'the instance role again');
    expect(await popClient(server.url, chain)()).toBeTruthy();
    collect(lines);
  }, 15_000);
});
