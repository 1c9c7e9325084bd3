// Parses Alibaba POP RPC parameters and verifies Signature v1 (HMAC-SHA1) the way the gateway does.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AliyunCredential } from '../../core/scenario';
import type { NonceStore } from './nonce-store';

export interface PopParams {
  /** Every decoded pair in arrival order, query first, then form body: the signature covers all of them. */
  pairs: [string, string][];
  /** First value per name. */
  values: Map<string, string>;
}

/** RFC 3986 encoding as pop-core's encode(): `~` literal, space `%20`, and `! ' ( ) *` escaped too. */
function popPercentEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function decodeComponent(s: string): string {
  const plusless = s.includes('+') ? s.replace(/\+/g, ' ') : s;
  if (!plusless.includes('%')) return plusless;
  try {
    return decodeURIComponent(plusless);
  } catch {
    // Malformed escapes stay raw; the signature check then fails as it would at the gateway.
    return plusless;
  }
}

function addUrlEncoded(raw: string, into: PopParams): void {
  if (raw === '') return;
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = decodeComponent(eq < 0 ? part : part.slice(0, eq));
    const v = eq < 0 ? '' : decodeComponent(part.slice(eq + 1));
    into.pairs.push([k, v]);
    if (!into.values.has(k)) into.values.set(k, v);
  }
}

/** Query string and (for form posts) body are merged: pop-core and the V2 SDKs put parameters in either. */
export function parsePopParams(rawQuery: string, body: Buffer, contentType: string | undefined): PopParams {
  const params: PopParams = { pairs: [], values: new Map() };
  addUrlEncoded(rawQuery, params);
  if (body.length > 0 && (contentType ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    addUrlEncoded(body.toString('utf8'), params);
  }
  return params;
}

function popStringToSign(method: string, pairs: [string, string][]): string {
  const encoded = pairs
    .filter(([k]) => k !== 'Signature')
    .map(([k, v]): [string, string] => [popPercentEncode(k), popPercentEncode(v)]);
  encoded.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const canonical = encoded.map(([k, v]) => `${k}=${v}`).join('&');
  return `${method}&%2F&${popPercentEncode(canonical)}`;
}

function popSignature(stringToSign: string, secret: string): string {
  return createHmac('sha1', `${secret}&`).update(stringToSign).digest('base64');
}

export type PopAuthResult =
  | { ok: true; credential: AliyunCredential }
  | { ok: false; code: string; message: string; credential?: AliyunCredential };

const TIMESTAMP_RE = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$/;
const TIMESTAMP_WINDOW_MS = 15 * 60_000;
const REQUIRED = ['AccessKeyId', 'Signature', 'SignatureMethod', 'SignatureNonce', 'Timestamp'] as const;

function parsePopTimestamp(s: string): number | undefined {
  const m = TIMESTAMP_RE.exec(s);
  if (m === null) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, se);
  const back = new Date(ms);
  // Date.UTC rolls 2024-02-31 over to March; the gateway calls that a format error.
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) return undefined;
  return ms;
}

export class AliyunVerifier {
  private readonly byKeyId = new Map<string, AliyunCredential>();

  constructor(
    credentials: AliyunCredential[],
    private readonly nonces: NonceStore,
  ) {
    for (const c of credentials) this.byKeyId.set(c.access_key_id, c);
  }

  verify(method: string, params: PopParams, nowMs: number): PopAuthResult {
    const v = params.values;
    for (const name of REQUIRED) {
      if (!v.has(name)) return { ok: false, code: `Missing${name}`, message: `${name} is mandatory for this action.` };
    }
    if (v.get('SignatureMethod') !== 'HMAC-SHA1') {
      return { ok: false, code: 'InvalidSignatureMethod', message: 'Specified signature method is not supported.' };
    }
    const version = v.get('SignatureVersion');
    if (version !== undefined && version !== '1.0') {
      return { ok: false, code: 'InvalidSignatureVersion', message: 'Specified signature version is not supported.' };
    }
    const ts = parsePopTimestamp(v.get('Timestamp') as string);
    if (ts === undefined) {
      return { ok: false, code: 'InvalidTimeStamp.Format', message: 'Specified time stamp or date value is not well formatted.' };
    }
    if (Math.abs(nowMs - ts) > TIMESTAMP_WINDOW_MS) {
      return { ok: false, code: 'InvalidTimeStamp.Expired', message: 'Specified time stamp or date value is expired.' };
    }
    const credential = this.byKeyId.get(v.get('AccessKeyId') as string);
    if (credential === undefined) {
      return { ok: false, code: 'InvalidAccessKeyId.NotFound', message: 'Specified access key is not found.' };
    }
    const sts = popStringToSign(method, params.pairs);
    const expected = Buffer.from(popSignature(sts, credential.access_key_secret));
    const got = Buffer.from(v.get('Signature') as string);
    if (expected.length !== got.length || !timingSafeEqual(expected, got)) {
      // The real gateway echoes its string to sign, secrets of the query included; so does the emulator.
      return {
        ok: false,
        code: 'SignatureDoesNotMatch',
        message: `Specified signature is not matched with our calculation. server string to sign is:${sts}`,
        credential,
      };
    }
    if (credential.security_token !== undefined && v.get('SecurityToken') !== credential.security_token) {
      return {
        ok: false,
        code: 'InvalidSecurityToken.MismatchWithAccessKey',
        message: 'Specified SecurityToken mismatch with the AccessKey.',
        credential,
      };
    }
    if (!this.nonces.claim(`${credential.access_key_id}\u0000${v.get('SignatureNonce') as string}`, nowMs)) {
      return { ok: false, code: 'SignatureNonceUsed', message: 'Specified signature nonce was used already.', credential };
    }
    return { ok: true, credential };
  }
}
