// The exporter against the emulator's identity endpoints: a scenario issuing short-lived credentials, one exporter
// account per credential type that can run here, and the checks of a run that must not fail.
import fs from 'node:fs';
import path from 'node:path';
import { ALIYUN, TENCENT, parseExposition, tempDir, type TestApp } from '../helpers/harness';
import type { Emulator } from '../../emulator/server';
import { makeOidcToken } from './helpers';

const ALI_ROLE = 'acs:ram::1234567890:role/cse-exporter';
const ALI_OIDC = 'acs:ram::1234567890:oidc-provider/ack-rrsa-e2e';
const TEN_ROLE = 'qcs::cam::uin/100000000001:roleName/cse-exporter';
const TEN_PROVIDER = 'tke-cls-e2e';
const MQTT_INSTANCE = 'post-cn-cred0001';
const MONGO_INSTANCE = 'cmgo-cred0001';

export function scenario(ttlSeconds: number) {
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

export const POLL_INTERVAL_S = 4;

/**
 * One account per credential type and one job per account (a `cred` label keeps their series apart), polling every
 * POLL_INTERVAL_S seconds; a run gets 90% of it. At every 2 s (1.8 s a run), one of a job's ~90 runs failed once in
 * a container on two busy cores, its cause unrecorded: `failures` now names the error codes of a failed job's runs.
 */
export function exporterYaml(emu: Emulator, blocks: Record<string, string>): string {
  const accounts = Object.entries(blocks).map(([name, block]) => `  - name: ${name}\n    provider: ${name.startsWith('ali') ? 'aliyun' : 'tencentcloud'}\n    credentials: ${block}\n`);
  const jobs = Object.keys(blocks).map((name) =>
    name.startsWith('ali')
      ? `  - {name: mqtt-${name}, type: aliyun_mqtt_sessions, account: ${name}, schedule: "*/${POLL_INTERVAL_S} * * * * *", region: cn-hangzhou, endpoint: "${emu.url}", instance_id: ${MQTT_INSTANCE}, client_ids_file: devices.txt, labels: {cred: ${name}}}\n`
      : `  - {name: mongo-${name}, type: tencentcloud_mongodb_connections, account: ${name}, schedule: "*/${POLL_INTERVAL_S} * * * * *", region: ap-guangzhou, endpoint: "${emu.url}", instance_ids: [${MONGO_INSTANCE}], labels: {cred: ${name}}}\n`,
  );
  return `accounts:\n${accounts.join('')}jobs:\n${jobs.join('')}`;
}

/** Writes a fresh STS credential of the emulator into the three files of `ali-sts-files`, each by rename. */
export function rotateStsFiles(emu: Emulator, dir: string, ttlMs: number): void {
  const c = emu.identity!.store.issueAliyun({ account: ALIYUN.account, role: 'files', ttlMs });
  for (const [file, value] of [['ak', c.keyId], ['sk', c.secret], ['tok', c.token]] as const) {
    fs.writeFileSync(path.join(dir, `${file}.tmp`), value);
    fs.renameSync(path.join(dir, `${file}.tmp`), path.join(dir, file));
  }
}

export function setUp(emu: Emulator, ttlSeconds: number): { dir: string; blocks: Record<string, string> } {
  const dir = tempDir();
  const exp = Math.floor(Date.now() / 1000) + 3600;
  fs.writeFileSync(path.join(dir, 'ali-token'), makeOidcToken({ sub: 'system:serviceaccount:monitoring:cse', aud: 'sts.aliyuncs.com', exp }));
  fs.writeFileSync(path.join(dir, 'ten-token'), makeOidcToken({ sub: 'system:serviceaccount:monitoring:cse', aud: 'sts.cloud.tencent.com', exp }));
  fs.writeFileSync(path.join(dir, 'devices.txt'), Array.from({ length: 30 }, (_, i) => `GID_cred@@@dev-${String(i + 1).padStart(6, '0')}`).join('\n'));
  rotateStsFiles(emu, dir, ttlSeconds * 1000);
  return { dir, blocks: credentialBlocks(emu, dir) };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Failed runs per job and calls the emulator refused at its gateways (expired or unknown tokens among them). */
export async function failures(t: TestApp, emu: Emulator): Promise<{ failedRuns: Record<string, string>; refused: Record<string, unknown> }> {
  const m = parseExposition(await t.scrape());
  // Each failed job with its count and why its runs failed (the codes of its error lines), so a failure says why.
  const why = (job: string) => [...new Set(t.logs.map((l) => JSON.parse(l) as { level: string; job_name?: string; err?: { code?: string; message?: string } }).filter((l) => l.level === 'error' && l.job_name === job).map((l) => l.err?.code ?? l.err?.message ?? '?'))];
  const failedRuns = Object.fromEntries(m.samples.filter((s) => s.name === 'cloud_session_exporter_job_runs_total' && s.labels.result === 'failure' && s.value > 0).map((s) => [s.labels.job_name, `${s.value} (${why(s.labels.job_name!).join(', ')})`]));
  const refused = Object.fromEntries(Object.entries(emu.stats().apis).filter(([, a]) => Object.keys(a.signature_failures).length > 0).map(([api, a]) => [api, a.signature_failures]));
  return { failedRuns, refused };
}

