// The exporter polling with every credential type that can be exercised locally, against the emulator's identity
// endpoints issuing credentials that live 20 s: minutes of polling across many rotations with no failed run and no
// call refused for an expired token; and an identity endpoint down for 30 s while the held credential is still valid.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ALIYUN, TENCENT, appFromYaml, emulator, parseExposition, tempDir, type TestApp } from '../helpers/harness';
import type { Emulator } from '../../emulator/server';
import { findSecretLeaks } from '../helpers/secrets';
import { makeOidcToken } from './helpers';

/** How long the rotation test polls: 3 minutes in `npm test`; shorter while working on it (CSE_CRED_E2E_SECONDS). */
const POLL_SECONDS = Number(process.env.CSE_CRED_E2E_SECONDS ?? 180);
const ALI_ROLE = 'acs:ram::1234567890:role/cse-exporter';
const ALI_OIDC = 'acs:ram::1234567890:oidc-provider/ack-rrsa-e2e';
const TEN_ROLE = 'qcs::cam::uin/100000000001:roleName/cse-exporter';
const TEN_PROVIDER = 'tke-cls-e2e';
const MQTT_INSTANCE = 'post-cn-cred0001';
const MONGO_INSTANCE = 'cmgo-cred0001';

function scenario(ttlSeconds: number) {
  return {
    seed: 3,
    credentials: [ALIYUN, TENCENT],
    identity: {
      ttl: ttlSeconds,
      aliyun: {
        roles: [{ arn: ALI_ROLE, account: ALIYUN.account }],
        oidc_providers: [{ arn: ALI_OIDC, client_ids: ['sts.aliyuncs.com'] }],
        ecs: { role_name: 'cse-ecs', account: ALIYUN.account },
        credentials_uri: { path: '/identity/credentials', account: ALIYUN.account },
      },
      tencent: {
        roles: [{ arn: TEN_ROLE, account: TENCENT.account }],
        oidc_providers: [{ id: TEN_PROVIDER, client_ids: ['sts.cloud.tencent.com'] }],
        cvm: { role_name: 'cse-cvm', account: TENCENT.account },
      },
    },
    mqtt: { instances: [{ instance_id: MQTT_INSTANCE, region: 'cn-hangzhou', fleets: [{ group_id: 'GID_cred', size: 30, online_ratio: 0.5 }] }] },
    mongodb: { instances: [{ instance_id: MONGO_INSTANCE, region: 'ap-guangzhou', client_ips: 12 }] },
  };
}

/** Every credential type that can run here, as `credentials:` blocks (YAML flow mappings) by account name. */
function credentialBlocks(emu: Emulator, dir: string): Record<string, string> {
  return {
    'ali-sts-files': '{type: sts, access_key_id_file: ak, access_key_secret_file: sk, security_token_file: tok}',
    'ali-ram-role': `{type: ram_role_arn, role_arn: "${ALI_ROLE}", access_key_id: ${ALIYUN.access_key_id}, access_key_secret: ${ALIYUN.access_key_secret}, sts_endpoint: "${emu.url}"}`,
    'ali-oidc': `{type: oidc_role_arn, role_arn: "${ALI_ROLE}", oidc_provider_arn: "${ALI_OIDC}", oidc_token_file: ${path.join(dir, 'ali-token')}, sts_endpoint: "${emu.url}"}`,
    'ali-uri': `{type: credentials_uri, uri: "${emu.url}/identity/credentials"}`,
    'ali-ecs': `{type: ecs_ram_role, metadata_endpoint: "${emu.url}"}`,
    'ten-assume': `{type: assume_role, role_arn: "${TEN_ROLE}", secret_id: ${TENCENT.secret_id}, secret_key: ${TENCENT.secret_key}, sts_endpoint: "${emu.url}", region: ap-guangzhou}`,
    'ten-oidc': `{type: oidc_role_arn, role_arn: "${TEN_ROLE}", provider_id: ${TEN_PROVIDER}, web_identity_token_file: ${path.join(dir, 'ten-token')}, sts_endpoint: "${emu.url}", region: ap-guangzhou}`,
    'ten-cvm': `{type: cvm_role, metadata_endpoint: "${emu.url}"}`,
  };
}

/** One account per credential type and one job per account (a `cred` label keeps their series apart), polling every 2 s. */
function exporterYaml(emu: Emulator, blocks: Record<string, string>): string {
  const accounts = Object.entries(blocks).map(([name, block]) => `  - name: ${name}\n    provider: ${name.startsWith('ali') ? 'aliyun' : 'tencentcloud'}\n    credentials: ${block}\n`);
  const jobs = Object.keys(blocks).map((name) =>
    name.startsWith('ali')
      ? `  - {name: mqtt-${name}, type: aliyun_mqtt_sessions, account: ${name}, schedule: "*/2 * * * * *", region: cn-hangzhou, endpoint: "${emu.url}", instance_id: ${MQTT_INSTANCE}, client_ids_file: devices.txt, labels: {cred: ${name}}}\n`
      : `  - {name: mongo-${name}, type: tencentcloud_mongodb_connections, account: ${name}, schedule: "*/2 * * * * *", region: ap-guangzhou, endpoint: "${emu.url}", instance_ids: [${MONGO_INSTANCE}], labels: {cred: ${name}}}\n`,
  );
  return `accounts:\n${accounts.join('')}jobs:\n${jobs.join('')}`;
}

/** Writes a fresh STS credential of the emulator into the three files of `ali-sts-files`, each by rename. */
function rotateStsFiles(emu: Emulator, dir: string, ttlMs: number): void {
  const c = emu.identity!.store.issueAliyun({ account: ALIYUN.account, role: 'files', ttlMs });
  for (const [file, value] of [['ak', c.keyId], ['sk', c.secret], ['tok', c.token]] as const) {
    fs.writeFileSync(path.join(dir, `${file}.tmp`), value);
    fs.renameSync(path.join(dir, `${file}.tmp`), path.join(dir, file));
  }
}

function setUp(emu: Emulator, ttlSeconds: number): { dir: string; blocks: Record<string, string> } {
  const dir = tempDir();
  const exp = Math.floor(Date.now() / 1000) + 3600;
  fs.writeFileSync(path.join(dir, 'ali-token'), makeOidcToken({ sub: 'system:serviceaccount:monitoring:cse', aud: 'sts.aliyuncs.com', exp }));
  fs.writeFileSync(path.join(dir, 'ten-token'), makeOidcToken({ sub: 'system:serviceaccount:monitoring:cse', aud: 'sts.cloud.tencent.com', exp }));
  fs.writeFileSync(path.join(dir, 'devices.txt'), Array.from({ length: 30 }, (_, i) => `GID_cred@@@dev-${String(i + 1).padStart(6, '0')}`).join('\n'));
  rotateStsFiles(emu, dir, ttlSeconds * 1000);
  return { dir, blocks: credentialBlocks(emu, dir) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Failed runs per job and calls the emulator refused at its gateways (expired or unknown tokens among them). */
async function failures(t: TestApp, emu: Emulator): Promise<{ failedRuns: Record<string, number>; refused: Record<string, unknown> }> {
  const m = parseExposition(await t.scrape());
  const failedRuns = Object.fromEntries(m.samples.filter((s) => s.name === 'cloud_session_exporter_job_runs_total' && s.labels.result === 'failure' && s.value > 0).map((s) => [s.labels.job_name, s.value]));
  const refused = Object.fromEntries(Object.entries(emu.stats().apis).filter(([, a]) => Object.keys(a.signature_failures).length > 0).map(([api, a]) => [api, a.signature_failures]));
  return { failedRuns, refused };
}

describe('the exporter with refreshing credentials', () => {
  test(`every local credential type polls for ${POLL_SECONDS} s of 20 s credentials: no failed run, no call refused, expiry moving forward`, async () => {
    const TTL = 20;
    const emu = await emulator(scenario(TTL));
    const { dir, blocks } = setUp(emu, TTL);
    const t = appFromYaml(exporterYaml(emu, blocks), {}, {}, dir);
    t.app.start();
    await t.app.whenReady();

    const expirySeen = new Map<string, number[]>();
    const started = Date.now();
    // Files carry no expiry: the exporter re-reads them every 10 s (plus 1 s settling), so a writer must replace them
    // at least that long before they expire, as a sidecar renewing at half-life would. Here: every 5 s of 20 s.
    let nextFileRotation = started + 5000;
    while (Date.now() - started < POLL_SECONDS * 1000) {
      await sleep(1000);
      if (Date.now() >= nextFileRotation) {
        rotateStsFiles(emu, dir, TTL * 1000);
        nextFileRotation += 5000;
      }
      const m = parseExposition(await t.scrape());
      for (const s of m.samples.filter((x) => x.name === 'cloud_session_exporter_credentials_expiry_timestamp_seconds')) {
        const seen = expirySeen.get(s.labels.account) ?? [];
        if (seen.at(-1) !== s.value) seen.push(s.value);
        expirySeen.set(s.labels.account, seen);
      }
    }
    const m = parseExposition(await t.scrape());
    const { failedRuns, refused } = await failures(t, emu);
    const summary = Object.keys(blocks).map((account) => {
      const ok = m.value('cloud_session_exporter_credentials_refreshes_total', { account, result: 'success' }) ?? 0;
      const failed = m.value('cloud_session_exporter_credentials_refreshes_total', { account, result: 'failure' }) ?? 0;
      return { account, refreshes: ok, failed_refreshes: failed, expiries: expirySeen.get(account)?.length ?? 0 };
    });
    console.log(`credential rotation over ${POLL_SECONDS} s (TTL ${TTL} s):\n${summary.map((s) => `  ${JSON.stringify(s)}`).join('\n')}`);

    expect(failedRuns).toEqual({});
    expect(refused).toEqual({});
    const rotations = Math.floor(POLL_SECONDS / 20);
    for (const s of summary) {
      // The first credential plus one per rotation; `sts` files are re-read when the test rewrites them.
      expect(s.refreshes, s.account).toBeGreaterThanOrEqual(rotations);
      if (s.account === 'ali-sts-files') continue;
      // Files state no expiry; every other type's expiry moved forward at each refresh, never back.
      const seen = expirySeen.get(s.account) ?? [];
      expect(seen.length, s.account).toBeGreaterThanOrEqual(rotations);
      for (let i = 1; i < seen.length; i++) expect(seen[i], s.account).toBeGreaterThan(seen[i - 1]!);
    }
    for (const job of Object.keys(blocks).map((a) => (a.startsWith('ali') ? `mqtt-${a}` : `mongo-${a}`))) {
      expect(m.value('cloud_session_exporter_job_success', { job_name: job }), job).toBe(1);
      expect(m.value('cloud_session_exporter_job_runs_total', { job_name: job, result: 'success' }), job).toBeGreaterThanOrEqual(POLL_SECONDS / 2 - 5);
    }
    // Every credential the emulator issued, and the base keys: none in a log line or the exposition.
    const secrets: Record<string, string> = { ali: ALIYUN.access_key_secret, ten: TENCENT.secret_key };
    for (const c of emu.identity!.store.all()) Object.assign(secrets, { [`${c.keyId}.secret`]: c.secret, [`${c.keyId}.token`]: c.token });
    expect(findSecretLeaks(`${t.logs.join('\n')}\n${await t.scrape()}`, secrets)).toEqual([]);
  }, (POLL_SECONDS + 60) * 1000);

  test('STS and instance metadata down for 30 s around a refresh: the held credentials carry every run', async () => {
    // 90 s credentials refresh with 30 s left (at 60 s); the endpoints are down from 50 s to 80 s, the credential
    // valid until 90 s: refreshes fail, are retried, and succeed once the endpoints are back.
    const TTL = 90;
    const emu = await emulator(scenario(TTL));
    const { dir, blocks } = setUp(emu, TTL);
    const some = { 'ali-ram-role': blocks['ali-ram-role']!, 'ali-ecs': blocks['ali-ecs']!, 'ten-assume': blocks['ten-assume']!, 'ten-cvm': blocks['ten-cvm']! };
    const t = appFromYaml(exporterYaml(emu, some), {}, {}, dir);
    t.app.start();
    await t.app.whenReady();
    const started = Date.now();
    await sleep(50_000 - (Date.now() - started));
    for (const endpoint of ['aliyun-sts', 'ecs-metadata', 'tencent-sts', 'cvm-metadata'] as const) emu.identity!.setMode(endpoint, 'unavailable');
    await sleep(30_000);
    for (const endpoint of ['aliyun-sts', 'ecs-metadata', 'tencent-sts', 'cvm-metadata'] as const) emu.identity!.setMode(endpoint, 'up');
    await sleep(15_000);

    const m = parseExposition(await t.scrape());
    const { failedRuns, refused } = await failures(t, emu);
    expect(failedRuns).toEqual({});
    expect(refused).toEqual({});
    for (const account of Object.keys(some)) {
      // The outage was seen (refreshes failed), and a refresh succeeded after it: the expiry is beyond the first credential's.
      expect(m.value('cloud_session_exporter_credentials_refreshes_total', { account, result: 'failure' }), account).toBeGreaterThan(0);
      expect(m.value('cloud_session_exporter_credentials_refreshes_total', { account, result: 'success' }), account).toBeGreaterThanOrEqual(2);
      expect(m.value('cloud_session_exporter_credentials_expiry_timestamp_seconds', { account })! * 1000, account).toBeGreaterThan(started + TTL * 1000);
    }
    // A failing refresh is logged once per state change, not per attempt.
    const warnings = t.logs.filter((l) => l.includes('credential refresh failed'));
    expect(warnings.length).toBe(Object.keys(some).length);
  }, 150_000);
});
