// The emulator's identity endpoints behind one small interface: STS of both clouds, ECS and CVM instance metadata,
// a credentials URI, the store of what they issued, and switches that take an endpoint down.
//
// Wiring (server.ts): call `identity.handle(req, res, path, rawQuery, body)` first in the router; when it answers
// false the request is not an identity call. The gateways verify calls with `verifyAliyun` / `verifyTencent` (or
// consult `lookupAliyun` / `lookupTencent` themselves) so that issued credentials work and expire.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parsePopParams, type PopParams } from '../gateways/aliyun/signature';
import { sendJson, sendRaw } from '../core/http-util';
import { NonceStore } from '../gateways/aliyun/nonce-store';
import type { AliyunCredential, TencentCredential } from '../core/scenario';
import type { Tc3Request } from '../gateways/tencent/signature';
import { ALIYUN_STS_ACTIONS, handleAliyunSts, type AliyunOidcProvider, type AliyunRole, type StsAnswer } from './aliyun-sts';
import { CredentialsUri, CvmMetadata, EcsMetadata, type InstanceRoleConfig, type MetadataAnswer } from './metadata';
import { IssuedCredentialStore, type IssuedLookup } from './store';
import { handleTencentSts, TENCENT_STS_ACTIONS, type TencentOidcProvider, type TencentRole } from './tencent-sts';
import { verifyAliyunCall, verifyTencentCall, type CallAuth } from './verify';

export const IDENTITY_ENDPOINTS = ['aliyun-sts', 'tencent-sts', 'ecs-metadata', 'cvm-metadata', 'credentials-uri'] as const;
export const ENDPOINT_MODES = ['up', 'unavailable', 'blackhole'] as const;
export type IdentityEndpoint = (typeof IDENTITY_ENDPOINTS)[number];
/** `unavailable`: HTTP 503 at once; `blackhole`: the request is read and never answered (until close()). */
export type EndpointMode = (typeof ENDPOINT_MODES)[number];

export interface IdentityOptions {
  now?: () => number;
  /**
   * Lifetime of every credential issued, in seconds (fractions allowed). Default: the DurationSeconds asked of STS,
   * and 6 h for instance metadata and the credentials URI. Tests use a few seconds.
   */
  ttlSeconds?: number;
  /** Keys that may sign AssumeRole (the scenario's credentials); issued keys may too (role chaining). */
  aliyunCredentials?: readonly AliyunCredential[];
  tencentCredentials?: readonly TencentCredential[];
  aliyun?: {
    roles?: readonly AliyunRole[];
    oidcProviders?: readonly AliyunOidcProvider[];
    /** Serve ECS instance metadata (100.100.100.200) for an instance with this role. */
    ecs?: InstanceRoleConfig & { imdsV2Required?: boolean };
    /** Serve a credentials URI at this path. */
    credentialsUri?: { path: string; account: string };
  };
  tencent?: {
    roles?: readonly TencentRole[];
    oidcProviders?: readonly TencentOidcProvider[];
    /** Serve CVM instance metadata (metadata.tencentyun.com) for an instance with this role. */
    cvm?: InstanceRoleConfig;
  };
  /** Modes at start; default all up. */
  modes?: Partial<Record<IdentityEndpoint, EndpointMode>>;
}

export interface IdentityService {
  /** Answers `req` if it is an identity call (true), or leaves it to the caller (false). `body` is already read. */
  handle(req: IncomingMessage, res: ServerResponse, path: string, rawQuery: string, body: Buffer): Promise<boolean>;
  setMode(endpoint: IdentityEndpoint, mode: EndpointMode): void;
  /** Several modes at once from an untrusted object (the admin API); returns the problem, if any, and changes nothing then. */
  setModes(changes: unknown): string | undefined;
  /** Every endpoint's mode now. */
  modes(): Record<IdentityEndpoint, EndpointMode>;
  /** A POP-signed call by a scenario key or an issued one (see verify.ts for the codes). */
  verifyAliyun(method: string, params: PopParams, nowMs: number): CallAuth;
  /** A TC3-signed call by a scenario key or an issued one, to one of `services` (the TC3 scope's service names). */
  verifyTencent(req: Tc3Request, nowMs: number, services: ReadonlySet<string>): CallAuth;
  lookupAliyun(accessKeyId: string): IssuedLookup | undefined;
  lookupTencent(secretId: string): IssuedLookup | undefined;
  readonly store: IssuedCredentialStore;
  /** Answers by endpoint, action and outcome: `{"aliyun-sts AssumeRole ok": 3, "ecs-metadata GET 401": 1}`. */
  stats(): Record<string, number>;
  /** Ends black-holed requests. */
  close(): void;
}

export function createIdentityService(opts: IdentityOptions): IdentityService {
  const now = opts.now ?? Date.now;
  const store = new IssuedCredentialStore(now);
  const nonces = new NonceStore();
  const ttlMs = opts.ttlSeconds === undefined ? undefined : opts.ttlSeconds * 1000;
  const aliyunBase = opts.aliyunCredentials ?? [];
  const tencentBase = opts.tencentCredentials ?? [];
  const modes = new Map<IdentityEndpoint, EndpointMode>(Object.entries(opts.modes ?? {}) as Array<[IdentityEndpoint, EndpointMode]>);
  const counts = new Map<string, number>();
  const held = new Set<ServerResponse>();
  const count = (key: string): void => void counts.set(key, (counts.get(key) ?? 0) + 1);

  const aliyunCtx = opts.aliyun && {
    now,
    store,
    nonces,
    base: aliyunBase,
    roles: new Map((opts.aliyun.roles ?? []).map((r) => [r.arn, r])),
    oidcProviders: new Map((opts.aliyun.oidcProviders ?? []).map((p) => [p.arn, p])),
    ttlMs,
  };
  const tencentCtx = opts.tencent && {
    now,
    store,
    base: tencentBase,
    roles: new Map((opts.tencent.roles ?? []).map((r) => [r.arn, r])),
    oidcProviders: new Map((opts.tencent.oidcProviders ?? []).map((p) => [p.id, p])),
    ttlMs,
  };
  const ecs = opts.aliyun?.ecs && new EcsMetadata(opts.aliyun.ecs, store, now, ttlMs);
  const cvm = opts.tencent?.cvm && new CvmMetadata(opts.tencent.cvm, store, now, ttlMs);
  const uri = opts.aliyun?.credentialsUri && new CredentialsUri(opts.aliyun.credentialsUri.account, store, now, ttlMs);

  /** Applies the endpoint's mode; true when the request was answered (503) or swallowed (black hole). */
  const intercepted = (endpoint: IdentityEndpoint, res: ServerResponse, unavailable: () => void): boolean => {
    const mode = modes.get(endpoint) ?? 'up';
    if (mode === 'up') return false;
    count(`${endpoint} ${mode}`);
    if (mode === 'unavailable') unavailable();
    else {
      held.add(res);
      res.once('close', () => held.delete(res));
    }
    return true;
  };
  const sendMetadata = (res: ServerResponse, endpoint: IdentityEndpoint, method: string, a: MetadataAnswer): void => {
    count(`${endpoint} ${method} ${a.outcome === 'ok' ? 'ok' : a.status}`);
    sendRaw(res, a.status, a.text, a.contentType);
  };
  const sendSts = (res: ServerResponse, endpoint: IdentityEndpoint, action: string, a: StsAnswer, headers: Record<string, string> = {}): void => {
    count(`${endpoint} ${action} ${a.outcome}`);
    sendJson(res, a.status, a.body, headers);
  };
  const plain503 = (res: ServerResponse) => () => sendRaw(res, 503, 'Service Unavailable', 'text/plain');

  return {
    store,
    lookupAliyun: (id) => store.lookupAliyun(id),
    lookupTencent: (id) => store.lookupTencent(id),
    verifyAliyun: (method, params, nowMs) => verifyAliyunCall(method, params, nowMs, aliyunBase, store, nonces),
    verifyTencent: (req, nowMs, services) => verifyTencentCall(req, nowMs, tencentBase, store, services),
    setMode: (endpoint, mode) => void modes.set(endpoint, mode),
    setModes: (changes) => {
      if (typeof changes !== 'object' || changes === null || Array.isArray(changes)) return 'expected {"<endpoint>": "<mode>", ...}';
      const entries = Object.entries(changes);
      for (const [endpoint, mode] of entries) {
        if (!(IDENTITY_ENDPOINTS as readonly string[]).includes(endpoint)) return `unknown endpoint "${endpoint}" (one of: ${IDENTITY_ENDPOINTS.join(', ')})`;
        if (!(ENDPOINT_MODES as readonly unknown[]).includes(mode)) return `${endpoint}: unknown mode ${JSON.stringify(mode)} (one of: ${ENDPOINT_MODES.join(', ')})`;
      }
      for (const [endpoint, mode] of entries) modes.set(endpoint as IdentityEndpoint, mode as EndpointMode);
      return undefined;
    },
    modes: () => Object.fromEntries(IDENTITY_ENDPOINTS.map((e) => [e, modes.get(e) ?? 'up'])) as Record<IdentityEndpoint, EndpointMode>,
    stats: () => Object.fromEntries(counts),
    close: () => {
      for (const res of held) res.destroy();
      held.clear();
    },

    async handle(req, res, path, rawQuery, body) {
      const method = req.method ?? 'GET';
      if (ecs && EcsMetadata.handles(path)) {
        if (!intercepted('ecs-metadata', res, plain503(res))) sendMetadata(res, 'ecs-metadata', method, ecs.answer(method, path, req.headers));
        return true;
      }
      if (cvm && CvmMetadata.handles(path)) {
        if (!intercepted('cvm-metadata', res, plain503(res))) sendMetadata(res, 'cvm-metadata', method, cvm.answer(method, path));
        return true;
      }
      if (uri && path === opts.aliyun?.credentialsUri?.path) {
        if (!intercepted('credentials-uri', res, plain503(res))) sendMetadata(res, 'credentials-uri', method, uri.answer(method));
        return true;
      }
      const tcAction = req.headers['x-tc-action'];
      if (tencentCtx && typeof tcAction === 'string' && TENCENT_STS_ACTIONS.has(tcAction)) {
        const traceId = String(req.headers['x-tc-traceid'] ?? '');
        // A 503 reaches the SDK as an HTTP error without a code, as from a failing load balancer.
        if (!intercepted('tencent-sts', res, () => sendJson(res, 503, { error: 'Service Unavailable' }))) {
          sendSts(res, 'tencent-sts', tcAction, handleTencentSts(tencentCtx, { method, path, rawQuery, headers: req.headers, body }), traceId ? { 'x-tc-traceid': traceId } : {});
        }
        return true;
      }
      if (!aliyunCtx || tcAction !== undefined) return false;
      const params = parsePopParams(rawQuery, body, req.headers['content-type']);
      const action = params.values.get('Action');
      if (action === undefined || !ALIYUN_STS_ACTIONS.has(action)) return false;
      const host = String(req.headers.host ?? '');
      if (!intercepted('aliyun-sts', res, () => sendJson(res, 503, { RequestId: '', HostId: host, Code: 'ServiceUnavailable', Message: 'The request has failed due to a temporary failure of the server.' }))) {
        sendSts(res, 'aliyun-sts', action, handleAliyunSts(aliyunCtx, method, params, host));
      }
      return true;
    },
  };
}
