// The `credentials:` block of an account: its schema per provider, what --config.check can verify offline, and a one-line description.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { durationMs } from './duration';
import { formatDuration } from './duration';

type PathPart = string | number;
type CredentialProblem = [PathPart[], string];

const nonEmpty = z.string().min(1, 'must not be empty');

const ALIYUN_ROLE_ARN = /^acs:ram::(\d+):role\/([\w.@-]{1,64})$/;
const ALIYUN_OIDC_PROVIDER_ARN = /^acs:ram::(\d+):oidc-provider\/([\w.@-]{1,128})$/;
const TENCENT_ROLE_ARN = /^qcs::cam::uin\/(\d+):roleName\/([\w+=,.@-]{1,128})$/;

const aliyunRoleArn = z.string().regex(ALIYUN_ROLE_ARN, 'must be a RAM role ARN: acs:ram::<account id>:role/<role name>');
const aliyunOidcProviderArn = z
  .string()
  .regex(ALIYUN_OIDC_PROVIDER_ARN, 'must be an OIDC provider ARN: acs:ram::<account id>:oidc-provider/<provider name>');
const tencentRoleArn = z.string().regex(TENCENT_ROLE_ARN, 'must be a CAM role ARN: qcs::cam::uin/<account uin>:roleName/<role name>');

/** http(s) URL without credentials in it: it names where credentials come from and is printed by --config.check. */
const httpUrl = z.string().superRefine((s, ctx) => {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must be an http:// or https:// URL' });
    return;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must be an http:// or https:// URL' });
  if (u.username || u.password) ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must not carry a user name or password' });
});

/** An STS endpoint: a host name (HTTPS, as the SDKs use) or a URL with a scheme (VPC endpoints, proxies, tests). */
const stsEndpoint = z.string().superRefine((s, ctx) => {
  if (/^https?:\/\//.test(s)) {
    const r = httpUrl.safeParse(s);
    if (!r.success) for (const i of r.error.issues) ctx.addIssue({ code: z.ZodIssueCode.custom, message: i.message });
    else if (!['/', ''].includes(new URL(s).pathname)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must not have a path: STS is served at "/"' });
  } else if (!/^[a-z0-9.-]+(:\d{1,5})?$/i.test(s)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must be a host name (sts.aliyuncs.com) or a URL (https://sts-vpc.cn-hangzhou.aliyuncs.com)' });
  }
});

const aliyunSessionName = z.string().regex(/^[\w.@-]{2,64}$/, 'must be 2 to 64 characters: letters, digits and . @ _ -').default('cloud-session-exporter');
const tencentSessionName = z.string().regex(/^[\w+=,.@-]{2,128}$/, 'must be 2 to 128 characters: letters, digits and + = , . @ _ -').default('cloud-session-exporter');

// The clouds' bounds on a role session (Alibaba: 15 min up to the role's maximum, at most 12 h; Tencent: up to 12 h).
const sessionDuration = (minMs: number) =>
  durationMs.superRefine((ms, ctx) => {
    if (ms < minMs || ms > 43_200_000) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `must be between ${formatDuration(minMs)} and 12h` });
  });

/** Keys that may be given inline or as `<key>_file`; the file is read when the credentials are created. */
function secretKeys<K extends string>(...keys: K[]): Record<K | `${K}_file`, z.ZodOptional<z.ZodString>> {
  const shape: Record<string, z.ZodOptional<z.ZodString>> = {};
  for (const k of keys) {
    shape[k] = nonEmpty.optional();
    shape[`${k}_file`] = nonEmpty.optional();
  }
  return shape as Record<K | `${K}_file`, z.ZodOptional<z.ZodString>>;
}

const aliyunBase = secretKeys('access_key_id', 'access_key_secret', 'security_token');
const tencentBase = secretKeys('secret_id', 'secret_key', 'token');

export const aliyunCredentialsSchema = z
  .discriminatedUnion('type', [
    z.object({ type: z.literal('access_key'), ...secretKeys('access_key_id', 'access_key_secret') }).strict(),
    z.object({ type: z.literal('sts'), ...aliyunBase }).strict(),
    z
      .object({
        type: z.literal('ram_role_arn'),
        role_arn: aliyunRoleArn,
        ...aliyunBase,
        role_session_name: aliyunSessionName,
        external_id: z.string().regex(/^[\w=,.@:/-]{2,1224}$/, 'must be 2 to 1,224 characters: letters, digits and = , . @ : / - _').optional(),
        policy: nonEmpty.optional(),
        duration: sessionDuration(900_000).default('1h'),
        sts_endpoint: stsEndpoint.optional(),
      })
      .strict(),
    z
      .object({
        type: z.literal('oidc_role_arn'),
        role_arn: aliyunRoleArn,
        oidc_provider_arn: aliyunOidcProviderArn,
        oidc_token_file: nonEmpty,
        role_session_name: aliyunSessionName,
        policy: nonEmpty.optional(),
        duration: sessionDuration(900_000).default('1h'),
        sts_endpoint: stsEndpoint.optional(),
      })
      .strict(),
    z.object({ type: z.literal('ecs_ram_role'), role_name: z.string().regex(/^[\w.@-]{1,64}$/, 'must be a RAM role name').optional(), metadata_endpoint: httpUrl.optional() }).strict(),
    z.object({ type: z.literal('credentials_uri'), uri: httpUrl }).strict(),
    z.object({ type: z.literal('default') }).strict(),
  ])
  .superRefine((c, ctx) => {
    if (c.type === 'access_key') requireOne(c, ['access_key_id', 'access_key_secret'], ctx);
    else if (c.type === 'sts') requireOne(c, ['access_key_id', 'access_key_secret', 'security_token'], ctx);
    else if (c.type === 'ram_role_arn') {
      requireOne(c, ['access_key_id', 'access_key_secret'], ctx);
      atMostOne(c, ['security_token'], ctx);
    }
  });

export const tencentCredentialsSchema = z
  .discriminatedUnion('type', [
    z.object({ type: z.literal('secret'), ...secretKeys('secret_id', 'secret_key') }).strict(),
    z.object({ type: z.literal('sts'), ...tencentBase }).strict(),
    z
      .object({
        type: z.literal('assume_role'),
        role_arn: tencentRoleArn,
        ...tencentBase,
        role_session_name: tencentSessionName,
        external_id: z.string().min(2).max(128).optional(),
        policy: nonEmpty.optional(),
        duration: sessionDuration(60_000).default('1h'),
        region: nonEmpty.default('ap-guangzhou'),
        sts_endpoint: stsEndpoint.optional(),
      })
      .strict(),
    z
      .object({
        type: z.literal('oidc_role_arn'),
        role_arn: tencentRoleArn,
        provider_id: nonEmpty,
        web_identity_token_file: nonEmpty,
        role_session_name: tencentSessionName,
        duration: sessionDuration(60_000).default('1h'),
        region: nonEmpty.default('ap-guangzhou'),
        sts_endpoint: stsEndpoint.optional(),
      })
      .strict(),
    z.object({ type: z.literal('cvm_role'), role_name: z.string().regex(/^[\w+=,.@-]{1,128}$/, 'must be a CAM role name').optional(), metadata_endpoint: httpUrl.optional() }).strict(),
    z.object({ type: z.literal('default') }).strict(),
  ])
  .superRefine((c, ctx) => {
    if (c.type === 'secret') requireOne(c, ['secret_id', 'secret_key'], ctx);
    else if (c.type === 'sts') requireOne(c, ['secret_id', 'secret_key', 'token'], ctx);
    else if (c.type === 'assume_role') {
      requireOne(c, ['secret_id', 'secret_key'], ctx);
      atMostOne(c, ['token'], ctx);
    }
  });

export type AliyunCredentialsConfig = z.output<typeof aliyunCredentialsSchema>;
export type TencentCredentialsConfig = z.output<typeof tencentCredentialsSchema>;

/** Each key given exactly once: inline or as `<key>_file`. */
function requireOne(c: Record<string, unknown>, keys: string[], ctx: z.RefinementCtx): void {
  for (const k of keys) {
    const inline = c[k] !== undefined;
    const file = c[`${k}_file`] !== undefined;
    if (inline && file) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [`${k}_file`], message: `give either ${k} or ${k}_file, not both` });
    else if (!inline && !file) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [k], message: `required key is missing (or give ${k}_file)` });
  }
}

function atMostOne(c: Record<string, unknown>, keys: string[], ctx: z.RefinementCtx): void {
  for (const k of keys) {
    if (c[k] !== undefined && c[`${k}_file`] !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [`${k}_file`], message: `give either ${k} or ${k}_file, not both` });
  }
}

/** The `*_file` keys a block names (base credentials and tokens), with the key each sits under. */
function filesOf(cfg: AliyunCredentialsConfig | TencentCredentialsConfig): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(cfg)) if (k.endsWith('_file') && typeof v === 'string') out.push([k, v]);
  return out;
}

/**
 * What --config.check can verify without calling the cloud: every named file exists, is a file and is readable (and
 * not empty), and the role and OIDC provider of an Alibaba RRSA pair belong to one account. ARN shapes are the
 * schema's job. Paths are relative to the `credentials` block.
 */
export function checkCredentialsConfig(cfg: AliyunCredentialsConfig | TencentCredentialsConfig, configDir: string): CredentialProblem[] {
  const problems: CredentialProblem[] = [];
  for (const [key, file] of filesOf(cfg)) {
    const full = path.resolve(configDir, file);
    try {
      const st = fs.statSync(full);
      if (!st.isFile()) {
        problems.push([[key], `${file} is not a file`]);
        continue;
      }
      fs.accessSync(full, fs.constants.R_OK);
      if (st.size === 0) problems.push([[key], `${file} is empty`]);
    } catch (err) {
      problems.push([[key], `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
    }
  }
  if (cfg.type === 'oidc_role_arn' && 'oidc_provider_arn' in cfg) {
    const role = ALIYUN_ROLE_ARN.exec(cfg.role_arn)?.[1];
    const provider = ALIYUN_OIDC_PROVIDER_ARN.exec(cfg.oidc_provider_arn)?.[1];
    if (role && provider && role !== provider) {
      problems.push([['oidc_provider_arn'], `the OIDC provider is in account ${provider} but the role in account ${role}: a role can only trust a provider of its own account`]);
    }
  }
  return problems;
}

/** One line for --config.check and the startup log; never a secret (key IDs included: they are registered as secrets). */
export function describeCredentials(cfg: AliyunCredentialsConfig | TencentCredentialsConfig): string {
  const fromFiles = filesOf(cfg).length > 0;
  const detail = ((): string => {
    switch (cfg.type) {
      case 'access_key':
      case 'secret':
        return fromFiles ? 'static, from files' : 'static';
      case 'sts':
        return fromFiles ? 'temporary key, files re-read when they change' : 'temporary key, static';
      case 'ram_role_arn':
      case 'assume_role':
        return `role ${cfg.role_arn}, session ${cfg.role_session_name}, ${formatDuration(cfg.duration)}${cfg.sts_endpoint ? `, STS ${cfg.sts_endpoint}` : ''}`;
      case 'oidc_role_arn':
        return 'oidc_provider_arn' in cfg
          ? `role ${cfg.role_arn}, provider ${cfg.oidc_provider_arn}, token ${cfg.oidc_token_file}, ${formatDuration(cfg.duration)}`
          : `role ${cfg.role_arn}, provider ${cfg.provider_id}, token ${cfg.web_identity_token_file}, ${formatDuration(cfg.duration)}`;
      case 'ecs_ram_role':
      case 'cvm_role':
        return `${cfg.role_name ? `role ${cfg.role_name}` : 'role from instance metadata'}${cfg.metadata_endpoint ? `, metadata ${cfg.metadata_endpoint}` : ''}`;
      case 'credentials_uri': {
        // A query string may carry a token of its own: the origin and path say enough.
        const u = new URL(cfg.uri);
        return `${u.origin}${u.pathname}`;
      }
      case 'default':
        return 'vendor default chain, walked from the start at every refresh';
    }
  })();
  return `credentials: ${cfg.type} (${detail})`;
}
