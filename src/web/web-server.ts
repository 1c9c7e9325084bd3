// The exporter's HTTP(S) server under a web config file: TLS and client certificate checks, then per request the rate
// limit, the configured headers and basic auth before the handler; the file is re-read whenever it or a file it names changes.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import type tls from 'node:tls';
import type { Logger } from '../util/log';
import { BasicAuth } from './basic-auth';
import { fingerprintFiles, nodeTlsOptions, readWebConfig, type WebConfig, type WebConfigRead } from './web-config';

export interface WebServerOptions {
  /** The --web.config.file; without one the server is plain HTTP with no checks, as in the toolkit. */
  webConfigFile?: string;
  handler: http.RequestListener;
  logger: Logger;
  /** After every reload attempt, e.g. to set a config-reload-success metric. */
  onReload?(ok: boolean, error?: string): void;
  /** Paths (exact, query ignored) answered without basic auth, e.g. a load balancer's health check. None by default. */
  unauthenticatedPaths?: readonly string[];
  /** How often the files are re-read in case a change raised no file event (default 10 s). */
  pollIntervalMs?: number;
}

export interface WebServer {
  /** Whether this server speaks HTTPS; fixed for its lifetime. */
  readonly tls: boolean;
  /** The configuration in force (undefined without a web config file). */
  config(): WebConfig | undefined;
  listen(host: string, port: number): Promise<AddressInfo>;
  /** Re-reads the file now; a bad file leaves the configuration in force as it was. */
  reloadNow(): Promise<{ ok: boolean; error?: string }>;
  close(): Promise<void>;
}

/** Throws the file's WebConfigError when it is invalid at startup (like the toolkit, which then does not serve at all). */
export function createWebServer(opts: WebServerOptions): WebServer {
  if (!opts.webConfigFile) return plainServer(opts);
  const file = opts.webConfigFile;
  const log = opts.logger;
  const first = readWebConfig(file);
  if (first.error) throw first.error;

  let current = first.config!;
  let watchedFiles = first.files;
  let lastSeen = first.fingerprint;
  const auth = new BasicAuth();
  auth.setUsers(current.users);
  let limiter = current.rateLimit && new TokenBucket(current.rateLimit.intervalMs, current.rateLimit.burst);
  const unauthenticated = new Set(opts.unauthenticatedPaths ?? []);

  const guard: http.RequestListener = (req, res) => {
    // The toolkit's order: the limit first (so it also caps failed logins), then headers, then authentication.
    if (limiter && !limiter.take()) return plainText(res, 429, 'Too Many Requests\n');
    for (const [name, value] of Object.entries(current.headers)) res.setHeader(name, value);
    if (!auth.enabled || unauthenticated.has((req.url ?? '/').split('?')[0])) return opts.handler(req, res);
    auth
      .check(req.headers.authorization)
      .then((ok) => {
        if (ok) return opts.handler(req, res);
        res.setHeader('WWW-Authenticate', 'Basic');
        plainText(res, 401, 'Unauthorized\n');
      })
      .catch((err: unknown) => {
        log.error({ err }, 'HTTP request failed after basic auth');
        if (!res.headersSent) plainText(res, 500, 'Internal Server Error\n');
        else res.destroy();
      });
  };

  let server: http.Server | https.Server;
  if (current.tls) {
    const o = nodeTlsOptions(current.tls);
    // rejectUnauthorized stays false: every client_auth_type is enforced below, on the established connection, because
    // Node refuses an unverified certificate without a trace, and every refusal should be logged.
    const s = https.createServer({ ...o.context, requestCert: o.requestCert, rejectUnauthorized: false }, guard);
    // Prepended so a refused connection is gone before the HTTP layer reads a byte from it.
    s.prependListener('secureConnection', (socket: tls.TLSSocket) => {
      const refusal = clientCertRefusal(socket, current);
      if (!refusal) return;
      // Logged like Go's "http: TLS handshake error": a misconfigured scraper shows up here, not only as a down target.
      log.warn({ remote: socket.remoteAddress, reason: refusal }, 'TLS client refused');
      socket.destroy();
    });
    s.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      log.warn({ remote: socket.remoteAddress, reason: err.code ?? err.message }, 'TLS handshake failed');
    });
    server = s;
  } else {
    server = http.createServer(guard);
  }
  const sockets = trackSockets(server);
  logConfig(log, current, 'web configuration loaded');

  function applyRead(read: WebConfigRead): { ok: boolean; error?: string } {
    watchedFiles = read.files;
    lastSeen = read.fingerprint;
    watchDirectories();
    const fail = (error: string) => {
      log.error({ file, err: error }, 'web configuration reload failed; the previous one stays in force');
      opts.onReload?.(false, error);
      return { ok: false, error };
    };
    if (read.error) return fail(read.error.message);
    const next = read.config!;
    if (!!next.tls !== !!current.tls) {
      return fail(`${file}: ${next.tls ? 'tls_server_config now names a certificate' : 'tls_server_config no longer names a certificate'}: switching between HTTP and HTTPS needs a restart`);
    }
    if (next.tls) {
      const o = nodeTlsOptions(next.tls);
      try {
        (server as https.Server).setSecureContext(o.context);
      } catch (err) {
        return fail(`${file}: Node refused the new TLS settings: ${(err as Error).message}`);
      }
      // Node reads this per new connection (it is not part of the secure context).
      Object.assign(server, { requestCert: o.requestCert });
    }
    if (!sameRateLimit(current.rateLimit, next.rateLimit)) limiter = next.rateLimit && new TokenBucket(next.rateLimit.intervalMs, next.rateLimit.burst);
    auth.setUsers(next.users);
    current = next;
    logConfig(log, current, 'web configuration reloaded');
    opts.onReload?.(true);
    return { ok: true };
  }

  // Change detection: file events on the directories (editors and Kubernetes replace files by renaming, so watching the
  // files themselves would miss them), a poll for whatever raises no event, and a look on new connections, at most once a
  // second, so a rotated certificate is served soon after it lands. A content fingerprint decides whether anything changed.
  let closed = false;
  let checking: Promise<void> | undefined;
  let lastCheck = Date.now();
  let debounce: NodeJS.Timeout | undefined;
  const watchers = new Map<string, fs.FSWatcher>();

  function checkForChange(): Promise<void> {
    if (closed) return Promise.resolve();
    checking ??= (async () => {
      lastCheck = Date.now();
      try {
        if ((await fingerprintFiles(watchedFiles)) !== lastSeen && !closed) applyRead(readWebConfig(file));
      } catch (err) {
        log.error({ err, file }, 'checking the web configuration for changes failed');
      } finally {
        checking = undefined;
      }
    })();
    return checking;
  }

  function watchDirectories(): void {
    const dirs = new Set(watchedFiles.map((f) => path.dirname(f)));
    for (const [dir, w] of watchers) {
      if (!dirs.has(dir)) {
        w.close();
        watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (watchers.has(dir)) continue;
      try {
        const w = fs.watch(dir, { persistent: false }, () => {
          clearTimeout(debounce);
          debounce = setTimeout(() => void checkForChange(), 100);
        });
        w.on('error', () => {
          w.close();
          watchers.delete(dir);
        });
        watchers.set(dir, w);
      } catch {
        // A directory that cannot be watched (gone, no inotify slots) is still covered by the poll.
      }
    }
  }
  watchDirectories();
  const poll = setInterval(() => void checkForChange(), opts.pollIntervalMs ?? 10_000);
  poll.unref();
  server.on('connection', () => {
    if (Date.now() - lastCheck >= 1000) void checkForChange();
  });

  return {
    tls: !!current.tls,
    config: () => current,
    listen: (host, port) => listen(server, host, port),
    async reloadNow() {
      await checking;
      return applyRead(readWebConfig(file));
    },
    async close() {
      closed = true;
      clearInterval(poll);
      clearTimeout(debounce);
      for (const w of watchers.values()) w.close();
      watchers.clear();
      await checking;
      await Promise.all([closeServer(server, sockets), auth.close()]);
    },
  };
}

function plainServer(opts: WebServerOptions): WebServer {
  const server = http.createServer(opts.handler);
  const sockets = trackSockets(server);
  opts.logger.info('no web configuration file: plain HTTP without authentication');
  return {
    tls: false,
    config: () => undefined,
    listen: (host, port) => listen(server, host, port),
    reloadNow: async () => ({ ok: true }),
    close: () => closeServer(server, sockets),
  };
}

/** Why Go's crypto/tls would have refused this client under the config's client_auth_type and client_allowed_sans. */
function clientCertRefusal(socket: tls.TLSSocket, config: WebConfig): string | undefined {
  const t = config.tls;
  if (!t) return undefined;
  const cert = socket.getPeerX509Certificate();
  switch (t.clientAuth) {
    case 'RequireAnyClientCert':
      if (!cert) return 'no client certificate';
      break;
    case 'VerifyClientCertIfGiven':
      if (cert && !socket.authorized) return `client certificate not verified: ${socket.authorizationError}`;
      break;
    case 'RequireAndVerifyClientCert':
      if (!cert) return 'no client certificate';
      if (!socket.authorized) return `client certificate not verified: ${socket.authorizationError}`;
      break;
    default:
      break;
  }
  if (t.clientAllowedSans) {
    // The toolkit's SAN check also fails a client that sent no certificate at all.
    if (!cert) return 'no client certificate to match client_allowed_sans';
    const sans = subjectAltNames(cert.subjectAltName);
    if (!sans.some((s) => t.clientAllowedSans!.includes(s))) return `no allowed SAN in the client certificate (it has: ${sans.join(', ') || 'none'})`;
  }
  return undefined;
}

/**
 * The DNS, IP, email and URI names of a certificate, spelled as Go's x509 package gives them (so that lists written for
 * the toolkit match): Node prints IPv6 uncompressed and upper case, Go compressed and lower case.
 */
function subjectAltNames(text: string | undefined): string[] {
  const out: string[] = [];
  if (!text) return out;
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      // Node JSON-quotes a value that holds a comma or a quote.
      let k = colon + 2;
      while (k < text.length && text[k] !== '"') k += text[k] === '\\' ? 2 : 1;
      value = JSON.parse(text.slice(colon + 1, k + 1)) as string;
      end = k + 1;
    } else {
      const sep = text.indexOf(', ', colon + 1);
      end = sep < 0 ? text.length : sep;
      value = text.slice(colon + 1, end);
    }
    if (type === 'IP Address') out.push(goIpString(value));
    else if (type === 'DNS' || type === 'email' || type === 'URI') out.push(value);
    i = end + 2;
  }
  return out;
}

function goIpString(ip: string): string {
  if (!ip.includes(':')) return ip;
  let compressed: string;
  try {
    compressed = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip;
  }
  // Go prints an IPv4-mapped address as plain IPv4.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(compressed);
  if (!mapped) return compressed;
  const [hi, lo] = [parseInt(mapped[1], 16), parseInt(mapped[2], 16)];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** golang.org/x/time/rate's limiter as the toolkit uses it: `burst` tokens, one more every interval, one per request. */
class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly intervalMs: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) / this.intervalMs);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

function sameRateLimit(a: WebConfig['rateLimit'], b: WebConfig['rateLimit']): boolean {
  return a?.intervalMs === b?.intervalMs && a?.burst === b?.burst;
}

function logConfig(log: Logger, c: WebConfig, msg: string): void {
  log.info(
    {
      file: c.file,
      tls: !!c.tls,
      client_auth_type: c.tls?.clientAuth,
      cert_sha256: c.tls?.certFingerprint256,
      cert_not_after: c.tls?.certNotAfter.toISOString(),
      basic_auth_users: c.users.size,
      rate_limit: c.rateLimit ? `burst ${c.rateLimit.burst}, 1 request per ${c.rateLimit.intervalMs}ms` : 'off',
    },
    msg,
  );
  for (const w of c.warnings) log.warn({ file: c.file }, `web configuration: ${w}`);
}

function plainText(res: http.ServerResponse, status: number, body: string): void {
  // As Go's http.Error writes it.
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
  res.end(body);
}

function listen(server: http.Server | https.Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** A scrape still streaming when the server closes gets this long to finish before its connection is ended. */
const CLOSE_LINGER_MS = 100;

/**
 * Every connection of the server from its first byte, so that close() can end them all: for HTTPS, Node's
 * closeAllConnections() knows only those that finished their TLS handshake, and server.close() waits for the others
 * (a client that connects and sends nothing holds it for the 120 s handshake timeout). Also sets the keep-alive
 * timeout above common scrape intervals (up to 60 s), so that Prometheus keeps its connection between scrapes rather
 * than making a new one, and a new TLS handshake, for each (Node's default is 5 s; Go's servers keep connections open).
 */
function trackSockets(server: http.Server | https.Server): Set<Socket> {
  server.keepAliveTimeout = 65_000;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return sockets;
}

/** Stops accepting, ends idle connections at once and every other one CLOSE_LINGER_MS later; resolves once all are gone. */
function closeServer(server: http.Server | https.Server, sockets: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => {
      for (const socket of sockets) socket.destroy();
    }, CLOSE_LINGER_MS).unref();
  });
}
