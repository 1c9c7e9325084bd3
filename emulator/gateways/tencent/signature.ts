// Verifies Tencent Cloud API 3.0 TC3-HMAC-SHA256 request signatures over the raw bytes received.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { TencentCredential } from '../../core/scenario';

export interface Tc3Request {
  method: string;
  path: string;
  rawQuery: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type Tc3AuthResult =
  | { ok: true; credential: TencentCredential }
  | { ok: false; code: string; message: string; credential?: TencentCredential };

const AUTH_RE =
  /^TC3-HMAC-SHA256 Credential=([^/\s]+)\/(\d{4}-\d\d-\d\d)\/([^/\s]+)\/tc3_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;
const WINDOW_S = 300;

const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();

/** The SDK signs URL.hostname: the Host header without its port. */
function hostnameOf(hostHeader: string): string {
  if (hostHeader.startsWith('[')) {
    const end = hostHeader.indexOf(']');
    return end < 0 ? hostHeader : hostHeader.slice(0, end + 1);
  }
  return hostHeader.replace(/:\d*$/, '');
}

function utcDateOf(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().slice(0, 10);
}

function tc3StringToSign(req: Tc3Request, signedHeaders: string[], timestamp: string, scope: string): string | undefined {
  let canonicalHeaders = '';
  for (const name of signedHeaders) {
    const raw = req.headers[name];
    if (typeof raw !== 'string') return undefined;
    const value = name === 'host' ? hostnameOf(raw) : raw;
    canonicalHeaders += `${name}:${value.trim().toLowerCase()}\n`;
  }
  const canonicalRequest = [
    req.method,
    req.path,
    req.rawQuery,
    canonicalHeaders,
    signedHeaders.join(';'),
    sha256Hex(req.body),
  ].join('\n');
  return `TC3-HMAC-SHA256\n${timestamp}\n${scope}\n${sha256Hex(canonicalRequest)}`;
}

function tc3Signature(secretKey: string, date: string, service: string, stringToSign: string): string {
  const kSigning = hmac(hmac(hmac(`TC3${secretKey}`, date), service), 'tc3_request');
  return createHmac('sha256', kSigning).update(stringToSign).digest('hex');
}

export class TencentVerifier {
  private readonly bySecretId = new Map<string, TencentCredential>();

  constructor(
    credentials: TencentCredential[],
    /** The services of the emulated APIs (the TC3 credential scope names them). */
    private readonly services: ReadonlySet<string>,
  ) {
    for (const c of credentials) this.bySecretId.set(c.secret_id, c);
  }

  verify(req: Tc3Request, nowMs: number): Tc3AuthResult {
    const auth = req.headers.authorization;
    const m = typeof auth === 'string' ? AUTH_RE.exec(auth) : null;
    if (m === null) {
      return { ok: false, code: 'AuthFailure.InvalidAuthorization', message: 'Authorization is invalid. Check the TC3-HMAC-SHA256 Authorization header.' };
    }
    const [, secretId, date, service, signedHeaderList, signature] = m as unknown as [string, string, string, string, string, string];
    const tsHeader = req.headers['x-tc-timestamp'];
    if (typeof tsHeader !== 'string' || !/^\d{1,12}$/.test(tsHeader)) {
      return { ok: false, code: 'MissingParameter', message: 'The request is missing a valid `X-TC-Timestamp` header.' };
    }
    const ts = Number(tsHeader);
    const nowS = Math.floor(nowMs / 1000);
    if (Math.abs(nowS - ts) > WINDOW_S) {
      return {
        ok: false,
        code: 'AuthFailure.SignatureExpire',
        message: `Signature expired. Timestamp is ${ts}, server time is ${nowS}; they must be within ${WINDOW_S} seconds.`,
      };
    }
    const credential = this.bySecretId.get(secretId);
    if (credential === undefined) {
      return { ok: false, code: 'AuthFailure.SecretIdNotFound', message: 'The SecretId is not found, please ensure that your SecretId is correct.' };
    }
    const failure = (why: string): Tc3AuthResult => ({
      ok: false,
      code: 'AuthFailure.SignatureFailure',
      message: `The provided credentials could not be validated. ${why}`,
      credential,
    });
    if (date !== utcDateOf(ts)) return failure(`The credential date ${date} is not the UTC date of X-TC-Timestamp.`);
    // The SDK signs endpoint.split('.')[0], and sends the endpoint as Host: "127" when pointed at 127.0.0.1:PORT, the
    // whole "emulator:18080" at a host name without a dot (compose's service names). That is accepted too.
    const hostLabel = String(req.headers.host ?? '').split('.')[0];
    if (!this.services.has(service) && service !== hostLabel) return failure(`Unexpected service "${service}" in the credential scope.`);
    const signedHeaders = signedHeaderList.split(';');
    if (!signedHeaders.includes('content-type') || !signedHeaders.includes('host')) {
      return failure('SignedHeaders must include content-type and host.');
    }
    const sts = tc3StringToSign(req, signedHeaders, tsHeader, `${date}/${service}/tc3_request`);
    if (sts === undefined) return failure('A signed header is missing from the request.');
    const expected = Buffer.from(tc3Signature(credential.secret_key, date, service, sts));
    const got = Buffer.from(signature);
    if (expected.length !== got.length || !timingSafeEqual(expected, got)) {
      return failure('Please check your signature is correct.');
    }
    if (credential.token !== undefined && req.headers['x-tc-token'] !== credential.token) {
      return { ok: false, code: 'AuthFailure.TokenFailure', message: 'Token verification failed.', credential };
    }
    return { ok: true, credential };
  }
}
