// Reading web config files: the toolkit's documented example as it is, its value rules, and bad files with their exact errors.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkWebConfig, loadWebConfig, nodeTlsOptions, readWebConfig, WebConfigError } from '../../src/web/web-config';
import { makeTestPki, type TestPki } from './pki';

const TESTDATA = path.join(__dirname, 'testdata');
let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki(fs.mkdtempSync(path.join(os.tmpdir(), 'web-config-test-')));
});
afterAll(() => fs.rmSync(pki.dir, { recursive: true, force: true }));

/** Writes `text` next to the test certificates (server.crt, server.key, ca.crt, client.key, …) so relative paths resolve. */
function place(name: string, text: string): string {
  const file = path.join(pki.dir, name);
  fs.writeFileSync(file, text);
  return file;
}

describe('bad files', () => {
  const fixtures = fs.readdirSync(TESTDATA).filter((f) => f.endsWith('.bad.yml'));

  it('there are at least ten, each stating its expected problems', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(10);
    for (const f of fixtures) expect(fs.readFileSync(path.join(TESTDATA, f), 'utf8'), f).toMatch(/^# expect: /m);
  });

  for (const name of fixtures) {
    it(name, () => {
      const text = fs.readFileSync(path.join(TESTDATA, name), 'utf8');
      const file = place(name, text);
      const expected = [...text.matchAll(/^# expect: (.*)$/gm)].map((m) => m[1].split('<dir>').join(pki.dir));
      const { error } = readWebConfig(file);
      expect(error).toBeInstanceOf(WebConfigError);
      expect(error!.problems).toEqual(expected);
      expect(error!.message).toBe(`${file}: ${expected.length} problem(s) in the web configuration:\n  - ${expected.join('\n  - ')}`);
    });
  }
});

describe('accepted files', () => {
  it("the toolkit's documented example (docs/web-config.yml, which node_exporter's README points to), unchanged", () => {
    // Copied byte for byte from prometheus/exporter-toolkit (Apache-2.0); only the certificate it names is made here.
    const file = place('toolkit-docs-web-config.yml', fs.readFileSync(path.join(TESTDATA, 'toolkit-docs-web-config.yml'), 'utf8'));
    const c = loadWebConfig(file);
    expect(c.tls?.certFingerprint256).toBe(pki.server.fingerprint256);
    expect(c.tls?.clientAuth).toBe('NoClientCert');
    expect([...c.users.keys()]).toEqual(['alice', 'bob']);
    expect(c.rateLimit).toEqual({ intervalMs: 1000, burst: 20 });
    expect(c.warnings).toEqual([]);
  });

  it('reads values as go-yaml v2 does: YAML 1.1 booleans, numbers as header text, Go durations, bare numbers as nanoseconds', () => {
    const c = loadWebConfig(
      place(
        'go-yaml.yml',
        [
          'http_server_config:',
          '  http2: off',
          '  headers:',
          '    X-XSS-Protection: 1',
          '    X-Frame-Options: sameorigin',
          '    Content-Security-Policy: ""',
          'rate_limit:',
          '  interval: 1m30s',
          '  burst: 5',
        ].join('\n'),
      ),
    );
    expect(c.http2).toBe(false);
    // A blank header is left unset, as the toolkit documents.
    expect(c.headers).toEqual({ 'X-XSS-Protection': '1', 'X-Frame-Options': 'sameorigin' });
    expect(c.rateLimit).toEqual({ intervalMs: 90_000, burst: 5 });
    expect(loadWebConfig(place('ns.yml', 'rate_limit:\n  interval: 2500000000\n  burst: 1\n')).rateLimit).toEqual({ intervalMs: 2500, burst: 1 });
    expect(loadWebConfig(place('off.yml', 'rate_limit:\n  interval: 0\n  burst: 0\n')).rateLimit).toBeUndefined();
    expect(loadWebConfig(place('empty.yml', '')).tls).toBeUndefined();
  });

  it('takes an inline certificate and key, and resolves file paths against the config file, not the working directory', () => {
    const indent = (f: string) => fs.readFileSync(f, 'utf8').trimEnd().replace(/^/gm, '    ');
    const inline = loadWebConfig(place('inline.yml', `tls_server_config:\n  cert: |\n${indent(pki.server.cert)}\n  key: |\n${indent(pki.server.key)}\n`));
    expect(inline.tls?.certFingerprint256).toBe(pki.server.fingerprint256);
    const sub = fs.mkdtempSync(path.join(os.tmpdir(), 'web-config-cwd-'));
    const cwd = process.cwd();
    try {
      process.chdir(sub);
      expect(loadWebConfig(path.join(pki.dir, 'inline.yml')).tls).toBeDefined();
      expect(loadWebConfig(place('relative.yml', 'tls_server_config:\n  cert_file: server.crt\n  key_file: ./server.key\n')).tls?.certFingerprint256).toBe(pki.server.fingerprint256);
    } finally {
      process.chdir(cwd);
      fs.rmSync(sub, { recursive: true, force: true });
    }
  });

  it('warns about what it accepts but probably was not meant', () => {
    const c = loadWebConfig(
      place(
        'warnings.yml',
        [
          'tls_server_config:',
          '  cert_file: server.crt',
          '  key_file: server.key',
          '  client_auth_type: RequireAnyClientCert',
          '  client_allowed_sans: [prometheus.example]',
          '  min_version: TLS10',
          '  cipher_suites: [TLS_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]',
          'rate_limit:',
          '  interval: 1s',
        ].join('\n'),
      ),
    );
    expect(c.warnings).toEqual([
      'client_allowed_sans is checked against a certificate that RequireAnyClientCert does not verify: anyone can make a certificate with an allowed SAN; use RequireAndVerifyClientCert',
      "min_version TLS10 is accepted, but Node's OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level: clients still need TLS 1.2",
      'cipher_suites lists TLS 1.3 suites: like Go, Node always enables all three TLS 1.3 suites and these entries change nothing',
      'rate_limit has an interval but burst 0: every request is refused with 429, as the toolkit does',
    ]);
    expect(loadWebConfig(place('no-ca.yml', 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n')).warnings).toEqual([
      'VerifyClientCertIfGiven without client_ca_file or client_ca trusts client certificates from every public CA Node knows',
    ]);
  });

  it('maps Go names to what node:tls takes, keeping TLS 1.3 available when a cipher list is given', () => {
    const c = loadWebConfig(
      place(
        'names.yml',
        [
          'tls_server_config:',
          '  cert_file: server.crt',
          '  key_file: server.key',
          '  client_auth_type: RequireAndVerifyClientCert',
          '  client_ca_file: ca.crt',
          '  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA]',
          '  curve_preferences: [X25519, CurveP521]',
          '  prefer_server_cipher_suites: no',
          '  max_version: TLS12',
        ].join('\n'),
      ),
    );
    const o = nodeTlsOptions(c.tls!);
    expect(o.requestCert).toBe(true);
    expect(o.context).toMatchObject({
      ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256',
      ecdhCurve: 'X25519:P-521',
      honorCipherOrder: false,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
    });
  });

  it('--web.config.check: a summary of what the file sets up, or the error', () => {
    const file = place('check.yml', `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\nbasic_auth_users:\n  alice: $2y$05$Odmo/7laDp12pyxlOkBS5uOdCPTYHwRrGj.JaOp22gRkDoibEtVW.\n`);
    const summary = checkWebConfig(file);
    expect(summary.split('\n').map((l) => l.replace(/valid until \S+, SHA-256 \S+/, 'valid until …'))).toEqual([
      `${file}: the web configuration is valid.`,
      '  TLS: TLS12 to TLS13; certificate CN=server, valid until …',
      '  client certificates: RequireAndVerifyClientCert (client CA: 1 certificate(s))',
      "  cipher suites: Node's defaults (server's order)",
      "  curves: Node's defaults",
      '  HTTP/2: enabled in the file, but Node serves HTTP/1.1 only',
      '  response headers: none added',
      '  basic auth: 1 user(s): alice',
      '  rate limit: off',
    ]);
    expect(summary).not.toContain('$2y$');
    expect(() => checkWebConfig(path.join(TESTDATA, 'versions.bad.yml'))).toThrow(WebConfigError);
    expect(() => checkWebConfig(path.join(pki.dir, 'does-not-exist.yml'))).toThrow(`${path.join(pki.dir, 'does-not-exist.yml')}: 1 problem(s) in the web configuration:\n  - cannot read the file: ENOENT (no such file)`);
  });
});
