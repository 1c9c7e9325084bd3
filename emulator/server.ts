// Starts the cloud emulator: one HTTP server with the provider gateways (Alibaba POP, Tencent TC3) in front of every
// registered product (products.ts), plus the admin endpoints. Nothing here knows a product by name.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AliyunApi, ProductRuntime } from './core/api';
import { ADMIN_PREFIX, handleAdmin, type AdminOps } from './core/admin-api';
import type { GatewayEnv } from './core/call-flow';
import { FaultInjector } from './core/faults';
import { BodyTooLargeError, readBody, sendJson, splitUrl } from './core/http-util';
import { createRng } from './core/prng';
import { RateLimiterRegistry, SourceIpGuard } from './core/rate-window';
import { credentialsOf, type Scenario } from './core/scenario';
import { StatsRecorder } from './core/stats';
import { Timers } from './core/timers';
import { AliyunGateway } from './gateways/aliyun/gateway';
import { ALIYUN_ERRORS } from './gateways/error-catalog';
import { NonceStore } from './gateways/aliyun/nonce-store';
import { AliyunVerifier, parsePopParams } from './gateways/aliyun/signature';
import { TencentGateway, type ServiceApi } from './gateways/tencent/gateway';
import { TencentVerifier } from './gateways/tencent/signature';
import type { CallAuth } from './identity/verify';
import { PRODUCTS } from './products';
import { createIdentityService, type IdentityService } from './identity';
import { identityOptions, type IdentityScenario } from './identity/scenario';
import { DEFAULT_QPS, normalizeScenario, parseFaults } from './scenario';

export interface EmulatorOptions {
  /** A parsed scenario; a plain object is validated and completed with defaults. */
  scenario: unknown;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Milliseconds clock used for signatures, rate windows, churn and stats; injectable for tests. */
  now?: () => number;
  /** Hooks for the products that know them (see each product's start()). */
  [hook: string]: unknown;
}

/** The admin operations (also served under /_emulator/), plus the server's address, its products and lifecycle. */
export interface Emulator extends AdminOps {
  /** e.g. http://127.0.0.1:18080 */
  readonly url: string;
  readonly port: number;
  readonly scenario: Scenario;
  /** The STS, instance-metadata and credentials-URI endpoints, when the scenario has an `identity:` section. */
  readonly identity: IdentityService | undefined;
  /** A product's runtime by its truth key (`mqtt`, `mongodb`, `redis`): its typed extras are the product's to export. */
  runtime(truthKey: string): ProductRuntime | undefined;
  close(): Promise<void>;
}

// Both SDKs keep connections alive; a server that closes idle sockets first makes clients hit ECONNRESET.
const KEEP_ALIVE_TIMEOUT_MS = 120_000;

export async function startEmulator(opts: EmulatorOptions): Promise<Emulator> {
  const scenario = normalizeScenario(opts.scenario, 'scenario');
  const now = opts.now ?? Date.now;
  const credentials = credentialsOf(scenario);
  const runtimes = new Map<string, ProductRuntime>();
  for (const product of PRODUCTS) runtimes.set(product.truthKey, await product.start({ scenario, credentials, now, hooks: opts }));

  const env: GatewayEnv = {
    now,
    stats: new StatsRecorder(now),
    limiters: new RateLimiterRegistry({ ...DEFAULT_QPS, ...scenario.rate_limits }),
    sourceIps: new SourceIpGuard(
      new Map(PRODUCTS.filter((p) => p.sourceIpQps !== undefined).flatMap((p) => p.apis.map((a) => [a.name, p.truthKey] as [string, string]))),
      Object.fromEntries(PRODUCTS.filter((p) => p.sourceIpQps !== undefined).map((p) => [p.truthKey, scenario.source_ip_limits[p.truthKey] ?? p.sourceIpQps!])),
      scenario.source_ip_block_seconds * 1000,
    ),
    faults: new FaultInjector(scenario.latency, scenario.faults, createRng(scenario.seed)),
    timers: new Timers(),
  };
  const aliyunApis: AliyunApi[] = [];
  const tencentApis: ServiceApi[] = [];
  for (const product of PRODUCTS) {
    const rt = runtimes.get(product.truthKey)!;
    aliyunApis.push(...(rt.aliyun ?? []));
    tencentApis.push(...(rt.tencent ?? []).map((a) => ({ ...a, handle: a.handle, service: product.service ?? '' })));
  }
  const services = new Set(PRODUCTS.flatMap((p) => (p.service ? [p.service] : [])));
  const catalog = Object.assign({}, ALIYUN_ERRORS, ...PRODUCTS.map((p) => p.errors ?? {}));
  // With identity endpoints, the gateways also accept what they issued, until it expires (identity/verify.ts).
  const identity = scenario.identity ? createIdentityService(identityOptions(scenario.identity as IdentityScenario, credentials, now)) : undefined;
  const aliyunVerifier: Pick<AliyunVerifier, 'verify'> = identity
    ? { verify: (method, params, nowMs) => asAuthResult(identity.verifyAliyun(method, params, nowMs), (account, keyId) => ({ account, provider: 'aliyun', access_key_id: keyId, access_key_secret: '' })) }
    : new AliyunVerifier(credentials.aliyun, new NonceStore());
  const tencentVerifier: Pick<TencentVerifier, 'verify'> = identity
    ? { verify: (req, nowMs) => asAuthResult(identity.verifyTencent(req, nowMs, services), (account, keyId) => ({ account, provider: 'tencentcloud', secret_id: keyId, secret_key: '' })) }
    : new TencentVerifier(credentials.tencentcloud, services);
  const aliyun = new AliyunGateway(aliyunApis, aliyunVerifier, env, catalog);
  const tencent = new TencentGateway(tencentApis, tencentVerifier, env);

  const ops: AdminOps = {
    truth: async () => {
      const out: Record<string, unknown> = {};
      for (const [key, rt] of runtimes) out[key] = await rt.truth(now());
      return out;
    },
    stats: () => ({ ...env.stats.snapshot(), source_ips: env.sourceIps.snapshot() }),
    resetStats: () => {
      env.stats.reset();
      env.sourceIps.reset();
    },
    faults: () => env.faults.current(),
    setFaults: (faults) => env.faults.replace(parseFaults(faults, 'faults')),
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { path, rawQuery } = splitUrl(req.url);
    const body = await readBody(req);
    if (path.startsWith(ADMIN_PREFIX.slice(0, -1))) {
      for (const rt of runtimes.values()) if (await rt.admin?.(req, res, path, body)) return;
      if (identity && (await identityAdmin(identity, req, res, path, body))) return;
      return handleAdmin(ops, req, res, path, body);
    }
    if (identity && (await identity.handle(req, res, path, rawQuery, body))) return;
    const authorization = req.headers.authorization;
    if (req.headers['x-tc-action'] !== undefined || (typeof authorization === 'string' && authorization.startsWith('TC3-'))) {
      return tencent.handle(req, res, path, rawQuery, body);
    }
    const params = parsePopParams(rawQuery, body, req.headers['content-type']);
    if (params.values.has('SecretId')) return tencent.rejectLegacy(req, res, params.values.get('Action'));
    return aliyun.handle(req, res, params);
  };

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (err instanceof BodyTooLargeError) return sendJson(res, 413, { error: err.message });
      process.stderr.write(`cloud-session-emulator: internal error on ${req.method} ${req.url}: ${(err as Error).stack}\n`);
      sendJson(res, 500, { Code: 'InternalError', Message: 'emulator internal error' });
    });
  });
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closed: Promise<void> | undefined;
  return {
    url: `http://${hostForUrl}:${address.port}`,
    port: address.port,
    scenario,
    identity,
    runtime: (key) => runtimes.get(key),
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        env.timers.clear();
        identity?.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(async () => {
        for (const rt of runtimes.values()) await rt.close?.();
      });
      return closed;
    },
    ...ops,
  };
}

/** A verification by the identity service in the shape the gateways take. */
function asAuthResult<C>(auth: CallAuth, credential: (account: string, keyId: string) => C): { ok: true; credential: C } | { ok: false; code: string; message: string } {
  return auth.ok ? { ok: true, credential: credential(auth.account, auth.keyId) } : { ok: false, code: auth.code, message: auth.message };
}

/**
 * GET  /_emulator/identity          {modes, stats} of the identity endpoints
 * POST /_emulator/identity/modes    {"aliyun-sts": "unavailable", ...}: take endpoints down (unavailable, blackhole) or up
 */
async function identityAdmin(identity: IdentityService, req: IncomingMessage, res: ServerResponse, path: string, body: Buffer): Promise<boolean> {
  if (path === `${ADMIN_PREFIX}identity` && req.method === 'GET') {
    sendJson(res, 200, { modes: identity.modes(), stats: identity.stats() });
    return true;
  }
  if (path === `${ADMIN_PREFIX}identity/modes` && req.method === 'POST') {
    let changes: unknown;
    try {
      changes = JSON.parse(body.toString('utf8') || '{}');
    } catch {
      sendJson(res, 400, { error: 'the body must be JSON' });
      return true;
    }
    const problem = identity.setModes(changes);
    if (problem) sendJson(res, 400, { error: problem });
    else sendJson(res, 200, { modes: identity.modes() });
    return true;
  }
  return false;
}
