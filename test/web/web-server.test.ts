// The server under a web config, with real TLS clients: each client_auth_type as Go's crypto/tls treats it, allowed SANs,
// basic auth, the rate limit, headers, reloads and certificate rotation, and logs that never show a secret.
import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import * as bcrypt from 'bcryptjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebConfigError } from '../../src/web/web-config';
import { createWebServer, type WebServer } from '../../src/web/web-server';
import { HTPASSWD_COST5, basicAuthHeader, captureLogger, request, statusOf, waitFor, type CapturedLogger } from './helpers';
import { issue, makeTestPki, type CertFiles, type TestPki } from './pki';

let pki: TestPki;
let tmp: string;
let running: WebServer[] = [];

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'web-server-test-'));
  pki = makeTestPki(tmp);
});
afterEach(async () => {
  await Promise.all(running.map((s) => s.close()));
  running = [];
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Answers with what the TLS layer saw of the client, so a test can tell "accepted unverified" from "verified". */
const echoClient: http.RequestListener = (req, res) => {
  const socket = req.socket as tls.TLSSocket;
  const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`${peer?.subject?.CN ?? '-'} ${typeof socket.authorized === 'boolean' ? String(socket.authorized) : '-'}`);
};

let configCount = 0;
async function start(yaml: string, o: { log?: CapturedLogger; onReload?: (ok: boolean, err?: string) => void; file?: string; unauthenticatedPaths?: string[] } = {}) {
  const file = o.file ?? path.join(tmp, `web-${++configCount}.yml`);
  fs.writeFileSync(file, yaml);
  const log = o.log ?? captureLogger();
  const server = createWebServer({ webConfigFile: file, handler: echoClient, logger: log.logger, onReload: o.onReload, unauthenticatedPaths: o.unauthenticatedPaths, pollIntervalMs: 200 });
  running.push(server);
  const { port } = await server.listen('127.0.0.1', 0);
  return { server, port, file, log };
}

const tlsYaml = (extra = '') => `tls_server_config:\n  cert_file: ${pki.server.cert}\n  key_file: ${pki.server.key}\n${extra}`;

describe('client_auth_type, as Go crypto/tls applies it', () => {
  const clients: Record<string, () => CertFiles | undefined> = {
    'no certificate': () => undefined,
    'certificate from the CA': () => pki.client,
    'certificate from another CA': () => pki.wrongCaClient,
    'expired certificate from the CA': () => pki.expiredClient,
  };
  // What the handler sees ("CN authorized") or that the connection was refused.
  const expected: Record<string, Record<string, string>> = {
    NoClientCert: { 'no certificate': '- false', 'certificate from the CA': '- false', 'certificate from another CA': '- false', 'expired certificate from the CA': '- false' },
    RequestClientCert: { 'no certificate': '- false', 'certificate from the CA': 'client true', 'certificate from another CA': 'wrong-ca-client false', 'expired certificate from the CA': 'expired-client false' },
    RequireAnyClientCert: { 'no certificate': 'refused', 'certificate from the CA': 'client true', 'certificate from another CA': 'wrong-ca-client false', 'expired certificate from the CA': 'expired-client false' },
    VerifyClientCertIfGiven: { 'no certificate': '- false', 'certificate from the CA': 'client true', 'certificate from another CA': 'refused', 'expired certificate from the CA': 'refused' },
    RequireAndVerifyClientCert: { 'no certificate': 'refused', 'certificate from the CA': 'client true', 'certificate from another CA': 'refused', 'expired certificate from the CA': 'refused' },
  };

  for (const [type, row] of Object.entries(expected)) {
    it(type, async () => {
      const { port } = await start(tlsYaml(type === 'NoClientCert' ? '' : `  client_auth_type: ${type}\n  client_ca_file: ${pki.ca.cert}\n`));
      const seen: Record<string, string> = {};
      for (const [name, client] of Object.entries(clients)) {
        const r = await request(port, { tls: { ca: pki.ca.cert, client: client() } });
        seen[name] = 'error' in r ? 'refused' : r.body;
      }
      expect(seen).toEqual(row);
    });
  }

  it('RequireClientCert, the old spelling, means RequireAnyClientCert', async () => {
    const { port } = await start(tlsYaml(`  client_auth_type: RequireClientCert\n`));
    expect(statusOf(await request(port, { tls: { ca: pki.ca.cert } }))).toMatch(/^refused/);
    expect(statusOf(await request(port, { tls: { ca: pki.ca.cert, client: pki.wrongCaClient } }))).toBe(200);
  });
});

describe('versions, cipher suites and curves, negotiated with real clients', () => {
  /** "protocol cipher" of a bare TLS handshake, or "refused". */
  const handshake = (port: number, o: tls.ConnectionOptions) =>
    new Promise<string>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(pki.ca.cert), ...o }, () => {
        resolve(`${socket.getProtocol()} ${socket.getCipher().name}`);
        socket.destroy();
      });
      socket.on('error', () => resolve('refused'));
    });

  it('limits TLS 1.2 to the listed suites in the server order, and still offers TLS 1.3 (always all three suites, as in Go)', async () => {
    const { port } = await start(tlsYaml('  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n'));
    const tls12 = { maxVersion: 'TLSv1.2' as const };
    expect(await handshake(port, { ...tls12, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384' })).toBe('TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384');
    expect(await handshake(port, { ...tls12, ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305' })).toBe('refused');
    expect(await handshake(port, { minVersion: 'TLSv1.3', ciphers: 'TLS_CHACHA20_POLY1305_SHA256' })).toBe('TLSv1.3 TLS_CHACHA20_POLY1305_SHA256');
  });

  it("follows the client's order when prefer_server_cipher_suites is false", async () => {
    const { port } = await start(tlsYaml('  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n  prefer_server_cipher_suites: false\n'));
    expect(await handshake(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384' })).toBe('TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256');
  });

  it('offers only the listed curves', async () => {
    const { port } = await start(tlsYaml('  min_version: TLS13\n  curve_preferences: [CurveP521]\n'));
    expect(await handshake(port, { ecdhCurve: 'P-384' })).toBe('refused');
    expect(await handshake(port, { ecdhCurve: 'P-384:P-521' })).toMatch(/^TLSv1.3 /);
  });

  it('keeps to min_version and max_version', async () => {
    const only12 = await start(tlsYaml('  max_version: TLS12\n'));
    expect(await handshake(only12.port, { minVersion: 'TLSv1.3' })).toBe('refused');
    expect(await handshake(only12.port, {})).toMatch(/^TLSv1.2 /);
    const only13 = await start(tlsYaml('  min_version: TLS13\n'));
    expect(await handshake(only13.port, { maxVersion: 'TLSv1.2' })).toBe('refused');
  });
});

describe('client_allowed_sans', () => {
  const sansYaml = (sans: string[], type = 'RequireAndVerifyClientCert') =>
    tlsYaml(`  client_auth_type: ${type}\n  client_ca_file: ${pki.ca.cert}\n  client_allowed_sans:\n${sans.map((s) => `    - "${s}"\n`).join('')}`);

  it('lets in a verified client with an allowed DNS, URI, email or IP SAN (IPv6 spelled as Go does)', async () => {
    for (const san of ['prometheus.example', 'spiffe://example.org/prometheus', 'ops@example.com', '::1']) {
      const { port } = await start(sansYaml(['someone-else.example', san]));
      expect(statusOf(await request(port, { tls: { ca: pki.ca.cert, client: pki.client } })), san).toBe(200);
    }
  });

  it('refuses a verified client without an allowed SAN, and a client without a certificate', async () => {
    const log = captureLogger();
    const { port } = await start(sansYaml(['other.example', '0:0:0:0:0:0:0:1']), { log });
    expect(statusOf(await request(port, { tls: { ca: pki.ca.cert, client: pki.client } }))).toMatch(/^refused/);
    expect(log.text()).toContain('no allowed SAN in the client certificate (it has: prometheus.example, ops@example.com, spiffe://example.org/prometheus, ::1)');

    const ifGiven = await start(sansYaml(['prometheus.example'], 'VerifyClientCertIfGiven'));
    expect(statusOf(await request(ifGiven.port, { tls: { ca: pki.ca.cert } }))).toMatch(/^refused/);
    expect(statusOf(await request(ifGiven.port, { tls: { ca: pki.ca.cert, client: pki.client } }))).toBe(200);
  });
});

describe('basic auth, headers and rate limit', () => {
  const users = `basic_auth_users:\n  alice: ${HTPASSWD_COST5.hash}\n`;
  const headers = 'http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n';

  it('200 for the right password; 401 with WWW-Authenticate: Basic for a wrong one, an unknown user or none', async () => {
    const { port } = await start(tlsYaml() + users + headers);
    const tls = { ca: pki.ca.cert };
    const ok = await request(port, { tls, authorization: basicAuthHeader('alice', HTPASSWD_COST5.password) });
    expect(statusOf(ok)).toBe(200);
    for (const authorization of [basicAuthHeader('alice', 'wrong'), basicAuthHeader('bob', HTPASSWD_COST5.password), undefined]) {
      const r = await request(port, { tls, authorization });
      expect(statusOf(r)).toBe(401);
      if ('error' in r) continue;
      expect(r.headers['www-authenticate']).toBe('Basic');
      expect(r.body).toBe('Unauthorized\n');
      // Configured headers go on refusals too: the toolkit sets them before checking credentials.
      expect(r.headers['x-frame-options']).toBe('deny');
    }
    if (!('error' in ok)) {
      expect(ok.headers['x-frame-options']).toBe('deny');
      expect(ok.headers['strict-transport-security']).toBe('max-age=31536000');
    }
  });

  it('serves the paths it is told to without basic auth (none by default)', async () => {
    const { port } = await start(users, { unauthenticatedPaths: ['/-/healthy'] });
    expect(statusOf(await request(port, { path: '/-/healthy?x=1' }))).toBe(200);
    expect(statusOf(await request(port, { path: '/metrics' }))).toBe(401);
  });

  it('answers 429 once the burst is spent, before authentication, as the toolkit does', async () => {
    const { port } = await start(`${users}rate_limit:\n  interval: 1h\n  burst: 3\n`);
    const good = basicAuthHeader('alice', HTPASSWD_COST5.password);
    expect(statusOf(await request(port, { authorization: good }))).toBe(200);
    expect(statusOf(await request(port))).toBe(401);
    expect(statusOf(await request(port, { authorization: basicAuthHeader('alice', 'wrong') }))).toBe(401);
    const limited = await request(port, { authorization: good });
    expect(statusOf(limited)).toBe(429);
    if (!('error' in limited)) expect(limited.body).toBe('Too Many Requests\n');
  });

  it('refills one token per interval', async () => {
    const { port } = await start('rate_limit:\n  interval: 500ms\n  burst: 1\n');
    expect(statusOf(await request(port))).toBe(200);
    expect(statusOf(await request(port))).toBe(429);
    await new Promise((r) => setTimeout(r, 550));
    expect(statusOf(await request(port))).toBe(200);
  });
});

describe('reloading', () => {
  it('serves a rotated certificate without a restart, and keeps it when the replacement is broken', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'rotation-'));
    const first = issue(dir, pki.ca, 'server', { sans: ['IP:127.0.0.1'], usage: 'serverAuth' });
    const reloads: Array<[boolean, string | undefined]> = [];
    const log = captureLogger();
    const { port } = await start('tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n', { file: path.join(dir, 'web.yml'), log, onReload: (ok, err) => reloads.push([ok, err]) });
    const fingerprint = async () => {
      const r = await request(port, { tls: { ca: pki.ca.cert } });
      return 'error' in r ? r.error : r.serverFingerprint;
    };
    expect(await fingerprint()).toBe(first.fingerprint256);

    const second = issue(dir, pki.ca, 'server', { sans: ['IP:127.0.0.1'], usage: 'serverAuth' });
    expect(second.fingerprint256).not.toBe(first.fingerprint256);
    await waitFor('the new certificate to be served', async () => (await fingerprint()) === second.fingerprint256);
    expect(reloads.at(-1)).toEqual([true, undefined]);

    fs.writeFileSync(path.join(dir, 'server.crt'), 'not a certificate\n');
    await waitFor('the broken certificate to be reported', () => reloads.at(-1)?.[0] === false);
    expect(reloads.at(-1)?.[1]).toContain('tls_server_config.cert_file (line 2): contains no PEM certificate');
    expect(await fingerprint()).toBe(second.fingerprint256);
    expect(log.text()).toContain('web configuration reload failed; the previous one stays in force');
    expect(log.text()).not.toContain(fs.readFileSync(second.key, 'utf8').split('\n')[1]);
  });

  it('keeps the previous configuration when the file turns bad, and applies it again once fixed', async () => {
    const reloads: Array<[boolean, string | undefined]> = [];
    const hash = bcrypt.hashSync('first', 4);
    const { server, port, file } = await start(`basic_auth_users:\n  alice: ${hash}\n`, { onReload: (ok, err) => reloads.push([ok, err]) });
    fs.writeFileSync(file, `basic_auth_users:\n  alice: ${hash}\nrate_limits: {}\n`);
    await waitFor('the bad file to be reported', () => reloads.at(-1)?.[0] === false);
    expect(reloads.at(-1)?.[1]).toBe(`${file}: 1 problem(s) in the web configuration:\n  - rate_limits (line 3): unknown key "rate_limits" (allowed: tls_server_config, http_server_config, basic_auth_users, rate_limit)`);
    expect(statusOf(await request(port, { authorization: basicAuthHeader('alice', 'first') }))).toBe(200);

    fs.writeFileSync(file, `basic_auth_users:\n  alice: ${bcrypt.hashSync('second', 4)}\n`);
    await waitFor('the fixed file to be applied', () => reloads.at(-1)?.[0] === true);
    expect(statusOf(await request(port, { authorization: basicAuthHeader('alice', 'first') }))).toBe(401);
    expect(statusOf(await request(port, { authorization: basicAuthHeader('alice', 'second') }))).toBe(200);
    expect(await server.reloadNow()).toEqual({ ok: true });
  });

  it('applies a new client_auth_type to new connections', async () => {
    const { server, port, file } = await start(tlsYaml());
    expect(statusOf(await request(port, { tls: { ca: pki.ca.cert } }))).toBe(200);
    fs.writeFileSync(file, tlsYaml(`  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${pki.ca.cert}\n`));
    expect(await server.reloadNow()).toEqual({ ok: true });
    expect(statusOf(await request(port, { tls: { ca: pki.ca.cert } }))).toMatch(/^refused/);
    expect(statusOf(await request(port, { tls: { ca: pki.ca.cert, client: pki.client } }))).toBe(200);
  });

  it('refuses to switch between HTTP and HTTPS without a restart', async () => {
    const { server, file } = await start('');
    fs.writeFileSync(file, tlsYaml());
    const r = await server.reloadNow();
    expect(r.ok).toBe(false);
    expect(r.error).toContain('switching between HTTP and HTTPS needs a restart');
    expect(server.tls).toBe(false);
  });
});

describe('startup', () => {
  it('throws the WebConfigError of a bad file', () => {
    const file = path.join(tmp, 'bad-start.yml');
    fs.writeFileSync(file, 'tls_server_config:\n  cert_file: missing.crt\n');
    expect(() => createWebServer({ webConfigFile: file, handler: echoClient, logger: captureLogger().logger })).toThrow(WebConfigError);
  });

  it('without a web config file, serves plain HTTP with no checks', async () => {
    const server = createWebServer({ handler: echoClient, logger: captureLogger().logger });
    running.push(server);
    const { port } = await server.listen('127.0.0.1', 0);
    expect(statusOf(await request(port))).toBe(200);
    expect(server.config()).toBeUndefined();
  });
});

describe('logs', () => {
  it('never show passwords, password hashes or private keys', async () => {
    const log = captureLogger();
    const password = 'pa55-in-a-request';
    const hash = bcrypt.hashSync(password, 4);
    const { server, port, file } = await start(tlsYaml(`  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ${pki.ca.cert}\n`) + `basic_auth_users:\n  alice: ${hash}\n`, { log });
    const tls = { ca: pki.ca.cert, client: pki.client };
    expect(statusOf(await request(port, { tls, authorization: basicAuthHeader('alice', password) }))).toBe(200);
    expect(statusOf(await request(port, { tls, authorization: basicAuthHeader('alice', `${password}-wrong`) }))).toBe(401);
    expect(statusOf(await request(port, { tls: { ca: pki.ca.cert, client: pki.wrongCaClient } }))).toMatch(/^refused/);
    // A reload that fails on the key: its message must name the problem, not the key.
    fs.writeFileSync(file, `tls_server_config:\n  cert_file: ${pki.server.cert}\n  key: |\n${fs.readFileSync(pki.client.key, 'utf8').replace(/^/gm, '    ')}\nbasic_auth_users:\n  alice: ${hash}\n`);
    const r = await server.reloadNow();
    expect(r.error).toContain('tls_server_config.key (line 3): does not belong to the certificate (CN=server)');

    const text = log.text();
    expect(text).toContain('web configuration loaded');
    expect(text).toContain('TLS client refused');
    for (const secret of [password, hash, hash.slice(7), ...keyLines(pki.server.key), ...keyLines(pki.client.key)]) {
      expect(text).not.toContain(secret);
      expect(r.error).not.toContain(secret);
    }
  });
});

function keyLines(file: string): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'));
}
