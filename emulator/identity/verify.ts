// Verifies a signed call whose key may be a scenario credential or one the identity endpoints issued, and then the
// issued credential's token and expiry: the same checks the gateways apply once they consult the store.
import type { PopParams } from '../gateways/aliyun/signature';
import { AliyunVerifier } from '../gateways/aliyun/signature';
import type { NonceStore } from '../gateways/aliyun/nonce-store';
import type { AliyunCredential, TencentCredential } from '../core/scenario';
import { TencentVerifier, type Tc3Request } from '../gateways/tencent/signature';
import type { IssuedCredentialStore } from './store';

export type CallAuth = { ok: true; account: string; keyId: string } | { ok: false; code: string; message: string };

const TC3_CREDENTIAL = /Credential=([^/\s,]+)\//;

/**
 * POP signature v1 with the scenario's keys plus the issued ones. An issued key is checked like a scenario key with a
 * security token (AliyunVerifier: signature, then the token must match it, then the nonce), and its expiry after that:
 * `InvalidSecurityToken.Expired`. A SecurityToken with a key nobody issued (or one forgotten long after expiry) is
 * `InvalidSecurityToken.Malformed`.
 */
export function verifyAliyunCall(method: string, params: PopParams, nowMs: number, base: readonly AliyunCredential[], store: IssuedCredentialStore, nonces: NonceStore): CallAuth {
  const keyId = params.values.get('AccessKeyId') ?? '';
  const issued = store.lookupAliyun(keyId);
  const known = base.find((c) => c.access_key_id === keyId);
  if (!issued && !known && params.values.has('SecurityToken') && keyId !== '') {
    return { ok: false, code: 'InvalidSecurityToken.Malformed', message: 'Specified SecurityToken is malformed.' };
  }
  const cred: AliyunCredential[] = issued
    ? [{ account: issued.account, provider: 'aliyun', access_key_id: keyId, access_key_secret: issued.secret, security_token: issued.token }]
    : known
      ? [known]
      : [];
  const r = new AliyunVerifier(cred, nonces).verify(method, params, nowMs);
  if (!r.ok) return { ok: false, code: r.code, message: r.message };
  if (issued && nowMs >= issued.expiresAt) return { ok: false, code: 'InvalidSecurityToken.Expired', message: 'Specified SecurityToken is expired.' };
  return { ok: true, account: r.credential.account, keyId };
}

/**
 * TC3 with the scenario's keys plus the issued ones. A wrong, missing or expired token of an issued key is
 * `AuthFailure.TokenFailure`, as is a token presented with a SecretId nobody issued.
 */
export function verifyTencentCall(req: Tc3Request, nowMs: number, base: readonly TencentCredential[], store: IssuedCredentialStore, services: ReadonlySet<string>): CallAuth {
  const keyId = TC3_CREDENTIAL.exec(String(req.headers.authorization ?? ''))?.[1] ?? '';
  const issued = store.lookupTencent(keyId);
  const known = base.find((c) => c.secret_id === keyId);
  if (!issued && !known && req.headers['x-tc-token'] !== undefined && keyId !== '') {
    return { ok: false, code: 'AuthFailure.TokenFailure', message: 'Token verification failed: the token is not known.' };
  }
  const cred: TencentCredential[] = issued
    ? [{ account: issued.account, provider: 'tencentcloud', secret_id: keyId, secret_key: issued.secret, token: issued.token }]
    : known
      ? [known]
      : [];
  const r = new TencentVerifier(cred, services).verify(req, nowMs);
  if (!r.ok) return { ok: false, code: r.code, message: r.message };
  if (issued && nowMs >= issued.expiresAt) return { ok: false, code: 'AuthFailure.TokenFailure', message: 'Token verification failed: the token has expired.' };
  return { ok: true, account: r.credential.account, keyId };
}
