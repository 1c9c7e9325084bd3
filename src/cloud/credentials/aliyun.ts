// Alibaba Cloud credentials for pop-core's `credentialsProvider`: @alicloud/credentials fetches them, this module decides when.
//
// The vendor providers build, sign and parse every STS, metadata and URI exchange; what they get wrong for a
// long-running exporter is worked around here:
// - They refresh lazily inside getCredentials(), i.e. on the call's hot path, 15 minutes before expiry at the
//   earliest. Here their `refresher` (one fetch, no caching) runs from a background timer instead (refresh.ts).
// - Their HTTP goes out through `doRequest`, a per-instance field kept for mocking: it is replaced by one bounded
//   exchange (http.ts) so that every fetch has a timeout that ends it, only STS goes through the account's proxy
//   (never instance metadata or a credentials URI), and an endpoint override (VPC STS by URL, instance metadata in
//   tests) can change the fixed https:// scheme and 100.100.100.200 host.
// - The default chain remembers the last provider it tried, even a failing one, and never walks the chain again; the
//   `default` type here walks it from the start at every refresh.
import {
  CLIProfileCredentialsProvider,
  ECSRAMRoleCredentialsProvider,
  EnvironmentVariableCredentialsProvider,
  OIDCRoleArnCredentialsProvider,
  ProfileCredentialsProvider,
  RAMRoleARNCredentialsProvider,
  URICredentialsProvider,
} from '@alicloud/credentials';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { registerSecret } from '../../util/redact';
import type { AliyunCredentialsConfig } from '../../config/credentials';
import { SecretValues, WatchedSecrets } from './files';
import { httpExchange } from './http';
import { describeError, ManagedCredentials, type CredentialsOptions, type Obtained } from './refresh';

/** What pop-core reads from `credentialsProvider.getCredentials()` on every request. */
export interface AliyunKey {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string;
}

export interface AliyunCredentialsOptions extends CredentialsOptions {
  /** Origins replacing the fixed ones of the `default` chain: instance metadata (100.100.100.200) and STS. */
  endpoints?: { ecsMetadata?: string; sts?: string };
}

/** Usable as pop-core's `credentialsProvider` (missing from its type declarations): pass it in the RPCClient config. */
export class AliyunCredentials extends ManagedCredentials<AliyunKey> {
  /** Called by pop-core before every request: the cached credential, never a fetch. */
  getCredentials(): Promise<AliyunKey> {
    return this.current();
  }
}

const ECS_METADATA_HOST = '100.100.100.200';
const DEFAULT_FILE_RECHECK_MS = 10_000;
const DEFAULT_CHAIN_RECHECK_MS = 60_000;

export function createAliyunCredentials(cfg: AliyunCredentialsConfig, opts: AliyunCredentialsOptions): AliyunCredentials {
  const dir = opts.configDir ?? process.cwd();
  const http = new SdkHttp(opts.httpTimeoutMs, opts.stsProxy);
  const make = (fetch: (signal: AbortSignal) => Promise<Obtained<AliyunKey>>, recheckMs?: number): AliyunCredentials =>
    new AliyunCredentials(
      cfg.type,
      (signal) => {
        http.signal = signal;
        return fetch(signal);
      },
      opts,
      recheckMs,
    );

  switch (cfg.type) {
    case 'access_key': {
      // Read once: static keys change with a reload, not behind the exporter's back.
      const v = new SecretValues(cfg, ['access_key_id', 'access_key_secret'] as const, dir).read();
      return make(async () => ({ value: { accessKeyId: v.access_key_id, accessKeySecret: v.access_key_secret }, id: v.fingerprint }));
    }
    case 'sts': {
      const values = new SecretValues(cfg, ['access_key_id', 'access_key_secret', 'security_token'] as const, dir);
      const watched = new WatchedSecrets(values, opts.settleMs ?? 1000);
      return make(
        async () => {
          const v = await watched.current();
          return { value: { accessKeyId: v.access_key_id, accessKeySecret: v.access_key_secret, securityToken: v.security_token }, id: v.fingerprint, source: values.fromFiles ? 'files' : 'config' };
        },
        values.fromFiles ? (opts.recheckMs ?? DEFAULT_FILE_RECHECK_MS) : undefined,
      );
    }
    case 'ram_role_arn': {
      const base = new SecretValues(cfg, ['access_key_id', 'access_key_secret', 'security_token'] as const, dir);
      const sts = stsHost(cfg.sts_endpoint, http);
      let builder = RAMRoleARNCredentialsProvider.builder()
        // Read at every refresh: base keys given as files may be rotated.
        .withCredentialsProvider(baseKeyProvider(base))
        .withRoleArn(cfg.role_arn)
        .withRoleSessionName(cfg.role_session_name)
        .withDurationSeconds(Math.round(cfg.duration / 1000));
      if (sts) builder = builder.withStsEndpoint(sts);
      if (cfg.external_id) builder = builder.withExternalId(cfg.external_id);
      if (cfg.policy) builder = builder.withPolicy(cfg.policy);
      const p = http.install(builder.build(), 'sts');
      return make(async () => fromSession(await p.refresher(), 'ram_role_arn'));
    }
    case 'oidc_role_arn': {
      const sts = stsHost(cfg.sts_endpoint, http);
      let builder = OIDCRoleArnCredentialsProvider.builder()
        .withRoleArn(cfg.role_arn)
        .withOIDCProviderArn(cfg.oidc_provider_arn)
        // The vendor reads the file at each fetch: projected tokens rotate.
        .withOIDCTokenFilePath(path.resolve(dir, cfg.oidc_token_file))
        .withRoleSessionName(cfg.role_session_name)
        .withDurationSeconds(Math.round(cfg.duration / 1000));
      if (sts) builder = builder.withStsEndpoint(sts);
      if (cfg.policy) builder = builder.withPolicy(cfg.policy);
      const p = http.install(builder.build(), 'sts');
      return make(async () => fromSession(await p.refresher(), 'oidc_role_arn'));
    }
    case 'ecs_ram_role': {
      if (cfg.metadata_endpoint) http.rewrite(ECS_METADATA_HOST, cfg.metadata_endpoint);
      let builder = ECSRAMRoleCredentialsProvider.builder();
      if (cfg.role_name) builder = builder.withRoleName(cfg.role_name);
      const p = http.install(builder.build(), 'local');
      return make(async () => fromSession(await p.refresher(), 'ecs_ram_role'));
    }
    case 'credentials_uri': {
      const p = http.install(URICredentialsProvider.builder().withCredentialsURI(cfg.uri).build(), 'local');
      return make(async () => fromSession(await p.refresher(), 'credentials_uri'));
    }
    case 'default':
      if (opts.endpoints?.ecsMetadata) http.rewrite(ECS_METADATA_HOST, opts.endpoints.ecsMetadata);
      return make(() => walkDefaultChain(http, opts.endpoints?.sts), opts.recheckMs ?? DEFAULT_CHAIN_RECHECK_MS);
  }
}

/** The AccessKey of an `access_key` block (files read now), for what only a long-term key can do (MQTT Signature sign-in). */
export function longTermAccessKey(cfg: AliyunCredentialsConfig, configDir: string): { id: string; secret: string } | undefined {
  if (cfg.type !== 'access_key') return undefined;
  const v = new SecretValues(cfg, ['access_key_id', 'access_key_secret'] as const, configDir).read();
  return { id: v.access_key_id, secret: v.access_key_secret };
}

interface SdkSession {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken: string;
  expiration: string;
}

function fromSession(s: SdkSession, source: string): Obtained<AliyunKey> {
  for (const v of [s.accessKeyId, s.accessKeySecret, s.securityToken]) registerSecret(v);
  const expiresAt = Date.parse(s.expiration);
  return {
    value: { accessKeyId: s.accessKeyId, accessKeySecret: s.accessKeySecret, securityToken: s.securityToken },
    expiresAt: Number.isFinite(expiresAt) ? expiresAt : undefined,
    id: s.accessKeyId,
    source,
  };
}

/** The base keys of ram_role_arn as the vendor's `credentialsProvider`, files read at each refresh. */
function baseKeyProvider(base: SecretValues<'access_key_id' | 'access_key_secret' | 'security_token'>): { getCredentials(): Promise<never>; getProviderName(): string } {
  return {
    getCredentials: async () => {
      const v = base.read();
      // The vendor reads these four fields only; its Credentials class is not needed.
      return { accessKeyId: v.access_key_id, accessKeySecret: v.access_key_secret, securityToken: v.security_token, providerName: base.fromFiles ? 'static_files' : 'static_ak' } as never;
    },
    getProviderName: () => (base.fromFiles ? 'static_files' : 'static_ak'),
  };
}

/** The host handed to the vendor builder for an `sts_endpoint`; a URL's scheme and port are restored by SdkHttp. */
function stsHost(endpoint: string | undefined, http: SdkHttp): string | undefined {
  if (!endpoint) return undefined;
  if (!/^https?:\/\//.test(endpoint)) return endpoint;
  const u = new URL(endpoint);
  http.rewrite(u.host, u.origin);
  return u.host;
}

/** The vendor's Request, as its providers hand it to `doRequest`. */
interface SdkRequest {
  method: string;
  protocol?: string;
  host?: string;
  path?: string;
  url?: string;
  queries?: Record<string, string>;
  headers?: Record<string, string>;
  bodyForm?: Record<string, string>;
  readTimeout?: number;
  connectTimeout?: number;
}

/** Keys of answers that carry credentials: registered for redaction the moment they arrive. */
const SECRET_FIELDS = ['AccessKeyId', 'AccessKeySecret', 'SecurityToken'];

/**
 * The `doRequest` installed into each vendor provider: bounded, with endpoint overrides; an STS provider's through
 * the account's proxy, an instance-metadata or credentials-URI provider's ('local') always direct.
 */
class SdkHttp {
  signal: AbortSignal | undefined;
  private readonly rewrites = new Map<string, string>();

  constructor(
    private readonly timeoutMs: number | undefined,
    private readonly stsProxy: CredentialsOptions['stsProxy'],
  ) {}

  rewrite(host: string, origin: string): void {
    this.rewrites.set(host, origin.replace(/\/+$/, ''));
  }

  install<P extends object>(provider: P, reach: 'sts' | 'local'): P {
    (provider as unknown as { doRequest: (r: SdkRequest) => Promise<unknown> }).doRequest = (r) => this.request(r, reach);
    return provider;
  }

  private async request(r: SdkRequest, reach: 'sts' | 'local'): Promise<{ statusCode: number; headers: Record<string, unknown>; body: Buffer }> {
    // The vendor's own query and form encoding (value-only encodeURIComponent): the signature was computed over it.
    const form = (o: Record<string, string>): string => Object.entries(o).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
    let url = r.url;
    if (url === undefined) {
      const origin = this.rewrites.get(r.host ?? '') ?? `${r.protocol ?? 'https'}://${r.host ?? ''}`;
      const q = r.queries && Object.keys(r.queries).length > 0 ? `?${form(r.queries)}` : '';
      url = `${origin}${r.path ?? '/'}${q}`;
    }
    const body = r.bodyForm && Object.keys(r.bodyForm).length > 0 ? form(r.bodyForm) : undefined;
    if (r.bodyForm?.OIDCToken) registerSecret(r.bodyForm.OIDCToken);
    const headers: Record<string, string> = { ...r.headers };
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/x-www-form-urlencoded';
    const timeoutMs = this.timeoutMs ?? (r.connectTimeout ?? 5000) + (r.readTimeout ?? 10_000);
    const proxy = reach === 'sts' ? this.stsProxy?.(url) : undefined;
    const answer = await httpExchange({ method: r.method, url, headers, body, timeoutMs, signal: this.signal, proxy });
    registerSecretsIn(answer.body);
    // An IMDSv2 session token is a bearer credential of the instance.
    if (r.path === '/latest/api/token' && answer.status === 200) registerSecret(answer.body.toString('utf8'));
    return { statusCode: answer.status, headers: answer.headers, body: answer.body };
  }
}

function registerSecretsIn(body: Buffer): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return;
  }
  const visit = (o: unknown): void => {
    if (!o || typeof o !== 'object') return;
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === 'string' && SECRET_FIELDS.includes(k)) registerSecret(v);
      else if (v && typeof v === 'object') visit(v);
    }
  };
  visit(parsed);
}

interface PlainKey {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string;
}
type ChainLink = [name: string, build: () => { refresher: () => Promise<SdkSession> } | { getCredentials(): Promise<PlainKey> }];

/**
 * The vendor's default chain in its order (environment, OIDC/RRSA, CLI profile, profile file, instance role,
 * credentials URI), built from the environment and walked from the start at every refresh: the first link that
 * answers wins, so a provider that stops answering is passed over and one that starts answering is taken up.
 */
async function walkDefaultChain(http: SdkHttp, stsOverride: string | undefined): Promise<Obtained<AliyunKey>> {
  const env = process.env;
  const links: ChainLink[] = [
    ['env', () => EnvironmentVariableCredentialsProvider.builder().build()],
    [
      'oidc_role_arn',
      () => {
        let b = OIDCRoleArnCredentialsProvider.builder();
        const sts = stsHost(stsOverride, http);
        if (sts) b = b.withStsEndpoint(sts);
        return http.install(b.build(), 'sts');
      },
    ],
    ['cli_profile', () => CLIProfileCredentialsProvider.builder().build()],
    ['profile', () => ProfileCredentialsProvider.builder().build()],
    ['ecs_ram_role', () => http.install(ECSRAMRoleCredentialsProvider.builder().withRoleName(env.ALIBABA_CLOUD_ECS_METADATA as string).build(), 'local')],
    [
      'credentials_uri',
      () => {
        if (!env.ALIBABA_CLOUD_CREDENTIALS_URI) throw new Error('ALIBABA_CLOUD_CREDENTIALS_URI is not set');
        return http.install(URICredentialsProvider.builder().withCredentialsURI(env.ALIBABA_CLOUD_CREDENTIALS_URI).build(), 'local');
      },
    ],
  ];
  const errors: string[] = [];
  for (const [name, build] of links) {
    let provider: ReturnType<ChainLink[1]>;
    try {
      provider = build();
    } catch (err) {
      // Not configured: the builder says which variable is missing.
      errors.push(`${name}: ${describeError(err)}`);
      continue;
    }
    try {
      if ('refresher' in provider && typeof provider.refresher === 'function') return fromSession(await provider.refresher(), `default/${name}`);
      const c = await (provider as { getCredentials(): Promise<PlainKey> }).getCredentials();
      if (!c.accessKeyId || !c.accessKeySecret) throw new Error('empty credential');
      for (const v of [c.accessKeyId, c.accessKeySecret, c.securityToken]) registerSecret(v);
      const id = createHash('sha256').update(`${c.accessKeyId}\u0000${c.accessKeySecret}\u0000${c.securityToken ?? ''}`).digest('hex');
      return { value: { accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret, securityToken: c.securityToken || undefined }, id, source: `default/${name}` };
    } catch (err) {
      errors.push(`${name}: ${describeError(err)}`);
    }
  }
  throw new Error(`no provider of the default chain answered (${errors.join('; ')})`);
}
