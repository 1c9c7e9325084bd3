// Agents that send their requests through a forward proxy: https:// endpoints through a CONNECT tunnel (TLS stays end
// to end with the cloud, which the proxy cannot read), http:// endpoints as absolute-form requests (what every forward
// proxy serves; many refuse CONNECT to port 80).
//
// Written here rather than taken from https-proxy-agent: its CONNECT handshake has no timeout and its socket is out of
// the request's reach until the tunnel is up, so a proxy that accepts and never answers would keep a socket open past
// the exchange's timer. Here a request destroyed during the handshake (http-guard.ts does that at its deadline or on
// abort) destroys the tunnel's socket with it.
import type http from 'node:http';
import https from 'node:https';
import httpModule from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { proxyCredentials, proxyPort } from '../config/proxy-url';
import type { ProxyEndpoint } from './proxy';

export type ProxyFailureCode = 'ProxyAuthRequired' | 'ProxyRefused' | 'ProxyUnreachable';

/** A failure of the proxy, not of the cloud: its message names the proxy as scheme://host:port, never its credentials. */
export class ProxyError extends Error {
  constructor(
    readonly code: ProxyFailureCode,
    message: string,
    /** The proxy's HTTP status, when it answered. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ProxyError';
  }

  /** Worth another attempt: the proxy could not be reached or failed upstream (5xx); a 407 or a policy refusal would repeat. */
  get retryable(): boolean {
    return this.code === 'ProxyUnreachable' || (this.code === 'ProxyRefused' && (this.status === undefined || this.status >= 500));
  }
}

/** A CONNECT answer is a status line and a few headers; more than this is not one. */
const MAX_CONNECT_ANSWER_BYTES = 16 * 1024;

/** Node's Agent methods used here; they are not in @types/node. */
interface AgentInternals {
  addRequest(req: http.ClientRequest, options: RequestOptions): void;
  createSocket(req: http.ClientRequest, options: RequestOptions, cb: (err: Error | null, socket?: net.Socket) => void): void;
  createConnection(options: RequestOptions, cb: (err: Error | null, socket?: net.Socket) => void): net.Socket | undefined;
}
type RequestOptions = tls.ConnectionOptions & { host?: string; hostname?: string; port?: number | string; path?: string | null; servername?: string };

/** An agent for `protocol` endpoints whose every connection goes through `proxy`. */
export function proxiedAgent(protocol: 'http:' | 'https:', opts: http.AgentOptions, proxy: ProxyEndpoint): http.Agent {
  return protocol === 'https:' ? tunnellingAgent(opts, proxy) : forwardingAgent(opts, proxy);
}

/** Requests sent as absolute-form to the proxy, by the forwarding agent: their failures before the proxy answered are the proxy's. */
const forwarded = new WeakMap<http.ClientRequest, { proxy: ProxyEndpoint; reached: boolean }>();

/**
 * The ProxyError a failed proxied request stands for, if the proxy caused it: a tunnel's own error, or a connection
 * error before the forwarding proxy was reached. Undefined for the cloud's failures.
 */
export function proxyFailureOf(req: http.ClientRequest, err: unknown): ProxyError | undefined {
  if (err instanceof ProxyError) return err;
  const state = forwarded.get(req);
  if (!state || state.reached) return undefined;
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? (err as Error | undefined)?.message ?? String(err);
  return new ProxyError('ProxyUnreachable', `cannot reach proxy ${state.proxy.display}: ${code}`);
}

/** A 407 answer to an absolute-form request is the proxy's: the cloud never asks for proxy credentials. */
export function proxyAnswerFailure(req: http.ClientRequest, status: number | undefined): ProxyError | undefined {
  const state = forwarded.get(req);
  if (!state || status !== 407) return undefined;
  return new ProxyError('ProxyAuthRequired', `proxy ${state.proxy.display} refused its credentials (407 Proxy Authentication Required)`, 407);
}

function authorization(proxy: ProxyEndpoint): string | undefined {
  const c = proxyCredentials(proxy.url);
  return c ? `Basic ${Buffer.from(`${c.user}:${c.password}`).toString('base64')}` : undefined;
}

function proxyHost(proxy: ProxyEndpoint): string {
  return proxy.url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** A connection to the proxy itself: TLS for an https:// proxy, checked against the system's CAs (and NODE_EXTRA_CA_CERTS). */
function connectToProxy(proxy: ProxyEndpoint): net.Socket {
  const host = proxyHost(proxy);
  const port = proxyPort(proxy.url);
  if (proxy.url.protocol === 'https:') return tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'] });
  return net.connect({ host, port });
}

function authority(host: string, port: number | string | undefined, defaultPort: number): string {
  return `${net.isIP(host) === 6 ? `[${host}]` : host}:${port ?? defaultPort}`;
}

interface Tunnel {
  /** Destroys the connection if the tunnel is not up yet; the callback is then never called. */
  abort(): void;
}

/** CONNECT `target` through the proxy; `done` gets the raw tunnel socket (before any TLS) or a ProxyError. */
function openTunnel(proxy: ProxyEndpoint, target: string, done: (err: ProxyError | undefined, socket?: net.Socket) => void): Tunnel {
  const conn = connectToProxy(proxy);
  let settled = false;
  let connected = false;
  let answer = Buffer.alloc(0);
  const settle = (err: ProxyError | undefined): void => {
    if (settled) return;
    settled = true;
    conn.removeListener('readable', onReadable);
    conn.removeListener('error', onError);
    conn.removeListener('close', onClose);
    if (err) {
      conn.destroy();
      done(err);
    } else done(undefined, conn);
  };
  const onError = (err: NodeJS.ErrnoException): void =>
    settle(
      connected
        ? new ProxyError('ProxyRefused', `proxy ${proxy.display} failed during CONNECT ${target}: ${err.code ?? err.message}`)
        : new ProxyError('ProxyUnreachable', `cannot reach proxy ${proxy.display}: ${err.code ?? err.message}`),
    );
  const onClose = (): void => settle(new ProxyError('ProxyRefused', `proxy ${proxy.display} closed the connection before answering CONNECT ${target}`));
  const onReadable = (): void => {
    for (let chunk = conn.read() as Buffer | null; chunk !== null; chunk = conn.read() as Buffer | null) answer = Buffer.concat([answer, chunk]);
    const end = answer.indexOf('\r\n\r\n');
    if (end < 0) {
      if (answer.length > MAX_CONNECT_ANSWER_BYTES) settle(new ProxyError('ProxyRefused', `proxy ${proxy.display} answered CONNECT ${target} with no end of headers in ${MAX_CONNECT_ANSWER_BYTES} bytes`));
      return;
    }
    // Anything after the headers is the cloud's, already: give it back to the stream TLS will read.
    if (end + 4 < answer.length) conn.unshift(answer.subarray(end + 4));
    const statusLine = answer.subarray(0, answer.indexOf('\r\n')).toString('latin1');
    const m = /^HTTP\/1\.[01] (\d{3})\b ?(.*)$/.exec(statusLine);
    if (!m) return settle(new ProxyError('ProxyRefused', `proxy ${proxy.display} answered CONNECT ${target} with something that is not HTTP`));
    const status = Number(m[1]);
    if (status >= 200 && status < 300) return settle(undefined);
    const reason = m[2].replace(/[^\x20-\x7e]/g, '').slice(0, 80);
    settle(
      status === 407
        ? new ProxyError('ProxyAuthRequired', `proxy ${proxy.display} refused its credentials (407 ${reason || 'Proxy Authentication Required'})`, status)
        : new ProxyError('ProxyRefused', `proxy ${proxy.display} refused CONNECT ${target}: ${status} ${reason}`.trimEnd(), status),
    );
  };
  conn.once(proxy.url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
    connected = true;
    const auth = authorization(proxy);
    conn.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth ? `Proxy-Authorization: ${auth}\r\n` : ''}\r\n`);
  });
  conn.on('readable', onReadable);
  conn.on('error', onError);
  conn.on('close', onClose);
  return {
    abort: () => {
      if (settled) return;
      settled = true;
      conn.destroy();
    },
  };
}

/**
 * ClientRequest.destroy() before the request has a socket only sets a flag, with no event to listen for: the tunnel
 * being built for it learns of it here, so a destroyed request never leaves a handshake (and its socket) behind.
 */
function abortWithRequest(req: http.ClientRequest, tunnel: Tunnel): void {
  if (req.destroyed) return tunnel.abort();
  const destroy = req.destroy;
  req.destroy = function (this: http.ClientRequest, err?: Error) {
    tunnel.abort();
    return destroy.call(this, err);
  };
}

function tunnellingAgent(opts: http.AgentOptions, proxy: ProxyEndpoint): http.Agent {
  const agent = new https.Agent(opts);
  const internal = agent as unknown as AgentInternals;
  // createConnection is not told which request it serves; createSocket is, and calls it synchronously.
  let serving: http.ClientRequest | undefined;
  const createSocket = internal.createSocket.bind(agent);
  internal.createSocket = (req, options, cb) => {
    serving = req;
    try {
      createSocket(req, options, cb);
    } finally {
      serving = undefined;
    }
  };
  internal.createConnection = (options, cb) => {
    const host = options.host ?? options.hostname ?? 'localhost';
    const target = authority(host, options.port, 443);
    const tunnel = openTunnel(proxy, target, (err, conn) => {
      if (err) return cb(err);
      // `path` would make tls.connect open a local socket file; the tunnel is the connection.
      cb(null, tls.connect({ ...options, path: undefined, socket: conn, servername: options.servername || (net.isIP(host) ? undefined : host) }));
    });
    if (serving) abortWithRequest(serving, tunnel);
    return undefined;
  };
  return agent;
}

function forwardingAgent(opts: http.AgentOptions, proxy: ProxyEndpoint): http.Agent {
  const agent = new httpModule.Agent(opts);
  const internal = agent as unknown as AgentInternals;
  const host = proxyHost(proxy);
  const port = proxyPort(proxy.url);
  const auth = authorization(proxy);
  const addRequest = internal.addRequest.bind(agent);
  internal.addRequest = (req, options) => {
    const target = authority(options.host ?? options.hostname ?? 'localhost', options.port, 80);
    // Headers are written at the first write or end, after this: the request line can still change.
    req.path = `http://${target}${req.path}`;
    if (auth) req.setHeader('proxy-authorization', auth);
    const state = { proxy, reached: false };
    forwarded.set(req, state);
    req.once('socket', (socket: net.Socket) => {
      if (!socket.connecting) state.reached = true;
      else socket.once(proxy.url.protocol === 'https:' ? 'secureConnect' : 'connect', () => (state.reached = true));
    });
    // Pooled by the proxy's address: one keep-alive connection serves any endpoint.
    addRequest(req, { ...options, host, hostname: host, port, servername: undefined });
  };
  if (proxy.url.protocol === 'https:') {
    internal.createConnection = () => tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'] });
  }
  return agent;
}
