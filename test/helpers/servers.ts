// Real servers the tests start for themselves on free loopback ports (never the machine's standard ports),
// and the small network helpers they need.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

/** A port that was free a moment ago (the OS picks it; a race with another process is possible but rare). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Resolves once `port` accepts connections; rejects after `timeoutMs`, naming `what` and, if it exited, how. */
async function waitForPort(what: string, port: number, child?: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await canConnect(port))) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode} before listening on port ${port}`);
    if (Date.now() > until) throw new Error(`${what} did not listen on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM, then wait for the exit. */
async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

export interface RedisServer {
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** PEM files for a TLS-only redis-server; it asks clients for a certificate signed by `ca` (its default). */
export interface RedisTlsFiles {
  cert: string;
  key: string;
  ca: string;
}

/**
 * Starts Debian's redis-server in memory only, on a free port (the machine's own Redis is left alone) or on `port`
 * (a restart where clients already point); with `tls`, the port speaks TLS only.
 */
export async function startRedisServer(opts: { port?: number; tls?: RedisTlsFiles; bin?: string } = {}): Promise<RedisServer> {
  const bin = opts.bin ?? process.env.REDIS_SERVER ?? 'redis-server';
  const port = opts.port ?? (await freePort());
  const t = opts.tls;
  const listen = t ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', t.cert, '--tls-key-file', t.key, '--tls-ca-cert-file', t.ca] : ['--port', String(port)];
  const child = spawn(bin, [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const failed = new Promise<never>((_, reject) => child.once('error', (err) => reject(new Error(`${bin} could not start (Debian package redis-server): ${err.message}`))));
  await Promise.race([waitForPort(bin, port, child), failed]);
  return { port, process: child, stop: () => stopChild(child) };
}
