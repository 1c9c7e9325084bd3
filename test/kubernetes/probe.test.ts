// The web-security overlay's probe script (deploy/kubernetes/overlays/web-security/probe.js): exit 0 only on 200 with
// the password. Against a small HTTPS server that asks for basic auth, and against the real exporter serving the
// overlay's own web-config.yml (only the certificate paths and the password hash put in).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../../emulator/server';
import { startExporter, waitFor, type ExporterProcess } from '../helpers/exporter-process';
import { ALIYUN, ALIYUN_ACCOUNT_YAML, emulator, tempDir } from '../helpers/harness';
import { HTPASSWD_COST10 } from '../web/helpers';
import { makeTestPki } from '../web/pki';
import { overlayDir } from './render';

const PROBE = path.join(overlayDir('web-security'), 'probe.js');
// A self-signed certificate for localhost made for this test only (openssl req -x509 ... -days 36500).
const FIXTURES = path.join(__dirname, 'fixtures');
const USER = 'prometheus';
const PASSWORD = 'correct horse';

let server: https.Server;
let port: number;
let ready = 503;
const authDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cse-probe-auth-'));

beforeAll(async () => {
  fs.writeFileSync(path.join(authDir, 'username'), `${USER}\n`);
  fs.writeFileSync(path.join(authDir, 'password'), PASSWORD);
  server = https.createServer(
    { cert: fs.readFileSync(path.join(FIXTURES, 'test-only-localhost.crt')), key: fs.readFileSync(path.join(FIXTURES, 'test-only-localhost.key')) },
    (req, res) => {
      const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'www-authenticate': 'Basic' }).end();
        return;
      }
      if (req.url === '/-/healthy') res.writeHead(200).end('Healthy');
      else if (req.url === '/-/ready') res.writeHead(ready).end();
      else res.writeHead(404).end();
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(authDir, { recursive: true, force: true });
});

async function probe(endpoint: string, dir = authDir, probePort = port): Promise<number> {
  try {
    await promisify(execFile)(process.execPath, [PROBE, String(probePort), endpoint, dir], { timeout: 10_000 });
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

describe('web-security probe.js', () => {
  it('succeeds on 200 with the username and password of the mounted files (trailing newline ignored)', async () => {
    expect(await probe('/-/healthy')).toBe(0);
  });

  it('fails while the endpoint answers otherwise (not ready: 503)', async () => {
    ready = 503;
    expect(await probe('/-/ready')).toBe(1);
    ready = 200;
    expect(await probe('/-/ready')).toBe(0);
  });

  it('fails with a wrong password (401), without the auth files, and when nothing listens', async () => {
    const wrong = fs.mkdtempSync(path.join(os.tmpdir(), 'cse-probe-wrong-'));
    fs.writeFileSync(path.join(wrong, 'username'), USER);
    fs.writeFileSync(path.join(wrong, 'password'), 'wrong');
    try {
      expect(await probe('/-/healthy', wrong)).toBe(1);
    } finally {
      fs.rmSync(wrong, { recursive: true, force: true });
    }
    expect(await probe('/-/healthy', path.join(authDir, 'missing'))).toBe(1);
    const closed = https.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const freePort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    expect(await probe('/-/healthy', authDir, freePort)).toBe(1);
  });
});

describe("web-security probe.js against the real exporter serving the overlay's web-config.yml", () => {
  const INSTANCE = 'post-cn-probe0001';
  let dir: string;
  let emu: Emulator;
  let exporter: ExporterProcess;
  let auth: string;

  beforeAll(async () => {
    dir = tempDir();
    const pki = makeTestPki(dir);
    const overlayWebConfig = fs.readFileSync(path.join(overlayDir('web-security'), 'web-config.yml'), 'utf8');
    const webConfig = overlayWebConfig
      .replace('/etc/cloud-session-exporter/tls/tls.crt', pki.server.cert)
      .replace('/etc/cloud-session-exporter/tls/tls.key', pki.server.key)
      .replace('REPLACE_WITH_BCRYPT_HASH_OF_THE_SCRAPE_PASSWORD', HTPASSWD_COST10.hash);
    expect(YAML.parse(webConfig)).toEqual({ tls_server_config: { cert_file: pki.server.cert, key_file: pki.server.key }, basic_auth_users: { prometheus: HTPASSWD_COST10.hash } });
    fs.writeFileSync(path.join(dir, 'web-config.yml'), webConfig);
    auth = path.join(dir, 'probe-auth');
    fs.mkdirSync(auth);
    fs.writeFileSync(path.join(auth, 'username'), 'prometheus');
    fs.writeFileSync(path.join(auth, 'password'), HTPASSWD_COST10.password);
    // The first poll answers after 3 s, so the exporter is alive but not ready for that long.
    emu = await emulator({ credentials: [ALIYUN], latency: { min_ms: 3000, max_ms: 3000 }, mqtt: { instances: [{ instance_id: INSTANCE, fleets: [{ group_id: 'GID_sensor', size: 2, online_ratio: 1 }] }] } });
    const config = `accounts:
${ALIYUN_ACCOUNT_YAML}jobs:
  - {name: fleet, type: aliyun_mqtt_sessions, account: ${ALIYUN.account}, schedule: "0 0 1 1 *", timeout: 10s, region: cn-hangzhou, endpoint: "${emu.url}", instance_id: ${INSTANCE}, client_ids: ["GID_sensor@@@dev-000001"]}
`;
    exporter = await startExporter(config, { AK: ALIYUN.access_key_id, SK: ALIYUN.access_key_secret }, [`--web.config.file=${path.join(dir, 'web-config.yml')}`]);
  }, 30_000);

  afterAll(async () => {
    await exporter?.terminate();
    await emu?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('liveness passes at once; readiness fails until the first poll is done, then passes; a wrong password fails both', async () => {
    expect(await probe('/-/healthy', auth, exporter.port)).toBe(0);
    expect(await probe('/-/ready', auth, exporter.port)).toBe(1);
    await waitFor('readiness', async () => (await probe('/-/ready', auth, exporter.port)) === 0, 15_000);
    const wrong = path.join(dir, 'wrong-auth');
    fs.mkdirSync(wrong);
    fs.writeFileSync(path.join(wrong, 'username'), 'prometheus');
    fs.writeFileSync(path.join(wrong, 'password'), 'wrong');
    expect(await probe('/-/healthy', wrong, exporter.port)).toBe(1);
    expect(await probe('/-/ready', wrong, exporter.port)).toBe(1);
    expect(exporter.output()).not.toContain(HTPASSWD_COST10.password);
  }, 30_000);
});
