// A small identity server for the credential tests: the emulator's identity endpoints plus a tiny API endpoint that
// verifies every signed call (POP v1 or TC3) against the scenario keys and the issued store, so a call signed with an
// expired or unknown token is rejected exactly as the gateways would reject it.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, expect } from 'vitest';
import { CommonClient } from 'tencentcloud-sdk-nodejs-common';
import { createLogger, type Logger } from '../../src/util/log';
import { parsePopParams } from '../../emulator/gateways/aliyun/signature';
import { readBody, sendJson, splitUrl } from '../../emulator/core/http-util';
import { createIdentityService, type IdentityOptions, type IdentityService } from '../../emulator/identity';
import type { CredentialsOptions, RefreshEvent } from '../../src/cloud/credentials/refresh';
import { findSecretLeaks } from '../helpers/secrets';
import { proxyRoute } from '../../src/cloud/proxy';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const RPCClient = require('@alicloud/pop-core').RPCClient as new (cfg: Record<string, unknown>) => { request(action: string, params: Record<string, unknown>, opts: Record<string, unknown>): Promise<unknown> };

export interface IdentityServer {
  url: string;
  port: number;
  identity: IdentityService;
  /** Verified API calls, and refused ones by code. */
  accepted: number;
  refused: Record<string, number>;
  close(): Promise<void>;
}

export async function startIdentityServer(opts: IdentityOptions): Promise<IdentityServer> {
  const identity = createIdentityService(opts);
  const now = opts.now ?? Date.now;
  const state = { accepted: 0, refused: {} as Record<string, number> };
  const refuse = (code: string): void => void (state.refused[code] = (state.refused[code] ?? 0) + 1);
  const server = http.createServer((req, res) => {
    void (async () => {
      const { path, rawQuery } = splitUrl(req.url);
      const body = await readBody(req);
      if (await identity.handle(req, res, path, rawQuery, body)) return;
      if (req.headers['x-tc-action'] !== undefined) {
        const auth = identity.verifyTencent({ method: req.method ?? 'POST', path, rawQuery, headers: req.headers, body }, now(), new Set(['mongodb']));
        if (!auth.ok) {
          refuse(auth.code);
          return sendJson(res, 200, { Response: { Error: { Code: auth.code, Message: auth.message }, RequestId: randomUUID() } });
        }
        state.accepted++;
        return sendJson(res, 200, { Response: { Account: auth.account, RequestId: randomUUID() } });
      }
      const auth = identity.verifyAliyun(req.method ?? 'GET', parsePopParams(rawQuery, body, req.headers['content-type']), now());
      if (!auth.ok) {
        refuse(auth.code);
        return sendJson(res, 400, { RequestId: randomUUID(), HostId: 'test', Code: auth.code, Message: auth.message });
      }
      state.accepted++;
      sendJson(res, 200, { RequestId: randomUUID(), Account: auth.account });
    })().catch((err: unknown) => sendJson(res, 500, { Code: 'InternalError', Message: String(err) }));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    identity,
    get accepted() {
      return state.accepted;
    },
    refused: state.refused,
    close: async () => {
      identity.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A TCP server that accepts and never answers (or resets), counting connections: a dead metadata address or proxy. */
export async function startSilentServer(mode: 'blackhole' | 'reset' = 'blackhole'): Promise<{ url: string; port: number; accepted: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    s.on('error', () => undefined);
    if (mode === 'reset') return void s.resetAndDestroy();
    sockets.add(s);
    s.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get accepted() {
      return accepted;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A logger whose lines (already redacted, as in production) are kept for inspection. */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger({ level: 'debug', format: 'json', write: (l) => void lines.push(l) }), lines };
}

/** An unsigned JWT-shaped OIDC token: the emulator checks shape and claims, not the signature. */
export function makeOidcToken(claims: { iss?: string; sub?: string; aud?: string; exp: number }): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'RS256', kid: 'test' })}.${enc({ iat: Math.floor(Date.now() / 1000), ...claims })}.${Buffer.from(randomUUID()).toString('base64url')}`;
}

/** A real pop-core RPCClient taking its keys from `credentialsProvider` on every request. */
export function popClient(url: string, credentialsProvider: { getCredentials(): Promise<unknown> }): (action?: string) => Promise<unknown> {
  const client = new RPCClient({ credentialsProvider, endpoint: url, apiVersion: '2020-04-20', opts: { timeout: 5000 } });
  return (action = 'QuerySessionByClientId') => client.request(action, { InstanceId: 'post-cn-test', ClientId: 'GID_x@@@d1' }, { method: 'POST', formatParams: false });
}

/** A real Tencent SDK client whose `credential` is `credential`, with an explicit agent (no proxy). */
export function tencentClient(port: number, credential: { getCredential(): Promise<unknown> }): { call: () => Promise<unknown>; close(): void } {
  const agent = new http.Agent({ keepAlive: true });
  const client = new CommonClient(`127.0.0.1:${port}`, '2019-07-25', {
    credential: credential as never,
    region: 'ap-guangzhou',
    profile: { httpProfile: { endpoint: `127.0.0.1:${port}`, protocol: 'http://', agent, reqTimeout: 5 } },
  });
  return { call: () => client.request('DescribeClientConnections', { InstanceId: 'cmgo-test' }), close: () => agent.destroy() };
}

/**
 * Calls `call` back to back (with `gapMs` between) until `ms` have passed; returns how many succeeded, the codes of
 * those that failed, and the slowest call.
 */
export async function drive(call: () => Promise<unknown>, ms: number, gapMs = 20): Promise<{ ok: number; failed: string[]; slowestMs: number }> {
  const end = Date.now() + ms;
  const out = { ok: 0, failed: [] as string[], slowestMs: 0 };
  while (Date.now() < end) {
    const t0 = Date.now();
    try {
      await call();
      out.ok++;
    } catch (err) {
      const e = err as { code?: string; name?: string; message?: string };
      out.failed.push(String(e.code ?? e.name ?? e.message));
    }
    out.slowestMs = Math.max(out.slowestMs, Date.now() - t0);
    await sleep(gapMs);
  }
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond()` holds (polling), or fails after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/**
 * One test file's bookkeeping: a scratch folder holding a web identity token (`oidc.file`), the identity servers and
 * providers it opens, the log lines it keeps. After all its tests everything is closed, and no secret — the base key,
 * the token, every credential the endpoints issued — may appear in any kept line.
 */
export function credentialSuite(
  prefix: string,
  opts: { baseSecret: string; oidc: { issuer: string; audience: string; file: string } },
): { dir: string; logs: string[]; oidcToken: string; closers: Array<{ close(): void }>; identity(o: IdentityOptions): Promise<IdentityServer> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const oidcToken = makeOidcToken({ iss: opts.oidc.issuer, sub: 'system:serviceaccount:monitoring:cse', aud: opts.oidc.audience, exp: Math.floor(Date.now() / 1000) + 3600 });
  fs.writeFileSync(path.join(dir, opts.oidc.file), oidcToken);
  const servers: IdentityServer[] = [];
  const suite = {
    dir,
    logs: [] as string[],
    oidcToken,
    closers: [] as Array<{ close(): void }>,
    identity: (o: IdentityOptions) => startIdentityServer(o).then((s) => (servers.push(s), s)),
  };
  afterAll(async () => {
    for (const c of suite.closers) c.close();
    const secrets: Record<string, string> = { base: opts.baseSecret, oidc: oidcToken };
    for (const s of servers) for (const c of s.identity.store.all()) Object.assign(secrets, { [`${c.keyId}.id`]: c.keyId, [`${c.keyId}.secret`]: c.secret, [`${c.keyId}.token`]: c.token });
    expect(suite.logs.length).toBeGreaterThan(0);
    expect(findSecretLeaks(suite.logs.join('\n'), secrets)).toEqual([]);
    await Promise.all(servers.map((s) => s.close()));
  });
  return suite;
}

export interface RotationRun {
  name: string;
  events: RefreshEvent[];
  lines: string[];
  creds: { expiry: number | undefined };
}

/**
 * Each provider rode out its rotations: no call refused and calls throughout, at least four refreshes, each holding a
 * credential that expires later than the one before, none failed. Their log lines join the suite's leak check.
 */
export function expectRotations(runs: readonly RotationRun[], results: ReadonlyArray<{ ok: number; failed: string[] }>, logs: string[]): void {
  runs.forEach((r, i) => {
    logs.push(...r.lines);
    expect(results[i]!.failed, r.name).toEqual([]);
    expect(results[i]!.ok, r.name).toBeGreaterThan(150);
    const successes = r.events.filter((e) => e.result === 'success');
    expect(successes.length, r.name).toBeGreaterThanOrEqual(4);
    for (let k = 1; k < successes.length; k++) expect(successes[k]!.expiry!, r.name).toBeGreaterThan(successes[k - 1]!.expiry!);
    expect(r.events.filter((e) => e.result === 'failure'), r.name).toEqual([]);
    expect(r.creds.expiry, r.name).toBe(successes.at(-1)!.expiry);
  });
}

/** Fetches follow rotations, not calls: as many STS answers as refreshes seen, and at most one more still in flight. */
export function expectFetchesFollowRefreshes(answers: number | undefined, run: RotationRun): void {
  expect(answers! - run.events.length, run.name).toBeGreaterThanOrEqual(0);
  expect(answers! - run.events.length, run.name).toBeLessThanOrEqual(1);
}

/** What a test may set on a provider besides its config; `events` collects every refresh event. */
export type CreateExtras<E> = Pick<CredentialsOptions, 'onRefresh' | 'httpTimeoutMs' | 'recheckMs' | 'settleMs' | 'stsProxy'> & { events?: RefreshEvent[]; endpoints?: E };

/**
 * `create(cfg, extras)` for one cloud: the provider `make` builds from a raw config, logging to captured lines, named
 * after its type, with relative files in `dir`, retrying after `minRetryMs`; closed with the suite.
 */
export function providerFactory<P extends { close(): void }, E>(
  make: (cfg: Record<string, unknown>, opts: CredentialsOptions & { endpoints?: E }) => P,
  suite: { dir: string; closers: Array<{ close(): void }> },
  minRetryMs: number,
): (cfg: Record<string, unknown>, extra?: CreateExtras<E>) => { creds: P; lines: string[] } {
  return (cfg, extra = {}) => {
    const { logger, lines } = captureLogger();
    const { events, onRefresh, ...rest } = extra;
    const creds = make(cfg, {
      logger,
      account: String(cfg.type),
      configDir: suite.dir,
      minRetryMs,
      onRefresh: (e) => {
        events?.push(e);
        onRefresh?.(e);
      },
      ...rest,
    });
    suite.closers.push(creds);
    return { creds, lines };
  };
}

/**
 * An account's proxy route for STS as the transport pool computes it, through `proxyUrl` for every URL: a fetch that
 * may not go through a proxy (instance metadata, credentials URI) would be counted there if it asked.
 */
export function stsThrough(proxyUrl: string): NonNullable<CredentialsOptions['stsProxy']> {
  return (url) => {
    const route = proxyRoute(url, { proxy_url: proxyUrl }, {});
    return route.via === 'proxy' ? route : undefined;
  };
}

/** One provider per named config, each collecting its refresh events; resolves once every one holds a credential. */
export async function startRotationRuns<P extends { ready(): Promise<void>; state: string; expiry: number | undefined }>(
  configs: Record<string, Record<string, unknown>>,
  create: (cfg: Record<string, unknown>, extra: { events: RefreshEvent[] }) => { creds: P; lines: string[] },
): Promise<Array<RotationRun & { creds: P }>> {
  const runs = Object.entries(configs).map(([name, cfg]) => {
    const events: RefreshEvent[] = [];
    return { name, events, ...create(cfg, { events }) };
  });
  await Promise.all(runs.map((r) => r.creds.ready()));
  for (const r of runs) expect(r.creds.state, r.name).toBe('ok');
  return runs;
}
