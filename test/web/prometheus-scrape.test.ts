// The real Prometheus (Debian's /usr/bin/prometheus) scraping a server made by createWebServer over mutual TLS with basic
// auth: up = 1 with the right client certificate and password, 0 with a wrong password or a certificate from another CA.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createWebServer, type WebServer } from '../../src/web/web-server';
import { PROMETHEUS_BIN, haveBinary, waitUntil } from '../e2e/prometheus-process';
import { freePort, stopChild } from '../helpers/servers';
import { HTPASSWD_COST10, captureLogger } from './helpers';
import { makeTestPki, type TestPki } from './pki';

let dir: string;
let pki: TestPki;
let web: WebServer;
let prometheus: ChildProcess | undefined;
let promUrl: string;
let promOutput = '';
const log = captureLogger();

const available = haveBinary(PROMETHEUS_BIN);

beforeAll(async () => {
  if (!available) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'web-prometheus-'));
  pki = makeTestPki(dir);

  const webConfig = path.join(dir, 'web.yml');
  fs.writeFileSync(
    webConfig,
    YAML.stringify({
      tls_server_config: { cert_file: 'server.crt', key_file: 'server.key', client_auth_type: 'RequireAndVerifyClientCert', client_ca_file: 'ca.crt' },
      basic_auth_users: { prometheus: HTPASSWD_COST10.hash },
    }),
  );
  web = createWebServer({
    webConfigFile: webConfig,
    logger: log.logger,
    handler: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end('web_config_test_metric 1\n');
    },
  });
  const { port } = await web.listen('127.0.0.1', 0);

  const passwordFile = path.join(dir, 'password');
  fs.writeFileSync(passwordFile, HTPASSWD_COST10.password);
  const wrongPasswordFile = path.join(dir, 'wrong-password');
  fs.writeFileSync(wrongPasswordFile, 'not the password');
  const job = (name: string, client: { cert: string; key: string }, password: string) => ({
    job_name: name,
    scheme: 'https',
    tls_config: { ca_file: pki.ca.cert, cert_file: client.cert, key_file: client.key },
    basic_auth: { username: 'prometheus', password_file: password },
    static_configs: [{ targets: [`127.0.0.1:${port}`] }],
  });
  const promConfig = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(
    promConfig,
    YAML.stringify({
      global: { scrape_interval: '1s', scrape_timeout: '1s' },
      scrape_configs: [job('good', pki.client, passwordFile), job('wrong-password', pki.client, wrongPasswordFile), job('wrong-ca', pki.wrongCaClient, passwordFile)],
    }),
  );

  const promPort = await freePort();
  promUrl = `http://127.0.0.1:${promPort}`;
  prometheus = spawn(
    PROMETHEUS_BIN,
    [`--config.file=${promConfig}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prometheus.stdout!.on('data', (d: Buffer) => void (promOutput += d.toString()));
  prometheus.stderr!.on('data', (d: Buffer) => void (promOutput += d.toString()));
  await waitUntil(
    'Prometheus to be ready',
    async () => {
      if (prometheus!.exitCode !== null) throw new Error(`prometheus exited with ${prometheus!.exitCode}:\n${promOutput}`);
      return (await fetch(`${promUrl}/-/ready`)).ok;
    },
    20_000,
    100,
  );
}, 40_000);

afterAll(async () => {
  await stopChild(prometheus);
  await web?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

it('up is 1 with the right certificate and password, 0 with a wrong password or a certificate from another CA', async () => {
  // Fails rather than skips: this test is the proof that a real scraper gets through (and only the right one).
  if (!available) throw new Error(`${PROMETHEUS_BIN} is required (Debian package prometheus: apt-get install prometheus, or set PROMETHEUS_BIN)`);
  const up = await waitUntil(
    'a scrape of every job',
    async () => {
      const res = (await (await fetch(`${promUrl}/api/v1/query?query=up`)).json()) as { data: { result: Array<{ metric: { job: string }; value: [number, string] }> } };
      const byJob = Object.fromEntries(res.data.result.map((r) => [r.metric.job, r.value[1]]));
      return Object.keys(byJob).length === 3 && byJob.good === '1' ? byJob : undefined;
    },
    20_000,
  );
  expect(up).toEqual({ good: '1', 'wrong-password': '0', 'wrong-ca': '0' });

  const targets = (await (await fetch(`${promUrl}/api/v1/targets`)).json()) as { data: { activeTargets: Array<{ labels: { job: string }; lastError: string }> } };
  const errors = Object.fromEntries(targets.data.activeTargets.map((t) => [t.labels.job, t.lastError]));
  expect(errors.good).toBe('');
  expect(errors['wrong-password']).toContain('401 Unauthorized');
  expect(errors['wrong-ca']).not.toBe('');

  expect(log.text()).toContain('TLS client refused');
  expect(log.text()).not.toContain(HTPASSWD_COST10.password);
  expect(log.text()).not.toContain('not the password');
}, 30_000);
