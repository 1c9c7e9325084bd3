// The web-security overlay's probe script (deploy/kubernetes/overlays/web-security/probe.js) against an HTTPS
// server that asks for basic auth, as the exporter does with a web config: exit 0 only on 200 with the password.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
