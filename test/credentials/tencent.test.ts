// Tencent credential types against the emulator's identity endpoints, driving real TC3-signed SDK calls to a
// verifying endpoint; and each fault of the SDK's own credential classes reproduced next to the workaround.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { CvmRoleCredential, DefaultCredentialProvider, OIDCRoleArnCredential, STSCredential } from 'tencentcloud-sdk-nodejs-common';
import { tencentCredentialsSchema } from '../../src/config/credentials';
import { createTencentCredentials, type TencentCredentialsOptions } from '../../src/cloud/credentials/tencent';
import type { RefreshEvent } from '../../src/cloud/credentials/refresh';
import { credentialSuite, providerFactory, drive, expectFetchesFollowRefreshes, expectRotations, makeOidcToken, startRotationRuns, sleep, startSilentServer, stsThrough, tencentClient, until, type IdentityServer } from './helpers';
import { startProxy } from '../helpers/proxy';

const BASE = { account: 'tencent-main', provider: 'tencentcloud' as const, secret_id: 'AKIDBaseKeyForCredentialTests01', secret_key: 'base-tencent-secret-for-tests-01' };
const ROLE = 'qcs::cam::uin/100000000001:roleName/cse-exporter';
const PROVIDER_ID = 'tke-cls-test';
const ISSUER = 'https://tke-oidc.test/cls-test';

const suite = credentialSuite('cse-creds-tencent-', { baseSecret: BASE.secret_key, oidc: { issuer: ISSUER, audience: 'sts.cloud.tencent.com', file: 'identity-token' } });
const { dir, logs, oidcToken, closers: open, identity: start } = suite;

function identity(ttlSeconds: number): Promise<IdentityServer> {
  return start({
    ttlSeconds,
    tencentCredentials: [BASE],
    tencent: {
      roles: [{ arn: ROLE, account: 'tencent-main' }],
      oidcProviders: [{ id: PROVIDER_ID, issuer: ISSUER, clientIds: ['sts.cloud.tencent.com'] }],
      cvm: { roleName: 'cse-cvm-role', account: 'tencent-main' },
    },
  });
}

const create = providerFactory((cfg, opts: TencentCredentialsOptions) => createTencentCredentials(tencentCredentialsSchema.parse(cfg), opts), suite, 100);

function client(port: number, creds: { getCredential(): Promise<unknown> }): () => Promise<unknown> {
  const c = tencentClient(port, creds);
  open.push(c);
  return c.call;
}

/** What the SDK client config of the vendor classes needs to reach the emulator (explicit agent: no proxy). */
function vendorConfig(port: number, credential?: unknown): Record<string, unknown> {
  const agent = new http.Agent({ keepAlive: false });
  return { ...(credential ? { credential } : {}), region: 'ap-guangzhou', profile: { httpProfile: { endpoint: `127.0.0.1:${port}`, protocol: 'http://', agent, reqTimeout: 5 } } };
}

describe('Tencent credentials', () => {
  let server: IdentityServer;
  beforeAll(async () => {
    server = await identity(4);
  });

  test('assume_role, oidc_role_arn and cvm_role rotate every few seconds with no call refused', async () => {
    const configs: Record<string, Record<string, unknown>> = {
      assume_role: { type: 'assume_role', role_arn: ROLE, secret_id: BASE.secret_id, secret_key: BASE.secret_key, sts_endpoint: server.url },
      oidc_role_arn: { type: 'oidc_role_arn', role_arn: ROLE, provider_id: PROVIDER_ID, web_identity_token_file: 'identity-token', sts_endpoint: server.url },
      cvm_role: { type: 'cvm_role', metadata_endpoint: server.url },
    };
    const runs = await startRotationRuns(configs, create);
    const results = await Promise.all(runs.map((r) => drive(client(server.port, r.creds), 9000, 25)));
    if (process.env.CSE_CRED_FIGURES) console.log(JSON.stringify({ results, refreshes: runs.map((r) => [r.name, r.events.length]), stats: server.identity.stats() }));
    expectRotations(runs, results, logs);
    expect(server.refused).toEqual({});
    const stats = server.identity.stats();
    expectFetchesFollowRefreshes(stats['tencent-sts AssumeRole ok'], runs[0]!);
    expectFetchesFollowRefreshes(stats['tencent-sts AssumeRoleWithWebIdentity ok'], runs[1]!);
    for (const r of runs) r.creds.close();
  }, 30_000);

  test('SDK fault: OIDCRoleArnCredential given parameters keeps its first web identity token; ours reads the rotated file each refresh', async () => {
    // Projected service-account tokens are short-lived and rewritten by the kubelet; here each lives 3 s.
    const file = path.join(dir, 'short-token');
    const rewrite = (): void => {
      fs.writeFileSync(`${file}.tmp`, makeOidcToken({ iss: ISSUER, aud: 'sts.cloud.tencent.com', sub: 'sa', exp: Math.floor(Date.now() / 1000) + 3 }));
      fs.renameSync(`${file}.tmp`, file);
    };
    rewrite();
    const vendor = new OIDCRoleArnCredential(vendorConfig(server.port) as never, { RoleArn: ROLE, RoleSessionName: 'vendor', WebIdentityToken: fs.readFileSync(file, 'utf8'), ProviderId: PROVIDER_ID, DurationSeconds: 3600 });
    const events: RefreshEvent[] = [];
    const { creds, lines } = create({ type: 'oidc_role_arn', role_arn: ROLE, provider_id: PROVIDER_ID, web_identity_token_file: 'short-token', sts_endpoint: server.url }, { events });
    await creds.ready();
    await vendor.getCredential();
    const rotate = setInterval(rewrite, 1000);
    const res = await drive(client(server.port, creds), 6000, 25);
    clearInterval(rotate);
    logs.push(...lines);
    expect(res.failed).toEqual([]);
    expect(events.filter((e) => e.result === 'failure')).toEqual([]);
    expect(events.filter((e) => e.result === 'success').length).toBeGreaterThanOrEqual(3);
    // The vendor's credential expired meanwhile; its renewal sends the token it was built with, which expired too.
    await expect(vendor.getCredential()).rejects.toThrow(/WebIdentityToken error: the token has expired/);
  }, 15_000);

  test('sts: secret_id, secret_key and token re-read from files rewritten during the run, no call refused', async () => {
    const write = (): void => {
      const c = server.identity.store.issueTencent({ account: 'tencent-main', role: 'files', ttlMs: 3000 });
      for (const [name, value] of [['sid', c.keyId], ['skey', c.secret], ['tok', c.token]] as const) {
        fs.writeFileSync(path.join(dir, `${name}.tmp`), value);
        fs.renameSync(path.join(dir, `${name}.tmp`), path.join(dir, name));
      }
    };
    write();
    const events: RefreshEvent[] = [];
    const { creds, lines } = create({ type: 'sts', secret_id_file: 'sid', secret_key_file: 'skey', token_file: 'tok' }, { events, recheckMs: 150, settleMs: 60 });
    await creds.ready();
    const rotate = setInterval(write, 1200);
    const res = await drive(client(server.port, creds), 7000, 25);
    clearInterval(rotate);
    logs.push(...lines);
    expect(res.failed).toEqual([]);
    expect(events.filter((e) => e.result === 'success').length).toBeGreaterThanOrEqual(5);
  }, 20_000);
});

describe('Tencent credentials when STS is down', () => {
  let server: IdentityServer;
  beforeAll(async () => {
    server = await identity(6);
  });

  test('assume_role with STS answering 503 across the refresh: no call refused, refresh resumes when it is back', async () => {
    // STS comes back after the scheduled refresh (at 2/3 of the held credential's 5-6 s) and two retries have failed.
    const events: RefreshEvent[] = [];
    const { creds, lines } = create({ type: 'assume_role', role_arn: ROLE, secret_id: BASE.secret_id, secret_key: BASE.secret_key, sts_endpoint: server.url }, { events, onRefresh: (e) => void (e.result === 'failure' && events.filter((x) => x.result === 'failure').length === 3 && server.identity.setMode('tencent-sts', 'up')) });
    await creds.ready();
    const firstExpiry = creds.expiry!;
    server.identity.setMode('tencent-sts', 'unavailable');
    const res = await drive(client(server.port, creds), 6500, 25);
    logs.push(...lines);
    expect(res.failed).toEqual([]);
    expect(events.filter((e) => e.result === 'failure').length).toBe(3);
    expect(creds.expiry!).toBeGreaterThan(firstExpiry);
    expect(lines.filter((l) => l.includes('credential refresh failed')).length).toBe(1);
    expect(lines.filter((l) => l.includes('credential refresh recovered')).length).toBe(1);
    expect(server.refused).toEqual({});
  }, 20_000);

  test('SDK fault: STSCredential keeps a failed fetch forever; ours asks again and recovers', async () => {
    server.identity.setMode('tencent-sts', 'unavailable');
    const vendor = new STSCredential(vendorConfig(server.port, { secretId: BASE.secret_id, secretKey: BASE.secret_key }) as never, { RoleArn: ROLE, RoleSessionName: 'vendor', DurationSeconds: 3600 });
    const { creds, lines } = create({ type: 'assume_role', role_arn: ROLE, secret_id: BASE.secret_id, secret_key: BASE.secret_key, sts_endpoint: server.url });
    await expect(vendor.getCredential()).rejects.toThrow(/Get STS AssumeRole failed/);
    await creds.ready();
    expect(creds.state).toBe('expired');
    server.identity.setMode('tencent-sts', 'up');
    await until(() => creds.state === 'ok', 5000, 'recovery');
    // STS answers again, but the vendor class still returns the rejection it kept.
    await expect(vendor.getCredential()).rejects.toThrow(/Get STS AssumeRole failed/);
    await expect(client(server.port, creds)()).resolves.toBeTruthy();
    logs.push(...lines);
  }, 15_000);

  test('SDK fault: OIDCRoleArnCredential renews 0.6 s before expiry (600 compared with ms); ours well before', async () => {
    const vendor = new OIDCRoleArnCredential(vendorConfig(server.port) as never, { RoleArn: ROLE, RoleSessionName: 'vendor', WebIdentityToken: oidcToken, ProviderId: PROVIDER_ID, DurationSeconds: 3600 });
    const { creds, lines } = create({ type: 'oidc_role_arn', role_arn: ROLE, provider_id: PROVIDER_ID, web_identity_token_file: 'identity-token', sts_endpoint: server.url });
    await creds.ready();
    const first = await vendor.getCredential();
    const expiresAt = server.identity.lookupTencent(first.secretId!)!.expiresAt;
    // 1.5 s before expiry: a 600 s margin would have renewed long ago.
    await sleep(expiresAt - 1500 - Date.now());
    const late = await vendor.getCredential();
    expect(late.secretId).toBe(first.secretId);
    const ours = await creds.getCredential();
    const oursLeft = server.identity.lookupTencent(ours.secretId)!.expiresAt - Date.now();
    expect(oursLeft).toBeGreaterThan(3000);
    logs.push(...lines);
  }, 15_000);
});

describe('instance metadata and the default chain', () => {
  const saved = { ...process.env };
  let server: IdentityServer;
  beforeAll(async () => {
    server = await identity(30);
  });
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    vi.restoreAllMocks();
  });

  test('STS (assume_role, oidc_role_arn) goes through the account\'s proxy; instance metadata never does', async () => {
    const server = await identity(600);
    const proxy = await startProxy();
    // Only the proxy can reach this name (it routes it to the identity server): a fetch that did not use it fails.
    const sts = `http://sts.emulator.test:${server.port}`;
    const stsProxy = stsThrough(proxy.url);
    const made = [
      create({ type: 'assume_role', role_arn: ROLE, secret_id: BASE.secret_id, secret_key: BASE.secret_key, region: 'ap-guangzhou', sts_endpoint: sts }, { stsProxy }),
      create({ type: 'oidc_role_arn', role_arn: ROLE, provider_id: PROVIDER_ID, web_identity_token_file: 'identity-token', region: 'ap-guangzhou', sts_endpoint: sts }, { stsProxy }),
      create({ type: 'cvm_role', metadata_endpoint: server.url }, { stsProxy }),
    ];
    for (const { creds } of made) await creds.ready();
    expect(made.map(({ creds }) => creds.state)).toEqual(['ok', 'ok', 'ok']);
    expect(proxy.forwarded).toEqual({ AssumeRole: 1, AssumeRoleWithWebIdentity: 1 });
    for (const { creds, lines } of made) {
      creds.close();
      logs.push(...lines);
    }
  });

  test('SDK fault: CvmRoleCredential goes through http_proxy and waits forever; ours ignores the proxy and is bounded', async () => {
    const proxy = await startSilentServer('blackhole');
    process.env.http_proxy = proxy.url;
    try {
      // The vendor's fixed metadata URL goes to the (local, silent) proxy: nothing leaves the machine, nothing ends.
      const outcome = new CvmRoleCredential().getCredential().then(
        () => 'resolved',
        () => 'rejected',
      );
      expect(await Promise.race([outcome, sleep(1500).then(() => 'pending')])).toBe('pending');
      expect(proxy.accepted).toBe(1);

      const direct = create({ type: 'cvm_role', metadata_endpoint: server.url });
      await direct.creds.ready();
      expect(direct.creds.state).toBe('ok');
      expect(proxy.accepted).toBe(1);
      await expect(client(server.port, direct.creds)()).resolves.toBeTruthy();

      const hole = await startSilentServer('blackhole');
      const t0 = Date.now();
      const bounded = create({ type: 'cvm_role', metadata_endpoint: hole.url }, { httpTimeoutMs: 300 });
      await bounded.creds.ready();
      expect(Date.now() - t0).toBeLessThan(1500);
      expect(bounded.creds.state).toBe('expired');
      await expect(bounded.creds.getCredential()).rejects.toThrow(/no complete answer within 300 ms/);
      bounded.creds.close();
      await hole.close();
      logs.push(...direct.lines, ...bounded.lines);
    } finally {
      await proxy.close();
    }
  }, 15_000);

  test('SDK fault: DefaultCredentialProvider prints with console.error and hands out an empty key; ours logs once, fails, then recovers', async () => {
    for (const k of Object.keys(process.env)) if (k.startsWith('TENCENTCLOUD_') || k.startsWith('TKE_')) delete process.env[k];
    process.env.HOME = dir;
    // The vendor's CVM step goes to a local proxy that resets: it fails at once without leaving the machine.
    const reset = await startSilentServer('reset');
    process.env.http_proxy = reset.url;
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const vendorKey = await new DefaultCredentialProvider().getCredential();
      expect(vendorKey.secretId).toBe('');
      expect(consoleError).toHaveBeenCalled();
      consoleError.mockClear();

      const events: RefreshEvent[] = [];
      const { creds, lines } = create({ type: 'default' }, { events, endpoints: { cvmMetadata: reset.url } });
      await creds.ready();
      expect(creds.state).toBe('expired');
      await expect(creds.getCredential()).rejects.toThrow(/no provider of the default chain answered/);
      expect(lines.filter((l) => l.includes('could not be obtained')).length).toBe(1);

      process.env.TENCENTCLOUD_SECRET_ID = BASE.secret_id;
      process.env.TENCENTCLOUD_SECRET_KEY = BASE.secret_key;
      await until(() => creds.state === 'ok', 5000, 'the environment keys');
      expect((await creds.getCredential()).secretId).toBe(BASE.secret_id);
      await expect(client(server.port, creds)()).resolves.toBeTruthy();
      expect(consoleError).not.toHaveBeenCalled();
      expect(lines.filter((l) => l.includes('"level":"error"')).length).toBe(1);
      logs.push(...lines);
    } finally {
      await reset.close();
    }
  }, 15_000);

  test('default chain: the CVM role answers when nothing comes before it', async () => {
    for (const k of Object.keys(process.env)) if (k.startsWith('TENCENTCLOUD_') || k.startsWith('TKE_')) delete process.env[k];
    process.env.HOME = dir;
    const { creds, lines } = create({ type: 'default' }, { endpoints: { cvmMetadata: server.url } });
    await creds.ready();
    expect(creds.state).toBe('ok');
    expect(creds.expiry).toBeGreaterThan(Date.now());
    await expect(client(server.port, creds)()).resolves.toBeTruthy();
    expect(lines.some((l) => l.includes('default/cvm_role'))).toBe(true);
    logs.push(...lines);
  });
});
