// The `credentials:` block: accepted and refused shapes, what --config.check finds offline, and the one-line description.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { aliyunCredentialsSchema, checkCredentialsConfig, describeCredentials, tencentCredentialsSchema } from '../../src/config/credentials';

const issues = (r: { success: boolean; error?: { issues: Array<{ path: Array<string | number>; message: string }> } }): string[] =>
  r.success ? [] : r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);

describe('credentials schema', () => {
  test('the contract examples parse, with defaults', () => {
    const a = aliyunCredentialsSchema.parse({
      type: 'oidc_role_arn',
      role_arn: 'acs:ram::1234567890:role/cse-exporter',
      oidc_provider_arn: 'acs:ram::1234567890:oidc-provider/ack-rrsa-xxx',
      oidc_token_file: '/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token',
    });
    expect(a).toMatchObject({ role_session_name: 'cloud-session-exporter', duration: 3_600_000 });
    const t = tencentCredentialsSchema.parse({
      type: 'oidc_role_arn',
      role_arn: 'qcs::cam::uin/100000000001:roleName/cse-exporter',
      provider_id: 'tke-cls-1',
      web_identity_token_file: '/var/run/secrets/tke.cloud.tencent.com/identity-token',
      duration: '2h',
    });
    expect(t).toMatchObject({ duration: 7_200_000, region: 'ap-guangzhou' });
    for (const type of ['default', 'ecs_ram_role']) expect(aliyunCredentialsSchema.safeParse({ type }).success).toBe(true);
    for (const type of ['default', 'cvm_role']) expect(tencentCredentialsSchema.safeParse({ type }).success).toBe(true);
  });

  test('ARNs are checked for their shape', () => {
    expect(issues(aliyunCredentialsSchema.safeParse({ type: 'ram_role_arn', role_arn: 'acs:ram::123:user/bob', access_key_id: 'a', access_key_secret: 'b' }))).toEqual([
      'role_arn: must be a RAM role ARN: acs:ram::<account id>:role/<role name>',
    ]);
    expect(issues(aliyunCredentialsSchema.safeParse({ type: 'oidc_role_arn', role_arn: 'acs:ram::1:role/x', oidc_provider_arn: 'acs:ram::abc:oidc-provider/p', oidc_token_file: 't' }))).toEqual([
      'oidc_provider_arn: must be an OIDC provider ARN: acs:ram::<account id>:oidc-provider/<provider name>',
    ]);
    expect(issues(tencentCredentialsSchema.safeParse({ type: 'assume_role', role_arn: 'qcs::cam::uin/1:role/x', secret_id: 'a', secret_key: 'b' }))).toEqual([
      'role_arn: must be a CAM role ARN: qcs::cam::uin/<account uin>:roleName/<role name>',
    ]);
  });

  test('keys are strict, secrets come inline or as a file (not both, not neither), durations are bounded', () => {
    expect(issues(aliyunCredentialsSchema.safeParse({ type: 'access_key', access_key_id: 'a', access_key_secret: 'b', region: 'x' }))).toEqual([": Unrecognized key(s) in object: 'region'"]);
    expect(issues(aliyunCredentialsSchema.safeParse({ type: 'sts', access_key_id: 'a', access_key_id_file: 'f', access_key_secret: 'b' }))).toEqual([
      'access_key_id_file: give either access_key_id or access_key_id_file, not both',
      'security_token: required key is missing (or give security_token_file)',
    ]);
    expect(issues(tencentCredentialsSchema.safeParse({ type: 'secret', secret_id_file: 'f' }))).toEqual(['secret_key: required key is missing (or give secret_key_file)']);
    expect(issues(aliyunCredentialsSchema.safeParse({ type: 'ram_role_arn', role_arn: 'acs:ram::1:role/x', access_key_id: 'a', access_key_secret: 'b', duration: '5m' }))).toEqual(['duration: must be between 15m and 12h']);
    expect(issues(aliyunCredentialsSchema.safeParse({ type: 'ram_role_arn', role_arn: 'acs:ram::1:role/x', access_key_id: 'a', access_key_secret: 'b', role_session_name: 'a b' }))).toEqual([
      'role_session_name: must be 2 to 64 characters: letters, digits and . @ _ -',
    ]);
    expect(issues(aliyunCredentialsSchema.safeParse({ type: 'credentials_uri', uri: 'file:///etc/creds' }))).toEqual(['uri: must be an http:// or https:// URL']);
    expect(issues(aliyunCredentialsSchema.safeParse({ type: 'ram_role_arn', role_arn: 'acs:ram::1:role/x', access_key_id: 'a', access_key_secret: 'b', sts_endpoint: 'https://sts.aliyuncs.com/x' }))).toEqual(['sts_endpoint: must not have a path: STS is served at "/"']);
    expect(aliyunCredentialsSchema.safeParse({ type: 'ram_role_arn', role_arn: 'acs:ram::1:role/x', access_key_id: 'a', access_key_secret: 'b', sts_endpoint: 'sts-vpc.cn-hangzhou.aliyuncs.com' }).success).toBe(true);
    expect(issues(aliyunCredentialsSchema.safeParse({ type: 'ram_roles' }))[0]).toMatch(/^type: Invalid discriminator value/);
  });
});

describe('checkCredentialsConfig', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cse-creds-check-'));
  fs.writeFileSync(path.join(dir, 'token'), 'eyJ.a.b');
  fs.writeFileSync(path.join(dir, 'empty'), '');
  fs.mkdirSync(path.join(dir, 'adir'));

  test('named files must exist, be files, be readable and not be empty', () => {
    const cfg = tencentCredentialsSchema.parse({ type: 'sts', secret_id_file: 'missing', secret_key_file: 'adir', token_file: 'empty' });
    expect(checkCredentialsConfig(cfg, dir)).toEqual([
      [['secret_id_file'], 'cannot read missing: ENOENT'],
      [['secret_key_file'], 'adir is not a file'],
      [['token_file'], 'empty is empty'],
    ]);
    const ok = aliyunCredentialsSchema.parse({ type: 'oidc_role_arn', role_arn: 'acs:ram::1:role/x', oidc_provider_arn: 'acs:ram::1:oidc-provider/p', oidc_token_file: 'token' });
    expect(checkCredentialsConfig(ok, dir)).toEqual([]);
  });

  test('an RRSA role and its OIDC provider must be of one account', () => {
    const cfg = aliyunCredentialsSchema.parse({ type: 'oidc_role_arn', role_arn: 'acs:ram::111:role/x', oidc_provider_arn: 'acs:ram::222:oidc-provider/p', oidc_token_file: path.join(dir, 'token') });
    expect(checkCredentialsConfig(cfg, '/')).toEqual([[['oidc_provider_arn'], 'the OIDC provider is in account 222 but the role in account 111: a role can only trust a provider of its own account']]);
  });
});

describe('describeCredentials', () => {
  test('one line per type, never a key', () => {
    const lines = [
      describeCredentials(aliyunCredentialsSchema.parse({ type: 'oidc_role_arn', role_arn: 'acs:ram::1:role/x', oidc_provider_arn: 'acs:ram::1:oidc-provider/p', oidc_token_file: '/t' })),
      describeCredentials(aliyunCredentialsSchema.parse({ type: 'access_key', access_key_id: 'LTAI5tSecretKeyId', access_key_secret: 'very-secret-value' })),
      describeCredentials(aliyunCredentialsSchema.parse({ type: 'credentials_uri', uri: 'http://169.254.1.1:8080/creds?token=abcdef' })),
      describeCredentials(tencentCredentialsSchema.parse({ type: 'assume_role', role_arn: 'qcs::cam::uin/1:roleName/r', secret_id_file: '/s', secret_key_file: '/k' })),
      describeCredentials(tencentCredentialsSchema.parse({ type: 'cvm_role' })),
    ];
    expect(lines).toEqual([
      'credentials: oidc_role_arn (role acs:ram::1:role/x, provider acs:ram::1:oidc-provider/p, token /t, 1h)',
      'credentials: access_key (static)',
      'credentials: credentials_uri (http://169.254.1.1:8080/creds)',
      'credentials: assume_role (role qcs::cam::uin/1:roleName/r, session cloud-session-exporter, 1h)',
      'credentials: cvm_role (role from instance metadata)',
    ]);
  });
});
