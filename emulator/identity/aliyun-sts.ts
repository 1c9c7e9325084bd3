// Alibaba STS 2015-04-01: AssumeRole (POP-signed with a scenario or issued key) and AssumeRoleWithOIDC (unsigned, RRSA).
import { randomUUID } from 'node:crypto';
import type { PopParams } from '../gateways/aliyun/signature';
import type { NonceStore } from '../gateways/aliyun/nonce-store';
import type { AliyunCredential } from '../core/scenario';
import { checkOidcToken, type OidcTokenProblem } from './oidc-token';
import type { IssuedCredentialStore } from './store';
import { verifyAliyunCall } from './verify';

const ALIYUN_STS_VERSION = '2015-04-01';
export const ALIYUN_STS_ACTIONS = new Set(['AssumeRole', 'AssumeRoleWithOIDC']);

export interface AliyunRole {
  arn: string;
  /** Scenario account the issued credentials act as. */
  account: string;
  /** When set, AssumeRole must pass exactly this ExternalId. */
  externalId?: string;
  /** Longest DurationSeconds allowed (the role's MaxSessionDuration; default 3600). */
  maxSessionSeconds?: number;
  /** OIDC provider ARNs the role trusts; undefined: any known provider of the same account. */
  trustedOidcProviders?: string[];
}

export interface AliyunOidcProvider {
  arn: string;
  issuer?: string;
  clientIds?: string[];
}

interface AliyunStsContext {
  now: () => number;
  store: IssuedCredentialStore;
  nonces: NonceStore;
  base: readonly AliyunCredential[];
  roles: ReadonlyMap<string, AliyunRole>;
  oidcProviders: ReadonlyMap<string, AliyunOidcProvider>;
  /** Overrides the lifetime of every issued credential (tests: seconds instead of an hour). */
  ttlMs?: number;
}

export interface StsAnswer {
  status: number;
  body: unknown;
  /** 'ok' or the error code, for the identity statistics. */
  outcome: string;
}

const ROLE_ARN = /^acs:ram::(\d+):role\/([\w.@-]{1,64})$/;
const SESSION_NAME = /^[\w.@-]{2,64}$/;

function fail(host: string, status: number, code: string, message: string): StsAnswer {
  const requestId = randomUUID().toUpperCase();
  return { status, outcome: code, body: { RequestId: requestId, HostId: host, Code: code, Message: message, Recommend: `https://api.aliyun.com/troubleshoot?q=${encodeURIComponent(code)}&requestId=${requestId}` } };
}

/** Role checks both actions share; the failure, or the validated role and duration. */
function roleAndDuration(ctx: AliyunStsContext, v: Map<string, string>, host: string): StsAnswer | { role: AliyunRole; sessionName: string; durationS: number } {
  const arn = v.get('RoleArn');
  if (!arn) return fail(host, 400, 'MissingRoleArn', 'RoleArn is mandatory for this action.');
  if (!ROLE_ARN.test(arn)) return fail(host, 400, 'InvalidParameter.RoleArn', 'The parameter RoleArn is wrongly formed.');
  const sessionName = v.get('RoleSessionName') ?? `oidc-${ctx.now()}`;
  if (!SESSION_NAME.test(sessionName)) return fail(host, 400, 'InvalidParameter.RoleSessionName', 'The parameter RoleSessionName is wrongly formed.');
  const role = ctx.roles.get(arn);
  if (!role) return fail(host, 404, 'EntityNotExist.Role', 'The specified Role not exists .');
  const raw = v.get('DurationSeconds') ?? '3600';
  const durationS = Number(raw);
  if (!/^\d+$/.test(raw) || durationS < 900 || durationS > (role.maxSessionSeconds ?? 3600)) {
    return fail(host, 400, 'InvalidParameter.DurationSeconds', `The Min/Max value of DurationSeconds is 15min/${(role.maxSessionSeconds ?? 3600) / 3600}hr.`);
  }
  return { role, sessionName, durationS };
}


/** STS's answer to each problem with an OIDC token: [code, message]. */
const OIDC_TOKEN_PROBLEMS: Record<OidcTokenProblem, [string, string]> = {
  empty: ['AuthenticationFail.OIDCToken.Invalid', 'The OIDCToken can not empty.'],
  format: ['AuthenticationFail.OIDCToken.Invalid', "The number of Jwt field should be divided into 3 parts with '.' ."],
  content: ['AuthenticationFail.OIDCToken.Invalid', 'The Jwt content is invalid that cannot be recognized.'],
  expired: ['AuthenticationFail.OIDCToken.Expired', 'This JsonWebToken is expired.'],
  // No issuer-specific code is documented; the generic one is what a wrong issuer gets.
  issuer: ['AuthenticationFail.OIDCToken.Invalid', 'Invalid issuer.'],
  audience: ['AuthenticationFail.OIDCToken.AudienceNotMatch', 'Invalid audience.'],
};

function issue(ctx: AliyunStsContext, role: AliyunRole, sessionName: string, durationS: number, extra: Record<string, unknown> = {}): StsAnswer {
  const c = ctx.store.issueAliyun({ account: role.account, role: role.arn, ttlMs: ctx.ttlMs ?? durationS * 1000 });
  const [, uid, name] = ROLE_ARN.exec(role.arn) as unknown as [string, string, string];
  return {
    status: 200,
    outcome: 'ok',
    body: {
      RequestId: randomUUID().toUpperCase(),
      AssumedRoleUser: { Arn: `acs:ram::${uid}:assumed-role/${name}/${sessionName}`, AssumedRoleId: `3${uid.slice(-8)}${name.length}:${sessionName}` },
      Credentials: { AccessKeyId: c.keyId, AccessKeySecret: c.secret, SecurityToken: c.token, Expiration: new Date(c.expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z') },
      ...extra,
    },
  };
}

export function handleAliyunSts(ctx: AliyunStsContext, method: string, params: PopParams, host: string): StsAnswer {
  const v = params.values;
  const action = v.get('Action') ?? '';
  if (v.get('Version') !== ALIYUN_STS_VERSION) return fail(host, 400, 'InvalidVersion', 'Specified parameter Version is not valid.');
  if (method !== 'GET' && method !== 'POST') return fail(host, 400, 'UnsupportedHTTPMethod', 'This http method is not supported.');

  if (action === 'AssumeRole') {
    const auth = verifyAliyunCall(method, params, ctx.now(), ctx.base, ctx.store, ctx.nonces);
    if (!auth.ok) return fail(host, 400, auth.code, auth.message);
    if (!v.get('RoleSessionName')) return fail(host, 400, 'MissingRoleSessionName', 'RoleSessionName is mandatory for this action.');
    const r = roleAndDuration(ctx, v, host);
    if ('status' in r) return r;
    if (r.role.externalId !== undefined && v.get('ExternalId') !== r.role.externalId) {
      return fail(host, 403, 'NoPermission', 'You are not authorized to do this action. You should be authorized by RAM.');
    }
    return issue(ctx, r.role, r.sessionName, r.durationS);
  }

  // AssumeRoleWithOIDC: anonymous; the OIDC token is the proof.
  const providerArn = v.get('OIDCProviderArn');
  if (!providerArn) return fail(host, 400, 'MissingOIDCProviderArn', 'OIDCProviderArn is mandatory for this action.');
  const token = v.get('OIDCToken');
  if (token === undefined) return fail(host, 400, 'MissingOIDCToken', 'OIDCToken is mandatory for this action.');
  const r = roleAndDuration(ctx, v, host);
  if ('status' in r) return r;
  const provider = ctx.oidcProviders.get(providerArn);
  if (!provider) return fail(host, 401, 'AuthenticationFail.NoPermission', 'No such OIDC Provider registered.');
  const check = checkOidcToken(token, ctx.now(), { issuer: provider.issuer, audiences: provider.clientIds });
  if (!check.ok) {
    const [code, message] = OIDC_TOKEN_PROBLEMS[check.problem];
    return fail(host, 401, code, message);
  }
  const sameAccount = ROLE_ARN.exec(r.role.arn)?.[1] === /^acs:ram::(\d+):/.exec(providerArn)?.[1];
  const trusted = r.role.trustedOidcProviders ? r.role.trustedOidcProviders.includes(providerArn) : sameAccount;
  if (!trusted) return fail(host, 401, 'AuthenticationFail.NoPermission', 'There is no permission');
  const c = check.claims;
  return issue(ctx, r.role, r.sessionName, r.durationS, {
    OIDCTokenInfo: {
      Subject: c.sub ?? '',
      Issuer: c.iss ?? '',
      ClientIds: Array.isArray(c.aud) ? c.aud.join(',') : (c.aud ?? ''),
      ExpirationTime: new Date((c.exp ?? 0) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      IssuanceTime: new Date((c.iat ?? 0) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      VerificationInfo: 'Success',
    },
  });
}
