// Tencent Cloud credentials for an SDK client's `credential`: the SDK's credential classes fetch from STS, this module decides when.
//
// What the SDK's classes get wrong for a long-running exporter, and what is done instead:
// - STSCredential and OIDCRoleArnCredential refresh inside getCredential(), on the call's hot path, and keep a failed
//   fetch's rejected promise forever (every later call fails without asking again). Here only their one-shot fetch
//   methods are used, from a background timer (refresh.ts).
// - OIDCRoleArnCredential compares its 600 s early-refresh margin with milliseconds (it renews 0.6 s before expiry),
//   and, given explicit parameters, never re-reads the web identity token file. Here the margin is refresh.ts's and the
//   token file is read at every refresh.
// - CvmRoleCredential has no timeout, honours `http_proxy` (metadata must never go through a proxy) and has its URL
//   fixed; instance metadata is read here with a bounded, proxy-free exchange and an overridable origin.
// - DefaultCredentialProvider prints every failure with console.error and hands out an empty credential when all
//   fail; the `default` type here walks the same chain, logs through the logger once per state change and fails
//   loudly instead.
// Every STS exchange goes through an explicit agent (so the SDK's own `http_proxy` handling never applies; the
// account's proxy route does, opts.stsProxy) under one bounded exchange (http-guard).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EnvironmentVariableCredential, OIDCRoleArnCredential, ProfileCredential, STSCredential } from 'tencentcloud-sdk-nodejs-common';
import { registerSecret } from '../../util/redact';
import { boundedExchange, guardedAgent } from '../http-guard';
import { splitTencentEndpoint } from '../providers/tencent';
import type { TencentCredentialsConfig } from '../../config/credentials';
import { SecretValues, WatchedSecrets } from './files';
import { httpExchange } from './http';
import { describeError, ManagedCredentials, type CredentialsOptions, type Obtained } from './refresh';

/** What the SDK reads from `credential.getCredential()` on every request. */
export interface TencentKey {
  secretId: string;
  secretKey: string;
  token?: string;
}

export interface TencentCredentialsOptions extends CredentialsOptions {
  /** Origins replacing the fixed ones of the `default` chain: CVM instance metadata and STS. */
  endpoints?: { cvmMetadata?: string; sts?: string };
}

/** Usable as a Tencent SDK client's `credential` (any object with getCredential()). */
export class TencentCredentials extends ManagedCredentials<TencentKey> {
  /** Called by the SDK before every request: the cached credential, never a fetch. */
  getCredential(): Promise<TencentKey> {
    return this.current();
  }
}

const CVM_METADATA_ORIGIN = 'http://metadata.tencentyun.com';
const STS_HOST = 'sts.tencentcloudapi.com';
const STS_TIMEOUT_MS = 10_000;
const METADATA_TIMEOUT_MS = 3000;
const DEFAULT_FILE_RECHECK_MS = 10_000;
const DEFAULT_CHAIN_RECHECK_MS = 60_000;

/** The one-shot fetch result of STSCredential / OIDCRoleArnCredential, and the CVM metadata answer. */
interface TmpCredential {
  TmpSecretId: string;
  TmpSecretKey: string;
  Token: string;
  ExpiredTime?: number;
  Expiration?: string;
}

interface StsSettings {
  stsEndpoint?: string;
  region: string;
  timeoutMs: number;
  proxy: CredentialsOptions['stsProxy'];
}

/** One STS client setup per credentials object: explicit agent (through the account's proxy, if any), bounded exchanges. */
class StsAccess {
  readonly agent;
  private readonly protocol: 'http://' | 'https://';
  private readonly host: string;

  get region(): string {
    return this.s.region;
  }

  constructor(private readonly s: StsSettings) {
    const split = splitTencentEndpoint(/^https?:\/\//.test(s.stsEndpoint ?? '') ? (s.stsEndpoint as string) : `https://${s.stsEndpoint ?? STS_HOST}`);
    this.protocol = split.protocol;
    this.host = split.endpoint;
    this.agent = guardedAgent(this.protocol === 'https://' ? 'https:' : 'http:', { maxSockets: 2, proxy: s.proxy?.(`${this.protocol}${this.host}`) });
  }

  clientConfig(credential?: { getCredential(): Promise<TencentKey> }): Record<string, unknown> {
    return {
      ...(credential ? { credential } : {}),
      region: this.s.region,
      // The SDK's own timer (whole seconds) is a backstop; the bounded exchange ends the fetch first.
      profile: { httpProfile: { endpoint: this.host, protocol: this.protocol, agent: this.agent, reqTimeout: Math.ceil(this.s.timeoutMs / 1000) + 1 } },
    };
  }

  run(signal: AbortSignal, fetch: () => Promise<TmpCredential>): Promise<TmpCredential> {
    return boundedExchange({ timeoutMs: this.s.timeoutMs, maxResponseBytes: 256 * 1024, signal }, fetch);
  }
}

export function createTencentCredentials(cfg: TencentCredentialsConfig, opts: TencentCredentialsOptions): TencentCredentials {
  const dir = opts.configDir ?? process.cwd();
  switch (cfg.type) {
    case 'secret': {
      const v = new SecretValues(cfg, ['secret_id', 'secret_key'] as const, dir).read();
      return new TencentCredentials(cfg.type, async () => ({ value: { secretId: v.secret_id, secretKey: v.secret_key }, id: v.fingerprint }), opts);
    }
    case 'sts': {
      const values = new SecretValues(cfg, ['secret_id', 'secret_key', 'token'] as const, dir);
      const watched = new WatchedSecrets(values, opts.settleMs ?? 1000);
      return new TencentCredentials(
        cfg.type,
        async () => {
          const v = await watched.current();
          return { value: { secretId: v.secret_id, secretKey: v.secret_key, token: v.token }, id: v.fingerprint, source: values.fromFiles ? 'files' : 'config' };
        },
        opts,
        values.fromFiles ? (opts.recheckMs ?? DEFAULT_FILE_RECHECK_MS) : undefined,
      );
    }
    case 'assume_role': {
      const base = new SecretValues(cfg, ['secret_id', 'secret_key', 'token'] as const, dir);
      const sts = new StsAccess({ stsEndpoint: cfg.sts_endpoint, region: cfg.region, timeoutMs: opts.httpTimeoutMs ?? STS_TIMEOUT_MS, proxy: opts.stsProxy });
      // Base keys read at every refresh: given as files, they may be rotated.
      const baseKey = { getCredential: async (): Promise<TencentKey> => { const v = base.read(); return { secretId: v.secret_id, secretKey: v.secret_key, token: v.token }; } };
      const params: Record<string, unknown> = { RoleArn: cfg.role_arn, RoleSessionName: cfg.role_session_name, DurationSeconds: Math.round(cfg.duration / 1000) };
      if (cfg.external_id) params.ExternalId = cfg.external_id;
      // STS wants the policy URL-encoded (its API reference); the config holds it as plain JSON.
      if (cfg.policy) params.Policy = encodeURIComponent(cfg.policy);
      const vendor = new STSCredential(sts.clientConfig(baseKey) as never, params as never) as unknown as { getCredentialWithStsAssumeRole(): Promise<TmpCredential> };
      return new TencentCredentials(cfg.type, async (signal) => fromTmp(await sts.run(signal, () => vendor.getCredentialWithStsAssumeRole()), 'assume_role'), opts, undefined, () => sts.agent.destroy());
    }
    case 'oidc_role_arn': {
      const sts = new StsAccess({ stsEndpoint: cfg.sts_endpoint, region: cfg.region, timeoutMs: opts.httpTimeoutMs ?? STS_TIMEOUT_MS, proxy: opts.stsProxy });
      const tokenFile = path.resolve(dir, cfg.web_identity_token_file);
      return new TencentCredentials(
        cfg.type,
        (signal) => assumeWithWebIdentity(sts, signal, { roleArn: cfg.role_arn, providerId: cfg.provider_id, tokenFile, sessionName: cfg.role_session_name, durationS: Math.round(cfg.duration / 1000) }, 'oidc_role_arn'),
        opts,
        undefined,
        () => sts.agent.destroy(),
      );
    }
    case 'cvm_role': {
      const origin = cfg.metadata_endpoint ?? CVM_METADATA_ORIGIN;
      return new TencentCredentials(cfg.type, (signal) => cvmRoleCredential(origin, cfg.role_name, opts.httpTimeoutMs ?? METADATA_TIMEOUT_MS, signal, 'cvm_role'), opts);
    }
    case 'default': {
      const chain = new DefaultChain(opts);
      return new TencentCredentials(cfg.type, (signal) => chain.walk(signal), opts, opts.recheckMs ?? DEFAULT_CHAIN_RECHECK_MS, () => chain.close());
    }
  }
}

function fromTmp(r: TmpCredential, source: string): Obtained<TencentKey> {
  if (!r || !r.TmpSecretId || !r.TmpSecretKey) throw new Error(`${source}: the answer carries no temporary key`);
  for (const v of [r.TmpSecretId, r.TmpSecretKey, r.Token]) registerSecret(v);
  const expiresAt = typeof r.ExpiredTime === 'number' ? r.ExpiredTime * 1000 : Date.parse(r.Expiration ?? '');
  return { value: { secretId: r.TmpSecretId, secretKey: r.TmpSecretKey, token: r.Token || undefined }, expiresAt: Number.isFinite(expiresAt) ? expiresAt : undefined, id: r.TmpSecretId, source };
}

interface WebIdentity {
  roleArn: string;
  providerId: string;
  tokenFile: string;
  sessionName: string;
  durationS: number;
}

async function assumeWithWebIdentity(sts: StsAccess, signal: AbortSignal, w: WebIdentity, source: string): Promise<Obtained<TencentKey>> {
  let token: string;
  try {
    token = fs.readFileSync(w.tokenFile, 'utf8').trim();
  } catch (err) {
    throw new Error(`cannot read the web identity token file ${w.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  registerSecret(token);
  // A new instance per fetch: with explicit parameters the SDK class would keep the first token forever.
  const vendor = new OIDCRoleArnCredential(sts.clientConfig() as never, {
    RoleArn: w.roleArn,
    RoleSessionName: w.sessionName,
    WebIdentityToken: token,
    ProviderId: w.providerId,
    DurationSeconds: w.durationS,
  } as never) as unknown as { getCredentialWithStsAssumeRoleWithWebIdentity(): Promise<TmpCredential> };
  return fromTmp(await sts.run(signal, () => vendor.getCredentialWithStsAssumeRoleWithWebIdentity()), source);
}

/** CVM instance metadata: the bound role's name, then its temporary key. */
async function cvmRoleCredential(origin: string, roleName: string | undefined, timeoutMs: number, signal: AbortSignal, source: string): Promise<Obtained<TencentKey>> {
  const root = `${origin.replace(/\/+$/, '')}/latest/meta-data/cam/security-credentials/`;
  let role = roleName;
  if (!role) {
    const a = await httpExchange({ method: 'GET', url: root, timeoutMs, signal });
    if (a.status !== 200) throw new Error(`no CAM role is bound to this instance (metadata answered HTTP ${a.status})`);
    role = a.body.toString('utf8').trim().split('\n')[0] ?? '';
    if (!role) throw new Error('instance metadata names no CAM role');
  }
  const a = await httpExchange({ method: 'GET', url: root + encodeURIComponent(role), timeoutMs, signal });
  if (a.status !== 200) throw new Error(`instance metadata has no credential for role ${role} (HTTP ${a.status})`);
  let j: TmpCredential & { Code?: string };
  try {
    j = JSON.parse(a.body.toString('utf8')) as TmpCredential & { Code?: string };
  } catch {
    throw new Error(`instance metadata answered role ${role} with a body that is not JSON`);
  }
  if (j.Code !== 'Success') throw new Error(`instance metadata answered role ${role} with Code ${String(j.Code)}`);
  return fromTmp(j, source);
}

/** The SDK's DefaultCredentialProvider order, walked from the start at every refresh: environment, profile file, CVM role, TKE OIDC. */
class DefaultChain {
  /** Made when TKE_REGION is first seen (the environment is read at every walk, as the SDK does). */
  private sts: StsAccess | undefined;

  constructor(private readonly opts: TencentCredentialsOptions) {}

  close(): void {
    this.sts?.agent.destroy();
  }

  private stsFor(region: string): StsAccess {
    if (!this.sts || this.sts.region !== region) {
      this.sts?.agent.destroy();
      this.sts = new StsAccess({ stsEndpoint: this.opts.endpoints?.sts, region, timeoutMs: this.opts.httpTimeoutMs ?? STS_TIMEOUT_MS, proxy: this.opts.stsProxy });
    }
    return this.sts;
  }

  async walk(signal: AbortSignal): Promise<Obtained<TencentKey>> {
    const errors: string[] = [];
    const plain = async (name: string, c: { secretId?: string; secretKey?: string; token?: string }): Promise<Obtained<TencentKey> | undefined> => {
      if (!c.secretId || !c.secretKey) {
        errors.push(`${name}: not configured`);
        return undefined;
      }
      for (const v of [c.secretId, c.secretKey, c.token]) registerSecret(v);
      const id = createHash('sha256').update(`${c.secretId}\u0000${c.secretKey}\u0000${c.token ?? ''}`).digest('hex');
      return { value: { secretId: c.secretId, secretKey: c.secretKey, token: c.token || undefined }, id, source: `default/${name}` };
    };
    const steps: Array<[string, () => Promise<Obtained<TencentKey> | undefined>]> = [
      ['env', async () => plain('env', await new EnvironmentVariableCredential().getCredential())],
      ['profile', async () => plain('profile', await new ProfileCredential().getCredential())],
      ['cvm_role', () => cvmRoleCredential(this.opts.endpoints?.cvmMetadata ?? CVM_METADATA_ORIGIN, undefined, this.opts.httpTimeoutMs ?? METADATA_TIMEOUT_MS, signal, 'default/cvm_role')],
      [
        'oidc_role_arn',
        async () => {
          const env = process.env;
          const missing = ['TKE_REGION', 'TKE_PROVIDER_ID', 'TKE_WEB_IDENTITY_TOKEN_FILE', 'TKE_ROLE_ARN'].filter((k) => !env[k]);
          if (missing.length > 0) {
            errors.push(`oidc_role_arn: ${missing.join(', ')} not set`);
            return undefined;
          }
          return assumeWithWebIdentity(this.stsFor(env.TKE_REGION!), signal, { roleArn: env.TKE_ROLE_ARN!, providerId: env.TKE_PROVIDER_ID!, tokenFile: env.TKE_WEB_IDENTITY_TOKEN_FILE!, sessionName: 'cloud-session-exporter', durationS: 3600 }, 'default/oidc_role_arn');
        },
      ],
    ];
    for (const [name, step] of steps) {
      try {
        const got = await step();
        if (got) return got;
      } catch (err) {
        errors.push(`${name}: ${describeError(err)}`);
      }
    }
    throw new Error(`no provider of the default chain answered (${errors.join('; ')})`);
  }
}
