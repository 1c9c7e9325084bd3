// Forward proxies and a TLS front for the proxy tests, all on 127.0.0.1: one proxy server that serves absolute-form
// requests (a plain forward proxy) and CONNECT tunnels, optionally with Basic credentials, counting what passes; a
// black hole that accepts connections and never answers; and an HTTPS front that terminates TLS for the emulator.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';
import { issue, makeCa } from '../web/pki';
import { tempDir } from './harness';

export interface TestProxy {
  /** http://127.0.0.1:PORT (with user:password@ when it asks for credentials). */
  url: string;
  port: number;
  /** Absolute-form requests forwarded, by the action they carried (x-acs-action / x-tc-action, else the path). */
  forwarded: Record<string, number>;
  /** CONNECT tunnels opened, by the authority asked for. */
  tunnels: Record<string, number>;
  /** Requests and CONNECTs refused for missing or wrong credentials. */
  refused: number;
  /** Every Proxy-Authorization header seen. */
  authorizations: string[];
  close(): Promise<void>;
}

export interface ProxyOptions {
  /** Ask for these Basic credentials (407 otherwise). */
  credentials?: { user: string; password: string };
  /** Where a host:port asked for is really reached (default: 127.0.0.1, same port), so test hosts need no DNS. */
  route?: (host: string, port: number) => { host: string; port: number };
  /** Refuse every request and CONNECT with this status (a proxy's policy), after checking credentials. */
  refuseWith?: number;
  /** Serve over TLS (an https:// proxy) with this certificate. */
  tls?: { cert: string; key: string };
}

const toLoopback = (_host: string, port: number) => ({ host: '127.0.0.1', port });

function closeWhenTestEnds(close: () => Promise<void>): void {
  try {
    onTestFinished(close);
  } catch {
    // Not inside a test: the suite closes it.
  }
}

/** Listens on a free loopback port; closing destroys `sockets` first, and happens when the test ends. */
async function listenLocally(server: net.Server, sockets: Set<net.Socket>): Promise<{ port: number; close(): Promise<void> }> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  closeWhenTestEnds(close);
  return { port: (server.address() as AddressInfo).port, close };
}

function count(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

export async function startProxy(opts: ProxyOptions = {}): Promise<TestProxy> {
  const route = opts.route ?? toLoopback;
  const expected = opts.credentials ? `Basic ${Buffer.from(`${opts.credentials.user}:${opts.credentials.password}`).toString('base64')}` : undefined;
  const sockets = new Set<net.Socket>();
  const state = { forwarded: {} as Record<string, number>, tunnels: {} as Record<string, number>, refused: 0, authorizations: [] as string[] };
  const allowed = (header: string | undefined): boolean => {
    if (header !== undefined) state.authorizations.push(header);
    if (expected === undefined || header === expected) return true;
    state.refused++;
    return false;
  };
  const handler: http.RequestListener = (req, res) => {
    if (!allowed(req.headers['proxy-authorization'])) {
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test"', 'content-type': 'text/plain' }).end('proxy credentials required');
      return;
    }
    if (opts.refuseWith) {
      res.writeHead(opts.refuseWith).end('refused by policy');
      return;
    }
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end('absolute-form requests only');
      return;
    }
    count(state.forwarded, String(req.headers['x-acs-action'] ?? req.headers['x-tc-action'] ?? target.pathname));
    const to = route(target.hostname, Number(target.port || 80));
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const upstream = http.request({ host: to.host, port: to.port, method: req.method, path: `${target.pathname}${target.search}`, headers, agent: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end('upstream unreachable'));
    req.pipe(upstream);
  };
  const server = opts.tls ? https.createServer(opts.tls, handler) : http.createServer(handler);
  server.on(opts.tls ? 'secureConnection' : 'connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    if (!allowed(req.headers['proxy-authorization'])) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (opts.refuseWith) {
      client.end(`HTTP/1.1 ${opts.refuseWith} Refused By Policy\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    count(state.tunnels, req.url ?? '');
    const m = /^(.*):(\d+)$/.exec(req.url ?? '');
    if (!m) {
      client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const to = route(m[1].replace(/^\[(.*)\]$/, '$1'), Number(m[2]));
    const upstream = net.connect(to.port, to.host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.once('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
    client.on('error', () => upstream.destroy());
    client.once('close', () => upstream.destroy());
  });
  const { port, close } = await listenLocally(server, sockets);
  const userinfo = opts.credentials ? `${encodeURIComponent(opts.credentials.user)}:${encodeURIComponent(opts.credentials.password)}@` : '';
  return {
    url: `${opts.tls ? 'https' : 'http'}://${userinfo}127.0.0.1:${port}`,
    port,
    get forwarded() {
      return state.forwarded;
    },
    get tunnels() {
      return state.tunnels;
    },
    get refused() {
      return state.refused;
    },
    get authorizations() {
      return state.authorizations;
    },
    close,
  };
}

export interface BlackHole {
  url: string;
  /** Connections accepted and still open. */
  readonly open: number;
  /** Connections accepted in all. */
  readonly accepted: number;
  close(): Promise<void>;
}

/** Accepts connections and never says a word: a proxy that has hung. */
export async function startBlackHole(): Promise<BlackHole> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => undefined);
    // Read (and drop) what arrives, or the client's FIN would never be seen and the socket never close.
    s.resume();
    s.once('close', () => sockets.delete(s));
  });
  const { port, close } = await listenLocally(server, sockets);
  return {
    url: `http://127.0.0.1:${port}`,
    get open() {
      return sockets.size;
    },
    get accepted() {
      return accepted;
    },
    close,
  };
}

export interface TlsFront {
  port: number;
  /** The CA that signed the front's certificate (PEM file): trust it to reach the front. */
  caFile: string;
  /** Another certificate from the same CA (PEM contents), e.g. for an https:// proxy at 127.0.0.1. */
  issue(name: string, sans: string[]): { cert: string; key: string };
  /** Requests served, by action. */
  served: Record<string, number>;
  close(): Promise<void>;
}

/**
 * HTTPS in front of a plain-HTTP upstream (the emulator), its certificate valid for `names`, signed by a CA made for
 * the test with openssl.
 */
export async function startTlsFront(upstream: string, names: string[]): Promise<TlsFront> {
  const dir = tempDir();
  const ca = makeCa(dir, 'front-ca');
  const leaf = issue(dir, ca, 'front', { sans: names.map((n) => `DNS:${n}`), usage: 'serverAuth' });
  const up = new URL(upstream);
  const served: Record<string, number> = {};
  const server = https.createServer({ cert: fs.readFileSync(leaf.cert), key: fs.readFileSync(leaf.key) }, (req, res) => {
    count(served, String(req.headers['x-acs-action'] ?? req.headers['x-tc-action'] ?? req.url));
    const forward = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers, agent: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.writeHead(502).end());
    req.pipe(forward);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  closeWhenTestEnds(close);
  return {
    port: (server.address() as AddressInfo).port,
    caFile: path.resolve(ca.cert),
    served,
    close,
    issue: (name, sans) => {
      const c = issue(dir, ca, name, { sans, usage: 'serverAuth' });
      return { cert: fs.readFileSync(c.cert, 'utf8'), key: fs.readFileSync(c.key, 'utf8') };
    },
  };
}
