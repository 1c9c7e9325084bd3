// Alibaba credential types against the emulator's identity endpoints, driving real signed pop-core calls to a
// verifying endpoint: rotations without a refused call, outages ridden out, the default chain's stickiness fixed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DefaultCredentialsProvider } from '@alicloud/credentials';
import { aliyunCredentialsSchema } from '../../src/cloud/credentials/config';
import { createAliyunCredentials, type AliyunCredentials } from '../../src/cloud/credentials/aliyun';
import type { RefreshEvent } from '../../src/cloud/credentials/refresh';
import { findSecretLeaks } from '../helpers/secrets';
import { captureLogger, drive, makeOidcToken, popClient, startIdentityServer, until, type IdentityServer } from './helpers';

const BASE = { account: 'aliyun-main', provider: 'aliyun' as const, access_key_id: 'LTAI5tBaseKeyForCredTests', access_key_secret: 'base-secret-for-credential-tests-0001' };
const ROLE = 'acs:ram::1234567890:role/cse-exporter';
const OIDC_PROVIDER = 'acs:ram::1234567890:oidc-provider/ack-rrsa-test';
const ISSUER = 'https://oidc-ack.test/clusters/c1';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cse-creds-aliyun-'));
const oidcToken = makeOidcToken({ iss: ISSUER, sub: 'system:serviceaccount:monitoring:cse', aud: 'sts.aliyuncs.com', exp: Math.floor(Date.now() / 1000) + 3600 });
fs.writeFileSync(path.join(dir, 'token'), oidcToken);

const logs: string[] = [];
const servers: IdentityServer[] = [];
const open: AliyunCredentials[] = [];

function identity(ttlSeconds: number): Promise<IdentityServer> {
  return startIdentityServer({
    ttlSeconds,
    aliyunCredentials: [BASE],
    aliyun: {
      roles: [{ arn: ROLE, account: 'aliyun-main' }],
      oidcProviders: [{ arn: OIDC_PROVIDER, issuer: ISSUER, clientIds: ['sts.aliyuncs.com'] }],
      ecs: { roleName: 'cse-ecs-role', account: 'aliyun-main' },
      credentialsUri: { path: '/credentials', account: 'aliyun-main' },
    },
  }).then((s) => (servers.push(s), s));
}

function create(cfg: Record<string, unknown>, extra: { events?: RefreshEvent[]; onRefresh?: (e: RefreshEvent) => void; httpTimeoutMs?: number; recheckMs?: number; settleMs?: number } = {}): { creds: AliyunCredentials; lines: string[] } {
  const { logger, lines } = captureLogger();
  const creds = createAliyunCredentials(aliyunCredentialsSchema.parse(cfg), {
    logger,
    account: String(cfg.type),
    configDir: dir,
    minRetryMs: 200,
    onRefresh: (e) => {
      extra.events?.push(e);
      extra.onRefresh?.(e);
    },
    httpTimeoutMs: extra.httpTimeoutMs,
    recheckMs: extra.recheckMs,
    settleMs: extra.settleMs,
  });
  open.push(creds);
  return { creds, lines };
}

function collect(lines: string[]): void {
  logs.push(...lines);
}

afterAll(async () => {
  for (const c of open) c.close();
  // Every credential the endpoints issued, the base key and the OIDC token: none may appear in any log line.
  const secrets: Record<string, string> = { base: BASE.access_key_secret, oidc: oidcToken };
  for (const s of servers) for (const c of s.identity.store.all()) Object.assign(secrets, { [`${c.keyId}.id`]: c.keyId, [`${c.keyId}.secret`]: c.secret, [`${c.keyId}.token`]: c.token });
  expect(logs.length).toBeGreaterThan(0);
  expect(findSecretLeaks(logs.join('\n'), secrets)).toEqual([]);
  await Promise.all(servers.map((s) => s.close()));
});

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
    const runs = Object.entries(configs).map(([name, cfg]) => {
      const events: RefreshEvent[] = [];
      const { creds, lines } = create(cfg, { events });
      return { name, creds, events, lines };
    });
    await Promise.all(runs.map((r) => r.creds.ready()));
    for (const r of runs) expect(r.creds.state, r.name).toBe('ok');

    // 9 s with credentials living 3-4 s: at least three rotations each, calls every 25 ms throughout.
    const results = await Promise.all(runs.map((r) => drive(popClient(server.url, r.creds), 9000, 25)));
    runs.forEach((r, i) => {
      collect(r.lines);
      const res = results[i]!;
      expect(res.failed, r.name).toEqual([]);
      expect(res.ok, r.name).toBeGreaterThan(150);
      const successes = r.events.filter((e) => e.result === 'success');
      expect(successes.length, r.name).toBeGreaterThanOrEqual(4);
      // Each refresh holds a credential that expires later than the one before.
      for (let k = 1; k < successes.length; k++) expect(successes[k]!.expiry!, r.name).toBeGreaterThan(successes[k - 1]!.expiry!);
      expect(r.events.filter((e) => e.result === 'failure'), r.name).toEqual([]);
      expect(r.creds.expiry, r.name).toBe(successes.at(-1)!.expiry);
    });
    if (process.env.CSE_CRED_FIGURES) console.log(JSON.stringify({ results, refreshes: runs.map((r) => [r.name, r.events.length, r.events.map((e) => e.expiry)]), stats: server.identity.stats() }));
    expect(server.refused).toEqual({});
    // Fetches follow rotations, not calls: hundreds of calls, a handful of STS requests each.
    const stats = server.identity.stats();
    expect(stats['aliyun-sts AssumeRole ok']! - runs[0]!.events.length).toBeGreaterThanOrEqual(0);
    expect(stats['aliyun-sts AssumeRole ok']! - runs[0]!.events.length).toBeLessThanOrEqual(1);
    expect(stats['aliyun-sts AssumeRoleWithOIDC ok']! - runs[1]!.events.length).toBeGreaterThanOrEqual(0);
    expect(stats['aliyun-sts AssumeRoleWithOIDC ok']! - runs[1]!.events.length).toBeLessThanOrEqual(1);
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
