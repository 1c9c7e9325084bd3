// Real servers the tests start for themselves on free loopback ports (never the machine's standard ports),
// and the small network helpers they need.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

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

/** Spawns Debian's redis-server with `args` and resolves once it listens on `port`. */
async function spawnRedis(args: string[], port: number, bin = process.env.REDIS_SERVER ?? 'redis-server'): Promise<RedisServer> {
  const child = spawn(bin, args, { stdio: 'ignore' });
  const failed = new Promise<never>((_, reject) => child.once('error', (err) => reject(new Error(`${bin} could not start (Debian package redis-server): ${err.message}`))));
  await Promise.race([waitForPort(bin, port, child), failed]);
  return { port, process: child, stop: () => stopChild(child) };
}

/**
 * Starts Debian's redis-server in memory only, on a free port (the machine's own Redis is left alone) or on `port`
 * (a restart where clients already point); with `tls`, the port speaks TLS only.
 */
export async function startRedisServer(opts: { port?: number; tls?: RedisTlsFiles; bin?: string; args?: string[] } = {}): Promise<RedisServer> {
  const port = opts.port ?? (await freePort());
  const t = opts.tls;
  const listen = t ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', t.cert, '--tls-key-file', t.key, '--tls-ca-cert-file', t.ca] : ['--port', String(port)];
  // Its own empty folder: a replica writes the RDB its primary sends (dump.rdb, even without `save`), and a server
  // loads a dump.rdb it finds at start; in the working directory one test's data would reach the next test's Redis.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cse-redis-'));
  const r = await spawnRedis([...listen, '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', ...(opts.args ?? [])], port, opts.bin);
  r.process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return r;
}

/**
 * A Redis Sentinel (Debian's redis-server in sentinel mode) watching the primary at 127.0.0.1:`primaryPort` as
 * master group `name`, quorum 1, declaring it down after `downAfterMs`. Its config file lives in `dir` (a sentinel
 * rewrites it).
 */
export async function startSentinel(o: { dir: string; name: string; primaryPort: number; downAfterMs: number }): Promise<RedisServer> {
  const port = await freePort();
  const conf = path.join(o.dir, `sentinel-${port}.conf`);
  fs.writeFileSync(
    conf,
    [`port ${port}`, 'bind 127.0.0.1', `dir ${o.dir}`, `sentinel monitor ${o.name} 127.0.0.1 ${o.primaryPort} 1`, `sentinel down-after-milliseconds ${o.name} ${o.downAfterMs}`, `sentinel failover-timeout ${o.name} 10000`].join('\n') + '\n',
  );
  return spawnRedis([conf, '--sentinel'], port);
}
