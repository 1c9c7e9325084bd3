// The emulator's identity endpoints answer as the clouds document: shapes, error codes and statuses, and the
// verification of calls made with issued credentials (expired, unknown, mismatched tokens).
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CommonClient } from 'tencentcloud-sdk-nodejs-common';
import { makeOidcToken, popClient, startIdentityServer, tencentClient, type IdentityServer } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const RPCClient = require('@alicloud/pop-core').RPCClient as new (cfg: Record<string, unknown>) => { request(action: string, params: Record<string, unknown>, opts: Record<string, unknown>): Promise<Record<string, unknown>> };

const A_BASE = { account: 'aliyun-main', provider: 'aliyun' as const, access_key_id: 'LTAI5tIdentityTestKey', access_key_secret: 'identity-test-secret-0001' };
const T_BASE = { account: 'tencent-main', provider: 'tencentcloud' as const, secret_id: 'AKIDIdentityTestKey000001', secret_key: 'identity-test-tencent-key-01' };
const A_ROLE = 'acs:ram::1234567890:role/cse-exporter';
const A_PROVIDER = 'acs:ram::1234567890:oidc-provider/ack-rrsa';
const T_ROLE = 'qcs::cam::uin/100000000001:roleName/cse-exporter';
const exp = (s: number): number => Math.floor(Date.now() / 1000) + s;

let server: IdentityServer;
beforeAll(async () => {
  server = await startIdentityServer({
    ttlSeconds: 60,
    aliyunCredentials: [A_BASE],
    tencentCredentials: [T_BASE],
    aliyun: { roles: [{ arn: A_ROLE, account: 'aliyun-main' }], oidcProviders: [{ arn: A_PROVIDER, clientIds: ['sts.aliyuncs.com'] }], ecs: { roleName: 'r', account: 'aliyun-main', imdsV2Required: true } },
    tencent: { roles: [{ arn: T_ROLE, account: 'tencent-main' }], oidcProviders: [{ id: 'tke-1' }] },
  });
});
afterAll(() => server.close());

async function oidc(params: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  const form = new URLSearchParams({ Action: 'AssumeRoleWithOIDC', Version: '2015-04-01', Format: 'JSON', Timestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), ...params });
  const res = await fetch(`${server.url}/`, { method: 'POST', body: form });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function sts(key: { accessKeyId: string; accessKeySecret: string; securityToken?: string }): (params: Record<string, unknown>) => Promise<Record<string, unknown>> {
  const c = new RPCClient({ credentialsProvider: { getCredentials: async () => key }, endpoint: server.url, apiVersion: '2015-04-01' });
  return (params) => c.request('AssumeRole', params, { method: 'POST', formatParams: false });
}

describe('Alibaba STS', () => {
  test('AssumeRoleWithOIDC: credentials and token info; documented codes for bad tokens, providers and roles', async () => {
    const ok = await oidc({ OIDCProviderArn: A_PROVIDER, RoleArn: A_ROLE, OIDCToken: makeOidcToken({ aud: 'sts.aliyuncs.com', exp: exp(600), sub: 's' }), RoleSessionName: 'cse' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ AssumedRoleUser: { Arn: 'acs:ram::1234567890:assumed-role/cse-exporter/cse' }, OIDCTokenInfo: { Subject: 's', ClientIds: 'sts.aliyuncs.com' } });
    const c = ok.body.Credentials as Record<string, string>;
    expect(c.AccessKeyId).toMatch(/^STS\./);
    expect(c.Expiration).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const cases: Array<[Record<string, string>, number, string]> = [
      [{ OIDCToken: 'a.b' }, 401, 'AuthenticationFail.OIDCToken.Invalid'],
      [{ OIDCToken: '' }, 401, 'AuthenticationFail.OIDCToken.Invalid'],
      [{ OIDCToken: makeOidcToken({ aud: 'sts.aliyuncs.com', exp: exp(-10) }) }, 401, 'AuthenticationFail.OIDCToken.Expired'],
      [{ OIDCToken: makeOidcToken({ aud: 'someone-else', exp: exp(600) }) }, 401, 'AuthenticationFail.OIDCToken.AudienceNotMatch'],
      [{ OIDCProviderArn: 'acs:ram::1234567890:oidc-provider/nope' }, 401, 'AuthenticationFail.NoPermission'],
      [{ RoleArn: 'acs:ram::1234567890:role/nope' }, 404, 'EntityNotExist.Role'],
      [{ RoleArn: 'acs:ram::1234567890:user/bob' }, 400, 'InvalidParameter.RoleArn'],
      [{ DurationSeconds: '600' }, 400, 'InvalidParameter.DurationSeconds'],
    ];
    for (const [override, status, code] of cases) {
      const r = await oidc({ OIDCProviderArn: A_PROVIDER, RoleArn: A_ROLE, OIDCToken: makeOidcToken({ aud: 'sts.aliyuncs.com', exp: exp(600) }), ...override });
      expect([r.status, r.body.Code], JSON.stringify(override)).toEqual([status, code]);
      expect(r.body).toHaveProperty('RequestId');
    }
  });

  test('AssumeRole is signed: scenario keys and issued keys (role chaining) may call it; errors surface through pop-core', async () => {
    const base = sts({ accessKeyId: A_BASE.access_key_id, accessKeySecret: A_BASE.access_key_secret });
    const r = await base({ RoleArn: A_ROLE, RoleSessionName: 'cse' });
    const c = r.Credentials as Record<string, string>;
    const chained = await sts({ accessKeyId: c.AccessKeyId!, accessKeySecret: c.AccessKeySecret!, securityToken: c.SecurityToken })({ RoleArn: A_ROLE, RoleSessionName: 'chained' });
    expect(chained.Credentials).toBeDefined();
    await expect(base({ RoleArn: 'acs:ram::1234567890:role/nope', RoleSessionName: 'cse' })).rejects.toMatchObject({ code: 'EntityNotExist.Role' });
    await expect(base({ RoleArn: A_ROLE })).rejects.toMatchObject({ code: 'MissingRoleSessionName' });
    await expect(sts({ accessKeyId: A_BASE.access_key_id, accessKeySecret: 'wrong' })({ RoleArn: A_ROLE, RoleSessionName: 'x' })).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' });
  });

  test('calls with issued keys: expired -> InvalidSecurityToken.Expired, unknown -> .Malformed, wrong token -> .MismatchWithAccessKey', async () => {
    const c = server.identity.store.issueAliyun({ account: 'aliyun-main', role: 'x', ttlMs: 60_000 });
    const key = { accessKeyId: c.keyId, accessKeySecret: c.secret, securityToken: c.token };
    await expect(popClient(server.url, { getCredentials: async () => key })()).resolves.toMatchObject({ Account: 'aliyun-main' });
    await expect(popClient(server.url, { getCredentials: async () => ({ ...key, securityToken: 'CAISwrong' }) })()).rejects.toMatchObject({ code: 'InvalidSecurityToken.MismatchWithAccessKey' });
    await expect(popClient(server.url, { getCredentials: async () => ({ ...key, accessKeyId: 'STS.NTunknown' }) })()).rejects.toMatchObject({ code: 'InvalidSecurityToken.Malformed' });
    c.expiresAt = Date.now() - 1;
    await expect(popClient(server.url, { getCredentials: async () => key })()).rejects.toMatchObject({ code: 'InvalidSecurityToken.Expired' });
  });

  test('ECS metadata with IMDSv2 required: no token 401, bad TTL 400, token then role then credential', async () => {
    expect((await fetch(`${server.url}/latest/meta-data/ram/security-credentials/`)).status).toBe(401);
    expect((await fetch(`${server.url}/latest/api/token`, { method: 'PUT', headers: { 'x-aliyun-ecs-metadata-token-ttl-seconds': '0' } })).status).toBe(400);
    const token = await (await fetch(`${server.url}/latest/api/token`, { method: 'PUT', headers: { 'x-aliyun-ecs-metadata-token-ttl-seconds': '60' } })).text();
    const h = { 'x-aliyun-ecs-metadata-token': token };
    expect(await (await fetch(`${server.url}/latest/meta-data/ram/security-credentials/`, { headers: h })).text()).toBe('r');
    expect((await fetch(`${server.url}/latest/meta-data/ram/security-credentials/other`, { headers: h })).status).toBe(404);
    const body = (await (await fetch(`${server.url}/latest/meta-data/ram/security-credentials/r`, { headers: h })).json()) as Record<string, string>;
    expect(Object.keys(body).sort()).toEqual(['AccessKeyId', 'AccessKeySecret', 'Code', 'Expiration', 'LastUpdated', 'SecurityToken']);
    expect(body.Code).toBe('Success');
  });
});

describe('Tencent STS', () => {
  const agent = new http.Agent();
  const stsClient = (credential?: unknown): CommonClient =>
    new CommonClient(`127.0.0.1:${server.port}`, '2018-08-13', { ...(credential ? { credential: credential as never } : {}), region: 'ap-guangzhou', profile: { httpProfile: { endpoint: `127.0.0.1:${server.port}`, protocol: 'http://', agent } } } as never);
  afterAll(() => agent.destroy());

  test('AssumeRoleWithWebIdentity (unsigned) and AssumeRole (TC3): shapes and documented codes', async () => {
    const web = (p: Record<string, unknown>) => stsClient().request('AssumeRoleWithWebIdentity', { ProviderId: 'tke-1', RoleArn: T_ROLE, RoleSessionName: 'cse', WebIdentityToken: makeOidcToken({ exp: exp(600) }), ...p }, { skipSign: true } as never) as Promise<Record<string, unknown>>;
    const ok = await web({});
    expect(ok).toMatchObject({ Credentials: { TmpSecretId: expect.stringMatching(/^AKID/) } });
    expect(typeof ok.ExpiredTime).toBe('number');
    await expect(web({ WebIdentityToken: makeOidcToken({ exp: exp(-5) }) })).rejects.toMatchObject({ code: 'InvalidParameter.WebIdentityTokenError' });
    await expect(web({ WebIdentityToken: 'not-a-jwt' })).rejects.toMatchObject({ code: 'InvalidParameter.WebIdentityTokenError' });
    await expect(web({ ProviderId: 'nope' })).rejects.toMatchObject({ code: 'InvalidParameter.ParamError' });
    await expect(web({ RoleArn: 'qcs::cam::uin/100000000001:roleName/nope' })).rejects.toMatchObject({ code: 'InternalError.GetRoleError' });

    const signed = stsClient({ secretId: T_BASE.secret_id, secretKey: T_BASE.secret_key });
    await expect(signed.request('AssumeRole', { RoleArn: T_ROLE, RoleSessionName: 'cse' })).resolves.toMatchObject({ Credentials: { Token: expect.any(String) } });
    await expect(signed.request('AssumeRole', { RoleArn: 'qcs::cam::uin/100000000001:roleName/nope', RoleSessionName: 'cse' })).rejects.toMatchObject({ code: 'ResourceNotFound.RoleNotFound' });
    await expect(stsClient({ secretId: T_BASE.secret_id, secretKey: 'wrong' }).request('AssumeRole', { RoleArn: T_ROLE, RoleSessionName: 'cse' })).rejects.toMatchObject({ code: 'AuthFailure.SignatureFailure' });
  });

  test('calls with issued keys: an expired, wrong or unknown token is AuthFailure.TokenFailure', async () => {
    const c = server.identity.store.issueTencent({ account: 'tencent-main', role: 'x', ttlMs: 60_000 });
    const key = { secretId: c.keyId, secretKey: c.secret, token: c.token };
    const call = (k: typeof key) => {
      const t = tencentClient(server.port, { getCredential: async () => k });
      return t.call().finally(() => t.close());
    };
    await expect(call(key)).resolves.toMatchObject({ Account: 'tencent-main' });
    await expect(call({ ...key, token: 'wrong' })).rejects.toMatchObject({ code: 'AuthFailure.TokenFailure' });
    await expect(call({ ...key, secretId: 'AKIDunknown0000000000' })).rejects.toMatchObject({ code: 'AuthFailure.TokenFailure' });
    c.expiresAt = Date.now() - 1;
    await expect(call(key)).rejects.toMatchObject({ code: 'AuthFailure.TokenFailure' });
  });
});
