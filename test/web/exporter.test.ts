// The web config through the real exporter process (node dist/src/main.js): every endpoint behind TLS, a client
// certificate and basic auth, POST /-/reload included; --web.enable-lifecycle; certificate rotation and a bad new file
// (kept out, logged once, shown by a metric); --web.config.check and --config.check; the toolkit's own example file;
// and SIGTERM with TLS connections open.
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFlags } from '../../src/main';
import { runExporter, startExporter, waitFor, type ExporterProcess } from '../helpers/exporter-process';
import { parseExposition } from '../helpers/exposition';
import { tempDir } from '../helpers/harness';
import { HTPASSWD_COST10, basicAuthHeader, request, statusOf } from './helpers';
import { issue, makeTestPki, type CertFiles, type TestPki } from './pki';

const NO_JOBS = 'accounts: []\njobs: []\n';
const AUTH = basicAuthHeader('prometheus', HTPASSWD_COST10.password);
const MUTUAL_TLS_AND_AUTH = {
  tls_server_config: { cert_file: 'server.crt', key_file: 'server.key', client_auth_type: 'RequireAndVerifyClientCert', client_ca_file: 'ca.crt' },
  basic_auth_users: { prometheus: HTPASSWD_COST10.hash },
};

let pki: TestPki;
const running: ExporterProcess[] = [];

beforeAll(() => {
  pki = makeTestPki(tempDir());
});
afterAll(() => {
  for (const e of running) e.kill();
  fs.rmSync(pki.dir, { recursive: true, force: true });
});

let webFiles = 0;
/** An exporter without jobs on `webConfig`, written as web-N.yml beside the test certificates (the file's relative names). */
async function exporterWith(webConfig: object | undefined, flags: string[] = [], file = path.join(pki.dir, `web-${++webFiles}.yml`)): Promise<ExporterProcess> {
  const webFlags: string[] = [];
  if (webConfig) {
    fs.writeFileSync(file, YAML.stringify(webConfig));
    webFlags.push(`--web.config.file=${file}`);
  }
  const e = await startExporter(NO_JOBS, {}, ['--config.allow-no-jobs', ...webFlags, ...flags]);
  running.push(e);
  return e;
}

const mtls = () => ({ ca: pki.ca.cert, client: pki.client });

async function scrapeOverTls(e: ExporterProcess) {
  const r = await request(e.port, { tls: mtls(), authorization: AUTH, path: '/metrics' });
  if ('error' in r || r.status !== 200) throw new Error(`scrape failed: ${JSON.stringify(r)}`);
  return parseExposition(r.body);
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

/** The SHA-256 fingerprint of the certificate a new connection is served. */
async function servedCertificate(e: ExporterProcess): Promise<string | undefined> {
  const r = await request(e.port, { tls: mtls(), authorization: AUTH, path: '/-/healthy' });
  return 'error' in r ? undefined : r.serverFingerprint;
}

describe('every endpoint behind TLS, a client certificate and basic auth', () => {
  let e: ExporterProcess;
  beforeAll(async () => {
    e = await exporterWith(MUTUAL_TLS_AND_AUTH);
  });

  it('answers 401 without the password (or with a wrong one) on every path, and 200 with it', async () => {
    const seen: Record<string, unknown> = {};
    for (const p of ['/', '/config', '/status.css', '/metrics', '/-/healthy', '/-/ready', '/nope']) {
      const none = await request(e.port, { tls: mtls(), path: p });
      const wrong = await request(e.port, { tls: mtls(), path: p, authorization: basicAuthHeader('prometheus', 'wrong') });
      const right = await request(e.port, { tls: mtls(), path: p, authorization: AUTH });
      seen[p] = [statusOf(none), statusOf(wrong), statusOf(right), 'error' in none ? undefined : none.headers['www-authenticate']];
    }
    expect(seen).toEqual({
      '/': [401, 401, 200, 'Basic'],
      '/config': [401, 401, 200, 'Basic'],
      '/status.css': [401, 401, 200, 'Basic'],
      '/metrics': [401, 401, 200, 'Basic'],
      '/-/healthy': [401, 401, 200, 'Basic'],
      '/-/ready': [401, 401, 200, 'Basic'],
      '/nope': [401, 401, 404, 'Basic'],
    });
  });

  it('refuses a client without a certificate, and one that speaks plain HTTP', async () => {
    expect(statusOf(await request(e.port, { tls: { ca: pki.ca.cert }, authorization: AUTH, path: '/metrics' }))).toMatch(/^refused/);
    expect(statusOf(await request(e.port, { authorization: AUTH, path: '/metrics' }))).not.toBe(200);
  });

  it('refuses POST /-/reload without the password (nothing reloaded) and reloads with it', async () => {
    const reloaded = () => count(e.output(), '"configuration reloaded"');
    const before = reloaded();
    const refused = await request(e.port, { tls: mtls(), method: 'POST', path: '/-/reload' });
    expect(statusOf(refused)).toBe(401);
    expect(statusOf(await request(e.port, { tls: mtls(), method: 'POST', path: '/-/reload', authorization: basicAuthHeader('prometheus', 'wrong') }))).toBe(401);
    expect(reloaded()).toBe(before);
    const ok = await request(e.port, { tls: mtls(), method: 'POST', path: '/-/reload', authorization: AUTH });
    expect(ok).toMatchObject({ status: 200, body: 'Reloaded.\n' });
    await waitFor('the reload in the log', () => reloaded() === before + 1, 5000);
  });

  it('reloads on SIGHUP too', async () => {
    const before = count(e.output(), '"configuration reloaded"');
    e.child.kill('SIGHUP');
    await waitFor('the SIGHUP reload in the log', () => count(e.output(), '"configuration reloaded"') === before + 1, 5000);
  });

  it('never logs the password, its hash or the private key', () => {
    const logs = e.output();
    expect(logs).toContain('"web configuration loaded"');
    expect(logs).not.toContain(HTPASSWD_COST10.password);
    expect(logs).not.toContain(HTPASSWD_COST10.hash);
    expect(logs).not.toContain(fs.readFileSync(pki.server.key, 'utf8').split('\n')[1]);
  });
});

describe('the web config file changes under a running exporter', () => {
  it('serves a rotated certificate without a restart; a bad new file keeps the old one, is logged once with why, and sets the metric to 0', async () => {
    const webFile = path.join(pki.dir, 'web-rotation.yml');
    const e = await exporterWith(MUTUAL_TLS_AND_AUTH, [], webFile);
    const served = () => servedCertificate(e);
    expect(await served()).toBe(pki.server.fingerprint256);
    let m = await scrapeOverTls(e);
    expect(m.value('cloud_session_exporter_web_config_last_reload_successful')).toBe(1);
    const startedAt = m.value('cloud_session_exporter_web_config_last_reload_success_timestamp_seconds')!;

    // Rotation: cert-manager's way, new key and certificate renamed into place.
    const rotated = issue(pki.dir, pki.ca, 'server', { sans: ['DNS:localhost', 'IP:127.0.0.1'], usage: 'serverAuth' });
    expect(rotated.fingerprint256).not.toBe(pki.server.fingerprint256);
    const tookMs = await waitFor('the rotated certificate to be served', async () => (await served()) === rotated.fingerprint256, 15_000);
    console.log(`rotated certificate served ${tookMs} ms after it was written`);
    m = await scrapeOverTls(e);
    expect(m.value('cloud_session_exporter_web_config_last_reload_successful')).toBe(1);
    const rotatedAt = m.value('cloud_session_exporter_web_config_last_reload_success_timestamp_seconds')!;
    expect(rotatedAt).toBeGreaterThan(startedAt);

    // A bad file: the previous configuration (this certificate, this password, client certificates) stays in force.
    const good = fs.readFileSync(webFile, 'utf8');
    fs.writeFileSync(webFile, `${good}rate_limits:\n  burst: 1\n`);
    await waitFor('the metric to show the failed read', async () => (await scrapeOverTls(e)).value('cloud_session_exporter_web_config_last_reload_successful') === 0, 15_000);
    for (let i = 0; i < 5; i++) {
      expect(await served()).toBe(rotated.fingerprint256);
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(statusOf(await request(e.port, { tls: { ca: pki.ca.cert }, authorization: AUTH }))).toMatch(/^refused/);
    expect(statusOf(await request(e.port, { tls: mtls(), path: '/metrics' }))).toBe(401);
    const failures = e.output().split('\n').filter((l) => l.includes('web configuration reload failed'));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(/rate_limits \(line \d+\): unknown key \\"rate_limits\\"/);
    m = await scrapeOverTls(e);
    expect(m.value('cloud_session_exporter_web_config_last_reload_success_timestamp_seconds')).toBe(rotatedAt);

    fs.writeFileSync(webFile, good);
    await waitFor('the metric to recover', async () => (await scrapeOverTls(e)).value('cloud_session_exporter_web_config_last_reload_successful') === 1, 15_000);
    expect((await scrapeOverTls(e)).value('cloud_session_exporter_web_config_last_reload_success_timestamp_seconds')).toBeGreaterThan(rotatedAt);
    expect(e.output()).not.toContain(fs.readFileSync(rotated.key, 'utf8').split('\n')[1]);
  }, 60_000);

  it('serves a certificate renewed in a Kubernetes Secret volume, where the kubelet swaps a ..data link', async () => {
    // The kubelet's layout: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/; an update writes a new timestamped
    // directory, renames a new ..data link over the old one, then deletes the old directory.
    const volume = fs.mkdtempSync(path.join(pki.dir, 'secret-volume-'));
    const publish = (dir: string, c: CertFiles) => {
      fs.mkdirSync(path.join(volume, dir));
      fs.copyFileSync(c.cert, path.join(volume, dir, 'tls.crt'));
      fs.copyFileSync(c.key, path.join(volume, dir, 'tls.key'));
      fs.symlinkSync(dir, path.join(volume, '..data_tmp'));
      fs.renameSync(path.join(volume, '..data_tmp'), path.join(volume, '..data'));
    };
    const first = issue(pki.dir, pki.ca, 'secret-first', { sans: ['IP:127.0.0.1'], usage: 'serverAuth' });
    const renewed = issue(pki.dir, pki.ca, 'secret-renewed', { sans: ['IP:127.0.0.1'], usage: 'serverAuth' });
    publish('..2026_01_01_00_00_00.1', first);
    for (const f of ['tls.crt', 'tls.key']) fs.symlinkSync(path.join('..data', f), path.join(volume, f));
    const e = await exporterWith({ ...MUTUAL_TLS_AND_AUTH, tls_server_config: { ...MUTUAL_TLS_AND_AUTH.tls_server_config, cert_file: path.join(volume, 'tls.crt'), key_file: path.join(volume, 'tls.key') } });
    expect(await servedCertificate(e)).toBe(first.fingerprint256);

    publish('..2026_03_01_00_00_00.2', renewed);
    fs.rmSync(path.join(volume, '..2026_01_01_00_00_00.1'), { recursive: true });
    await waitFor('the renewed certificate to be served', async () => (await servedCertificate(e)) === renewed.fingerprint256, 15_000);
    expect(e.output()).not.toContain('web configuration reload failed');
  }, 30_000);
});

describe('--web.enable-lifecycle', () => {
  it('is on by default; --no-web.enable-lifecycle and --web.enable-lifecycle=false turn it off', () => {
    expect(parseFlags([])['web.enable-lifecycle']).toBe(true);
    expect(parseFlags(['--no-web.enable-lifecycle'])['web.enable-lifecycle']).toBe(false);
    expect(parseFlags(['--web.enable-lifecycle=false'])['web.enable-lifecycle']).toBe(false);
    expect(() => parseFlags(['--web.enable-lifecycle=off'])).toThrow('flag --web.enable-lifecycle takes true or false, got "off"');
  });

  it('off: POST /-/reload is refused with 403 as Prometheus does, SIGHUP still reloads', async () => {
    const e = await exporterWith(undefined, ['--web.enable-lifecycle=false']);
    const res = await fetch(`${e.url}/-/reload`, { method: 'POST' });
    expect([res.status, await res.text()]).toEqual([403, 'Lifecycle API is not enabled.\n']);
    expect(e.output()).not.toContain('"configuration reloaded"');
    e.child.kill('SIGHUP');
    await waitFor('the SIGHUP reload in the log', () => e.output().includes('"configuration reloaded"'), 5000);
  });

  it('on (the default): POST /-/reload reloads', async () => {
    const e = await exporterWith(undefined);
    const res = await fetch(`${e.url}/-/reload`, { method: 'POST' });
    expect([res.status, await res.text()]).toEqual([200, 'Reloaded.\n']);
  });

  it('off behind basic auth: 401 without the password, 403 with it', async () => {
    const e = await exporterWith(MUTUAL_TLS_AND_AUTH, ['--no-web.enable-lifecycle']);
    expect(statusOf(await request(e.port, { tls: mtls(), method: 'POST', path: '/-/reload' }))).toBe(401);
    expect(statusOf(await request(e.port, { tls: mtls(), method: 'POST', path: '/-/reload', authorization: AUTH }))).toBe(403);
  });
});

describe('checking a web config, and starting with one', () => {
  const config = () => {
    const file = path.join(pki.dir, 'no-jobs.yml');
    fs.writeFileSync(file, NO_JOBS);
    return file;
  };

  it("accepts the toolkit's documented example (docs/web-config.yml, which node_exporter points to) unchanged, and serves it", async () => {
    // Byte for byte as published (test/web/testdata/); it names server.crt and server.key beside it.
    const dir = fs.mkdtempSync(path.join(pki.dir, 'toolkit-'));
    fs.copyFileSync(pki.server.cert, path.join(dir, 'server.crt'));
    fs.copyFileSync(pki.server.key, path.join(dir, 'server.key'));
    const file = path.join(dir, 'web-config.yml');
    fs.copyFileSync(path.join(__dirname, 'testdata/toolkit-docs-web-config.yml'), file);

    const check = await runExporter(['--web.config.check', `--web.config.file=${file}`]);
    expect(check.err).toBe('');
    expect(check.code).toBe(0);
    expect(check.out).toContain(`${file}: the web configuration is valid.`);
    expect(check.out).toContain('basic auth: 2 user(s): alice, bob');
    expect(check.out).toContain('rate limit: 1 request per 1s, burst 20, for the whole server');

    const both = await runExporter([`--config.file=${config()}`, '--config.allow-no-jobs', '--config.check', `--web.config.file=${file}`]);
    expect(both.code).toBe(0);
    expect(both.out).toContain('configuration is valid (0 account(s), 0 job(s))');
    expect(both.out).toContain(`${file}: the web configuration is valid.`);

    const e = await startExporter(NO_JOBS, {}, ['--config.allow-no-jobs', `--web.config.file=${file}`]);
    running.push(e);
    // Basic auth for alice and bob; a bucket of 20 requests, one more each second: after 20 quick ones, 429 comes soon.
    const statuses: Array<number | string> = [];
    while (statuses.length < 40 && statuses.at(-1) !== 429) statuses.push(statusOf(await request(e.port, { tls: { ca: pki.ca.cert }, path: '/metrics' })));
    expect(statuses.slice(0, 20)).toEqual(Array(20).fill(401));
    expect(statuses.at(-1)).toBe(429);
    expect(new Set(statuses)).toEqual(new Set([401, 429]));
  });

  it('rejects an invalid one naming each key and line: --web.config.check, --config.check and start-up', async () => {
    const file = path.join(pki.dir, 'bad-web.yml');
    fs.writeFileSync(file, ['tls_server_config:', '  cert_file: server.crt', '  key_fil: server.key', 'basic_auth_users:', '  alice: hunter2-in-clear', ''].join('\n'));
    const problems = [
      `${file}: 3 problem(s) in the web configuration:`,
      `  - tls_server_config.key_fil (line 3): unknown key "key_fil" (allowed: cert, key, client_ca, cert_file, key_file, client_auth_type, client_ca_file, cipher_suites, curve_preferences, min_version, max_version, prefer_server_cipher_suites, client_allowed_sans)`,
      '  - tls_server_config (line 1): missing one of key or key_file',
      '  - basic_auth_users.alice (line 5): the password hash of user "alice" is not a bcrypt hash (it must start with "$2y$", "$2b$" or "$2a$"; see docs/web-security.md for how to make one)',
    ];
    const check = await runExporter(['--web.config.check', `--web.config.file=${file}`]);
    expect([check.code, check.out]).toEqual([1, '']);
    expect(check.err.trimEnd().split('\n').sort()).toEqual([...problems].sort());

    const both = await runExporter([`--config.file=${config()}`, '--config.allow-no-jobs', '--config.check', `--web.config.file=${file}`]);
    expect(both.code).toBe(1);
    expect(both.out).toContain('configuration is valid (0 account(s), 0 job(s))');
    expect(both.err.trimEnd().split('\n').sort()).toEqual([...problems].sort());

    const start = await runExporter([`--config.file=${config()}`, '--config.allow-no-jobs', `--web.config.file=${file}`, '--web.listen-address=127.0.0.1:0']);
    expect(start.code).toBe(1);
    expect(start.err).toContain(`cloud-session-exporter: cannot start: ${problems[0]}`);
    expect(start.err).toContain(problems[1]);
    expect(start.err).not.toContain('"listening"');
    for (const r of [check, both, start]) expect(r.out + r.err).not.toContain('hunter2-in-clear');
  });

  it('--web.config.check without --web.config.file is a usage error', async () => {
    expect(await runExporter(['--web.config.check'])).toMatchObject({ code: 2, err: 'cloud-session-exporter: --web.config.check needs --web.config.file=FILE\n' });
  });
});

describe('SIGTERM', () => {
  it('exits 0 within the grace period plus one second with TLS connections open: idle, mid-request and mid-handshake', async () => {
    const graceMs = 2000;
    const e = await exporterWith(MUTUAL_TLS_AND_AUTH, [`--web.shutdown-grace-period=${graceMs}ms`]);
    const sockets: net.Socket[] = [];
    try {
      // 1. A kept-alive connection after a whole scrape.
      const agent = new https.Agent({ keepAlive: true, ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(pki.client.cert), key: fs.readFileSync(pki.client.key) });
      await new Promise<void>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: e.port, path: '/metrics', agent, headers: { authorization: AUTH } }, (res) => {
            expect(res.statusCode).toBe(200);
            res.resume().on('end', resolve);
          })
          .on('error', reject);
      });
      // 2. A verified TLS connection that sends half a request and then nothing.
      const half = tls.connect({ host: '127.0.0.1', port: e.port, ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(pki.client.cert), key: fs.readFileSync(pki.client.key), servername: 'localhost' });
      sockets.push(half);
      await new Promise<void>((resolve, reject) => half.once('secureConnect', resolve).once('error', reject));
      half.write(`GET /metrics HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${AUTH}\r\n`);
      // 3. A TCP connection that never starts its TLS handshake.
      const silent = net.connect(e.port, '127.0.0.1');
      sockets.push(silent);
      await new Promise<void>((resolve, reject) => silent.once('connect', resolve).once('error', reject));
      for (const s of sockets) s.on('error', () => undefined);
      await new Promise((r) => setTimeout(r, 200));

      const exit = await e.terminate();
      console.log(`SIGTERM with 3 TLS connections open (grace ${graceMs} ms): exit ${exit.code} after ${exit.ms} ms`);
      agent.destroy();
      expect(exit.code).toBe(0);
      expect(exit.ms).toBeLessThan(graceMs + 1000);
      // The server closed: the exit was not the hard one that ends a shutdown which is stuck.
      expect(e.output()).not.toContain('shutdown did not complete');
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});
