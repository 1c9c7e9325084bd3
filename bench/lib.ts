// Shared helpers of the benchmark suite: child processes, free ports, HTTP timing, exposition parsing.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const QUICK = process.env.BENCH_QUICK === '1';
export const FULL = process.env.BENCH_FULL === '1';

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Child {
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `node args...` with stdout/stderr appended to `logFile`; resolves on the first stdout line matching `ready`. */
export function startNode(args: string[], logFile: string, ready?: RegExp, timeoutMs = 60_000): Promise<{ child: Child; match?: RegExpMatchArray }> {
  const out = fs.openSync(logFile, 'a');
  const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', ready ? 'pipe' : out, out] });
  const child: Child = {
    proc,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
      fs.closeSync(out);
    },
  };
  if (!ready) return Promise.resolve({ child });
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not print ${ready} within ${timeoutMs} ms (log: ${logFile})`)), timeoutMs);
    proc.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code} (log: ${logFile})`)));
    proc.stdout!.on('data', (d: Buffer) => {
      fs.appendFileSync(logFile, d);
      buf += d.toString();
      const m = ready.exec(buf);
      if (m) {
        clearTimeout(timer);
        ready.lastIndex = 0;
        buf = '';
        resolve({ child, match: m });
      }
    });
  });
}

export interface HttpResult {
  status: number;
  body: Buffer;
  bytes: number;
  ms: number;
}

/** GET with a fresh connection; the body is kept only when `keep` (big scrapes are just counted). */
export function get(url: string, headers: Record<string, string> = {}, keep = true): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get(url, { headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      let bytes = 0;
      res.on('data', (d: Buffer) => {
        bytes += d.length;
        if (keep) parts.push(d);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: keep ? Buffer.concat(parts) : Buffer.alloc(0), bytes, ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

export function post(url: string, body = ''): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(url, { method: 'POST', agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        const b = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, body: b, bytes: b.length, ms: performance.now() - t0 });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function getJson<T>(url: string): Promise<T> {
  const r = await get(url);
  return JSON.parse(r.body.toString()) as T;
}

export async function waitForStatus(url: string, status: number, timeoutMs: number, everyMs = 250): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await get(url)).status === status) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url} did not answer ${status} within ${timeoutMs / 1000}s`);
    await sleep(everyMs);
  }
}

/** First value of an unlabelled or labelled sample `name{...}` in exposition text (labels must contain `labelPart`). */
export function sample(text: string, name: string, labelPart = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith(' ') || rest.startsWith('{'))) continue;
    if (labelPart && !rest.includes(labelPart)) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

/** The exporter's own families only (everything before the first aliyun_mqtt_* line), so 1M-line scrapes parse fast. */
export function selfSection(text: string): string {
  const i = text.indexOf('# HELP aliyun_');
  return i < 0 ? text : text.slice(0, i);
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export const round = (v: number, digits = 3) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v);

/**
 * Debian's redis-server in memory on a free port, in its own empty folder: a dump.rdb lying in the working directory
 * (a replica writes one) would otherwise be loaded at start.
 */
export async function startRedis(): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cse-bench-redis-'));
  const proc = spawn(process.env.REDIS_SERVER ?? 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  proc.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const spawnFailed = new Promise<never>((_, reject) => proc.once('error', (err) => reject(new Error(`redis-server could not start (Debian package redis-server): ${err.message}`))));
  const until = Date.now() + 10_000;
  for (;;) {
    const up = await Promise.race([
      spawnFailed,
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
      }),
    ]);
    if (up) return { port, proc };
    if (Date.now() > until || proc.exitCode !== null) throw new Error('redis-server did not start (Debian package redis-server)');
    await sleep(50);
  }
}
