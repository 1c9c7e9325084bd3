// Tencent STS 2018-08-13: AssumeRole (TC3-signed with a scenario or issued key) and AssumeRoleWithWebIdentity (`Authorization: SKIP`, TKE OIDC).
import { randomUUID } from 'node:crypto';
import type { TencentCredential } from '../core/scenario';
import type { Tc3Request } from '../gateways/tencent/signature';
import { checkOidcToken } from './oidc-token';
import type { IssuedCredentialStore } from './store';
import { verifyTencentCall } from './verify';
import type { StsAnswer } from './aliyun-sts';

/** The TC3 credential scope's service of STS calls (sts.tencentcloudapi.com). */
const STS_SERVICE: ReadonlySet<string> = new Set(['sts']);

const TENCENT_STS_VERSION = '2018-08-13';
export const TENCENT_STS_ACTIONS = new Set(['AssumeRole', 'AssumeRoleWithWebIdentity']);

export interface TencentRole {
  arn: string;
  account: string;
  externalId?: string;
  /** OIDC ProviderIds the role trusts; undefined: any known provider. */
  trustedOidcProviders?: string[];
}

export interface TencentOidcProvider {
  /** The ProviderId a client passes (a TKE cluster's OIDC provider name). */
  id: string;
  issuer?: string;
  clientIds?: string[];
}

interface TencentStsContext {
  now: () => number;
  store: IssuedCredentialStore;
  base: readonly TencentCredential[];
  roles: ReadonlyMap<string, TencentRole>;
  oidcProviders: ReadonlyMap<string, TencentOidcProvider>;
  ttlMs?: number;
}

const ROLE_ARN = /^qcs::cam::uin\/\d+:roleName\/[\w+=,.@-]{1,128}$/;
const SESSION_NAME = /^[\w+=,.@-]{2,128}$/;
const MAX_DURATION_S = 43_200;

function fail(code: string, message: string): StsAnswer {
  // Tencent answers API errors at HTTP 200; the SDK reads the code from the envelope only.
  return { status: 200, outcome: code, body: { Response: { Error: { Code: code, Message: message }, RequestId: randomUUID() } } };
}

function str(p: Record<string, unknown>, k: string): string | undefined {
  const v = p[k];
  return typeof v === 'string' ? v : undefined;
}

export function handleTencentSts(ctx: TencentStsContext, req: Tc3Request): StsAnswer {
  const action = String(req.headers['x-tc-action'] ?? '');
  if (String(req.headers['x-tc-version'] ?? '') !== TENCENT_STS_VERSION) {
    return fail('NoSuchVersion', `The requested version \`${String(req.headers['x-tc-version'] ?? '')}\` of service \`sts\` does not exist.`);
  }
  if (action === 'AssumeRole') {
    const auth = verifyTencentCall(req, ctx.now(), ctx.base, ctx.store, STS_SERVICE);
    if (!auth.ok) return fail(auth.code, auth.message);
  } else if (req.headers.authorization !== 'SKIP') {
    // The SDK sends AssumeRoleWithWebIdentity unsigned, with this exact value.
    return fail('AuthFailure.InvalidAuthorization', 'AssumeRoleWithWebIdentity takes `Authorization: SKIP`.');
  }
  let p: Record<string, unknown>;
  try {
    p = JSON.parse(req.body.toString('utf8') || '{}') as Record<string, unknown>;
  } catch {
    return fail('InvalidParameter', 'The request body is not valid JSON.');
  }
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return fail('InvalidParameter', 'The request body must be a JSON object.');
  const arn = str(p, 'RoleArn');
  const sessionName = str(p, 'RoleSessionName');
  if (!arn) return fail('MissingParameter', 'The request is missing a required parameter `RoleArn`.');
  if (!sessionName) return fail('MissingParameter', 'The request is missing a required parameter `RoleSessionName`.');
  if (!ROLE_ARN.test(arn) || !SESSION_NAME.test(sessionName)) return fail('InvalidParameter.ParamError', 'Parameter error: RoleArn or RoleSessionName is malformed.');
  const durationS = p.DurationSeconds === undefined ? 7200 : Number(p.DurationSeconds);
  if (!Number.isInteger(durationS) || durationS < 1 || durationS > MAX_DURATION_S) return fail('InvalidParameter.OverTimeError', 'DurationSeconds must be between 1 and 43200.');
  const role = ctx.roles.get(arn);

  if (action === 'AssumeRole') {
    if (!role) return fail('ResourceNotFound.RoleNotFound', 'The role does not exist.');
    if (role.externalId !== undefined && str(p, 'ExternalId') !== role.externalId) return fail('UnauthorizedOperation', 'You are not authorized to assume this role.');
    return issue(ctx, role, durationS);
  }

  const providerId = str(p, 'ProviderId');
  const token = str(p, 'WebIdentityToken');
  if (!providerId) return fail('MissingParameter', 'The request is missing a required parameter `ProviderId`.');
  if (token === undefined) return fail('MissingParameter', 'The request is missing a required parameter `WebIdentityToken`.');
  const provider = ctx.oidcProviders.get(providerId);
  if (!provider) return fail('InvalidParameter.ParamError', `Parameter error: identity provider ${providerId} does not exist.`);
  const check = checkOidcToken(token, ctx.now(), { issuer: provider.issuer, audiences: provider.clientIds });
  if (!check.ok) return fail('InvalidParameter.WebIdentityTokenError', `WebIdentityToken error: ${check.problem === 'expired' ? 'the token has expired' : `the token is invalid (${check.problem})`}.`);
  // Documented for this action when the role cannot be read (there is no RoleNotFound code for it).
  if (!role) return fail('InternalError.GetRoleError', 'Failed to get the role.');
  if (role.trustedOidcProviders && !role.trustedOidcProviders.includes(providerId)) return fail('UnauthorizedOperation', 'The role does not trust this identity provider.');
  return issue(ctx, role, durationS);
}

function issue(ctx: TencentStsContext, role: TencentRole, durationS: number): StsAnswer {
  const c = ctx.store.issueTencent({ account: role.account, role: role.arn, ttlMs: ctx.ttlMs ?? durationS * 1000 });
  return {
    status: 200,
    outcome: 'ok',
    body: {
      Response: {
        Credentials: { Token: c.token, TmpSecretId: c.keyId, TmpSecretKey: c.secret },
        ExpiredTime: c.expiresAt / 1000,
        Expiration: new Date(c.expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        RequestId: randomUUID(),
      },
    },
  };
}
