// Shared by the web config tests: a real HTTP(S) client (one connection per request), a captured logger, htpasswd hashes.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { createLogger, type Logger } from '../../src/util/log';
import type { CertFiles } from './pki';

// Made with Debian's apache2-utils 2.4.71 (htpasswd), which writes the $2y$ prefix that Go's bcrypt and bcryptjs read:
//   htpasswd -nbBC 10 "" 'S3cret-pass!' | tr -d ':\n'
//   htpasswd -nbBC 5 "" 'htpasswd-made pw' | tr -d ':\n'
// The tests only read these literals; htpasswd is not needed to run them.
export const HTPASSWD_COST10 = { password: 'S3cret-pass!', hash: '$2y$10$Fwt6RwMgzB0Gx/D8lQiuVeyBONvNIo6SAyG3Tl.yq8ZOcojiAz/c6' };
export const HTPASSWD_COST5 = { password: 'htpasswd-made pw', hash: '$2y$05$Odmo/7laDp12pyxlOkBS5uOdCPTYHwRrGj.JaOp22gRkDoibEtVW.' };

export function basicAuthHeader(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The server certificate's SHA-256 fingerprint (HTTPS only). */
  serverFingerprint?: string;
}

interface RequestOptions {
  tls?: { ca: string; client?: CertFiles };
  authorization?: string;
  path?: string;
  /** GET by default. */
  method?: string;
}

/** One request on a fresh connection (so every request is a new TLS handshake); a refused connection resolves to its error code. */
export function request(port: number, o: RequestOptions = {}): Promise<Reply | { error: string }> {
  return new Promise((resolve) => {
    const headers: http.OutgoingHttpHeaders = o.authorization ? { authorization: o.authorization } : {};
    const common = { host: '127.0.0.1', port, path: o.path ?? '/', method: o.method ?? 'GET', headers, agent: false as const, timeout: 5000 };
    const req = o.tls
      ? https.request({
          ...common,
          ca: fs.readFileSync(o.tls.ca),
          cert: o.tls.client && fs.readFileSync(o.tls.client.cert),
          key: o.tls.client && fs.readFileSync(o.tls.client.key),
        })
      : http.request(common);
    req.on('response', (res) => {
      const socket = res.socket as TLSSocket;
      const serverFingerprint = o.tls ? socket.getPeerCertificate().fingerprint256 : undefined;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, serverFingerprint }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

export function statusOf(r: Reply | { error: string }): number | string {
  return 'error' in r ? `refused (${r.error})` : r.status;
}

export interface CapturedLogger {
  logger: Logger;
  text(): string;
}

export function captureLogger(): CapturedLogger {
  const lines: string[] = [];
  return { logger: createLogger({ level: 'debug', format: 'json', write: (l) => lines.push(l) }), text: () => lines.join('') };
}

export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
