// The real exporter as users run it (dist/src/main.js in its own process), observed from outside: its logs, its
// scrapes, its open file descriptors and resident memory, and how long it takes to exit on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from './servers';
import { tempDir } from './harness';

const MAIN = path.resolve(__dirname, '../../dist/src/main.js');

export interface ExporterProcess {
  /** http://127.0.0.1:PORT (with a web config that serves TLS, use test/web/helpers.ts' request with port). */
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  readonly configFile: string;
  /** Everything it wrote to stderr and stdout so far. */
  output(): string;
  /** GET a path; the body, whatever the status. */
  get(p: string, headers?: Record<string, string>): Promise<{ status: number; body: string }>;
  scrape(): Promise<string>;
  openFds(): number;
  rssBytes(): number;
  /** SIGTERM; resolves with the exit code and how long the exit took. */
  terminate(): Promise<{ code: number | null; ms: number }>;
  kill(): void;
}

export async function startExporter(configYaml: string, env: Record<string, string>, flags: string[] = []): Promise<ExporterProcess> {
  if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first (npm test does)`);
  const dir = tempDir();
  const configFile = path.join(dir, 'config.yml');
  fs.writeFileSync(configFile, configYaml);
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN, `--config.file=${configFile}`, `--web.listen-address=127.0.0.1:${port}`, '--log.format=json', ...flags], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 10_000;
  while (!out.includes('"listening"')) {
    if (child.exitCode !== null) throw new Error(`the exporter exited with ${child.exitCode}: ${out}`);
    if (Date.now() > until) throw new Error(`the exporter did not listen within 10 s: ${out}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const proc = `/proc/${child.pid}`;
  const get = async (p: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${url}${p}`, { headers, signal: AbortSignal.timeout(10_000) });
    return { status: res.status, body: await res.text() };
  };
  return {
    url,
    port,
    child,
    configFile,
    output: () => out,
    get,
    scrape: async () => (await get('/metrics')).body,
    openFds: () => fs.readdirSync(`${proc}/fd`).length,
    rssBytes: () => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`${proc}/status`, 'utf8'))![1]) * 1024,
    terminate() {
      const started = Date.now();
      return new Promise((resolve) => {
        if (child.exitCode !== null) return resolve({ code: child.exitCode, ms: 0 });
        child.once('exit', (code) => resolve({ code, ms: Date.now() - started }));
        child.kill('SIGTERM');
      });
    },
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** Runs the exporter once to its exit (--config.check, --web.config.check, a refused start): exit code and output. */
export function runExporter(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout!.on('data', (d) => (out += d));
    c.stderr!.on('data', (d) => (err += d));
    c.once('exit', (code) => resolve({ code, out, err }));
  });
}

/** Polls `probe` until it returns true; resolves with the time it took, or rejects naming `what`. */
export async function waitFor(what: string, probe: () => Promise<boolean> | boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
