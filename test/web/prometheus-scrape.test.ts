// The real Prometheus (Debian's /usr/bin/prometheus) scraping the real exporter (node dist/src/main.js with
// --web.config.file) over mutual TLS with basic auth: up = 1 with the right client certificate and password, and the
// polled series arrive; up = 0 with a wrong password, a client certificate from another CA, or a server certificate
// Prometheus does not trust.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Emulator } from '../../emulator/server';
import { PROMETHEUS_BIN, haveBinary, startPrometheus, waitUntil, type Prometheus } from '../e2e/prometheus-process';
import { startExporter, type ExporterProcess } from '../helpers/exporter-process';
import { ALIYUN, ALIYUN_ACCOUNT_YAML, emulator, tempDir } from '../helpers/harness';
import { HTPASSWD_COST10 } from './helpers';
import { makeTestPki, type TestPki } from './pki';

const INSTANCE = 'post-cn-webtls001';
const IDS = Array.from({ length: 6 }, (_, i) => `GID_sensor@@@dev-${String(i + 1).padStart(6, '0')}`);
const WRONG_PASSWORD = 'not the password';

let dir: string;
let pki: TestPki;
let emu: Emulator;
let exporter: ExporterProcess | undefined;
let prometheus: Prometheus | undefined;

beforeAll(async () => {
  // Fails rather than skips: this file is the proof that a real scraper gets through (and only the right one).
  if (!haveBinary(PROMETHEUS_BIN)) throw new Error(`${PROMETHEUS_BIN} is required (Debian package prometheus: apt-get install prometheus, or set PROMETHEUS_BIN)`);
  dir = tempDir();
  pki = makeTestPki(dir);
  emu = await emulator({ credentials: [ALIYUN], mqtt: { instances: [{ instance_id: INSTANCE, fleets: [{ group_id: 'GID_sensor', size: IDS.length, online_ratio: 0.5 }] }] } });

  const webConfig = path.join(dir, 'web.yml');
  fs.writeFileSync(
    webConfig,
    YAML.stringify({
      tls_server_config: { cert_file: 'server.crt', key_file: 'server.key', client_auth_type: 'RequireAndVerifyClientCert', client_ca_file: 'ca.crt' },
      basic_auth_users: { prometheus: HTPASSWD_COST10.hash },
    }),
  );
  const config = `accounts:
${ALIYUN_ACCOUNT_YAML}jobs:
  - name: fleet
    type: aliyun_mqtt_sessions
    account: ${ALIYUN.account}
    schedule: "*/2 * * * * *"
    region: cn-hangzhou
    endpoint: ${emu.url}
    instance_id: ${INSTANCE}
    client_ids: ${JSON.stringify(IDS)}
`;
  exporter = await startExporter(config, { AK: ALIYUN.access_key_id, SK: ALIYUN.access_key_secret }, [`--web.config.file=${webConfig}`]);

  const passwordFile = path.join(dir, 'password');
  fs.writeFileSync(passwordFile, HTPASSWD_COST10.password);
  const wrongPasswordFile = path.join(dir, 'wrong-password');
  fs.writeFileSync(wrongPasswordFile, WRONG_PASSWORD);
  const job = (name: string, o: { serverCa?: string; client?: { cert: string; key: string }; passwordFile?: string } = {}) => ({
    job_name: name,
    scheme: 'https',
    // The certificate is for localhost and 127.0.0.1; the target is 127.0.0.1.
    tls_config: { ca_file: o.serverCa ?? pki.ca.cert, cert_file: (o.client ?? pki.client).cert, key_file: (o.client ?? pki.client).key },
    basic_auth: { username: 'prometheus', password_file: o.passwordFile ?? passwordFile },
    static_configs: [{ targets: [`127.0.0.1:${exporter!.port}`] }],
  });
  const promDir = path.join(dir, 'prometheus');
  fs.mkdirSync(promDir);
  prometheus = await startPrometheus({
    dir: promDir,
    scrapeConfigs: [
      job('good'),
      job('wrong-password', { passwordFile: wrongPasswordFile }),
      job('wrong-client-ca', { client: pki.wrongCaClient }),
      job('wrong-server-ca', { serverCa: pki.wrongCa.cert }),
    ],
  });
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  if (exporter) await exporter.terminate();
  await emu?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

it('up is 1 with the right client certificate and password, and the polled series arrive; 0 with a wrong password or a wrong CA on either side', async () => {
  const up = await waitUntil(
    'a scrape of every job',
    async () => {
      const byJob = Object.fromEntries((await prometheus!.query('up')).map((s) => [s.metric.job, s.value[1]]));
      return Object.keys(byJob).length === 4 && byJob.good === '1' ? byJob : undefined;
    },
    30_000,
  );
  expect(up).toEqual({ good: '1', 'wrong-password': '0', 'wrong-client-ca': '0', 'wrong-server-ca': '0' });

  const errors = Object.fromEntries((await prometheus!.targets()).map((t) => [t.labels.job, t.lastError]));
  expect(errors.good).toBe('');
  expect(errors['wrong-password']).toContain('401 Unauthorized');
  // The exporter ends the connection of a client whose certificate its CA did not sign (docs/web-security.md).
  expect(errors['wrong-client-ca']).not.toBe('');
  expect(errors['wrong-server-ca']).toMatch(/certificate signed by unknown authority/);

  // The exporter's own data, over the authenticated connection: the polled devices and the web config's state.
  const clients = await waitUntil('the polled devices in Prometheus', async () => {
    const r = await prometheus!.query('sum(aliyun_mqtt_clients{job="good"})');
    return r.length ? r[0].value[1] : undefined;
  }, 20_000);
  expect(Number(clients)).toBe(IDS.length);
  expect((await prometheus!.query('cloud_session_exporter_web_config_last_reload_successful{job="good"}')).map((s) => s.value[1])).toEqual(['1']);

  const logs = exporter!.output();
  expect(logs).toContain('TLS client refused');
  expect(logs).not.toContain(HTPASSWD_COST10.password);
  expect(logs).not.toContain(HTPASSWD_COST10.hash);
  expect(logs).not.toContain(WRONG_PASSWORD);
}, 60_000);
