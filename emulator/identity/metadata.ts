// Instance credentials as ECS instance metadata (IMDS, v1 and v2 tokens), CVM instance metadata and an Alibaba credentials URI serve them.
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { IssuedCredential, IssuedCredentialStore } from './store';

export interface InstanceRoleConfig {
  /** Role attached to the instance; undefined: none (the role listing answers 404). */
  roleName?: string;
  /** Scenario account its credentials act as. */
  account: string;
}

export interface MetadataAnswer {
  status: number;
  contentType: string;
  text: string;
  /** 'ok' or why not, for the identity statistics. */
  outcome: string;
}

/** Instance credentials live this long unless the options say otherwise (ECS and CVM hand out hours-long ones). */
const DEFAULT_INSTANCE_TTL_MS = 6 * 3600_000;
const ECS_TOKEN_MAX_TTL_S = 21_600;

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const json = (body: unknown): MetadataAnswer => ({ status: 200, contentType: 'application/json', text: JSON.stringify(body), outcome: 'ok' });
const text = (status: number, body: string, outcome: string): MetadataAnswer => ({ status, contentType: 'text/plain', text: body, outcome });

/**
 * One instance's current credential. Like the real services, a new one is available well before the old expires
 * (here once half its lifetime is gone), and until then every read returns the same one.
 */
class InstanceCredential {
  private current: IssuedCredential | undefined;

  constructor(
    private readonly issue: (ttlMs: number) => IssuedCredential,
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  get(): IssuedCredential {
    const c = this.current;
    if (!c || c.expiresAt - this.now() <= this.ttlMs / 2) this.current = this.issue(this.ttlMs);
    return this.current!;
  }
}

export class EcsMetadata {
  private readonly tokens = new Map<string, number>();
  private readonly credential: InstanceCredential;

  constructor(
    private readonly cfg: InstanceRoleConfig & { imdsV2Required?: boolean },
    store: IssuedCredentialStore,
    private readonly now: () => number,
    private readonly ttlMs = DEFAULT_INSTANCE_TTL_MS,
  ) {
    this.credential = new InstanceCredential((t) => store.issueAliyun({ account: cfg.account, role: cfg.roleName ?? '', ttlMs: t }), ttlMs, now);
  }

  static handles(path: string): boolean {
    return path === '/latest/api/token' || path.startsWith('/latest/meta-data/ram/security-credentials');
  }

  answer(method: string, path: string, headers: IncomingHttpHeaders): MetadataAnswer {
    if (path === '/latest/api/token') {
      if (method !== 'PUT') return text(405, 'Method Not Allowed', 'method');
      const ttl = Number(headers['x-aliyun-ecs-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > ECS_TOKEN_MAX_TTL_S) return text(400, 'Bad Request', 'token-ttl');
      const token = randomBytes(24).toString('base64url');
      this.tokens.set(token, this.now() + ttl * 1000);
      return text(200, token, 'ok');
    }
    if (method !== 'GET') return text(405, 'Method Not Allowed', 'method');
    const presented = headers['x-aliyun-ecs-metadata-token'];
    if (typeof presented === 'string') {
      const until = this.tokens.get(presented);
      if (until === undefined || until <= this.now()) return text(401, 'Unauthorized', 'token');
    } else if (this.cfg.imdsV2Required) return text(401, 'Unauthorized', 'token-required');
    const role = this.cfg.roleName;
    const rest = path.replace(/^\/latest\/meta-data\/ram\/security-credentials\/?/, '');
    if (rest === '') return role ? text(200, role, 'ok') : text(404, 'Not Found', 'no-role');
    if (rest !== role) return text(404, 'Not Found', 'unknown-role');
    const c = this.credential.get();
    return json({ AccessKeyId: c.keyId, AccessKeySecret: c.secret, Expiration: iso(c.expiresAt), SecurityToken: c.token, LastUpdated: iso(c.expiresAt - this.ttlMs), Code: 'Success' });
  }
}

export class CvmMetadata {
  private readonly credential: InstanceCredential;

  constructor(
    private readonly cfg: InstanceRoleConfig,
    store: IssuedCredentialStore,
    now: () => number,
    ttlMs = DEFAULT_INSTANCE_TTL_MS,
  ) {
    this.credential = new InstanceCredential((t) => store.issueTencent({ account: cfg.account, role: cfg.roleName ?? '', ttlMs: t }), ttlMs, now);
  }

  static handles(path: string): boolean {
    return path.startsWith('/latest/meta-data/cam/security-credentials');
  }

  answer(method: string, path: string): MetadataAnswer {
    if (method !== 'GET') return text(405, 'Method Not Allowed', 'method');
    const role = this.cfg.roleName;
    const rest = path.replace(/^\/latest\/meta-data\/cam\/security-credentials\/?/, '');
    if (rest === '') return role ? text(200, role, 'ok') : text(404, 'Not Found', 'no-role');
    if (rest !== role) return text(404, 'Not Found', 'unknown-role');
    const c = this.credential.get();
    return json({ TmpSecretId: c.keyId, TmpSecretKey: c.secret, ExpiredTime: c.expiresAt / 1000, Expiration: iso(c.expiresAt), Token: c.token, Code: 'Success' });
  }
}

/** An Alibaba credentials URI (ALIBABA_CLOUD_CREDENTIALS_URI): GET answers the current credential as JSON. */
export class CredentialsUri {
  private readonly credential: InstanceCredential;

  constructor(account: string, store: IssuedCredentialStore, now: () => number, ttlMs = DEFAULT_INSTANCE_TTL_MS) {
    this.credential = new InstanceCredential((t) => store.issueAliyun({ account, role: 'credentials-uri', ttlMs: t }), ttlMs, now);
  }

  answer(method: string): MetadataAnswer {
    if (method !== 'GET') return text(405, 'Method Not Allowed', 'method');
    const c = this.credential.get();
    return json({ Code: 'Success', AccessKeyId: c.keyId, AccessKeySecret: c.secret, SecurityToken: c.token, Expiration: iso(c.expiresAt) });
  }
}
