// Figure 6: limiters shared by several processes through Redis, judged by arrival times at a local HTTP server: ours
// (RedisWindowLimiter) side by side with rate-limiter-flexible and Bottleneck clustering, and ours at 1,000/s.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { WorkerConfig } from './cluster-worker';
import { defaultGuardMs } from '../src/cloud/rate-limiter';
import { log, percentile, round, sleep, startRedis, ROOT } from './lib';

export interface ClusterLimiterFigure {
  limiter: string;
  config: string;
  processes: number;
  loops_per_process: number;
  rate: number;
  measured_seconds: number;
  /** Most arrivals at the server in any sliding 1-second window over the whole run (> rate: over quota). */
  busiest_window: number;
  /** Arrivals per second over the measured span (after a 1 s warm-up). */
  throughput: number;
  ratio: number;
  /** Round trip of one grant request (ours: the script; rate-limiter-flexible: consume()), ms. */
  grant_p50_ms: number | null;
  grant_p99_ms: number | null;
  /** From a call's start in its process to its arrival at the server: the guard covers this. */
  arrival_lag_p99_ms: number;
  arrival_lag_max_ms: number;
  /** Arrivals later than the default margin (20 ms at these rates) after their start: the guarantee assumes none. */
  arrivals_late_over_margin: number;
  /** Ours: grant requests per call made (1 = one round trip per call; more when a grant was given back or "not yet"). */
  round_trips_per_call?: number;
  error?: string;
}

interface Case {
  limiter: string;
  config: string;
  mode: WorkerConfig['mode'];
  processes: number;
  loops: number;
  rate: number;
  serverLatencyMs: number;
  heartbeatMs?: number;
}

function busiest(times: number[]): number {
  const s = [...times].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < s.length; hi++) {
    while (s[hi] - s[lo] >= 1000) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

interface WorkerHandle {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  next(ev: string, timeoutMs: number): Promise<Record<string, unknown>>;
}

function startWorker(config: WorkerConfig): WorkerHandle {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/bench/cluster-worker.js'), JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  const next = async (ev: string, timeoutMs: number) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = lines.find((l) => l.ev === ev);
      if (found) return found;
      const fatal = lines.find((l) => l.ev === 'fatal');
      if (fatal) throw new Error(String(fatal.error).split('\n')[0]);
      if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}`);
      if (Date.now() > until) throw new Error(`no "${ev}" from the worker within ${timeoutMs} ms`);
      await sleep(20);
    }
  };
  return { child, lines, next };
}

async function runCase(c: Case, seconds: number): Promise<ClusterLimiterFigure> {
  const { port: redisPort, proc: redis } = await startRedis();
  const arrivals: number[] = [];
  const lags: number[] = [];
  const server = http.createServer((req, res) => {
    const now = performance.now();
    arrivals.push(now);
    lags.push(performance.timeOrigin + now - Number(req.headers['x-started-at']));
    req.resume();
    if (c.serverLatencyMs > 0) setTimeout(() => res.end('ok'), c.serverLatencyMs);
    else res.end('ok');
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const target = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const workers: WorkerHandle[] = [];
  const figure: ClusterLimiterFigure = {
    limiter: c.limiter,
    config: c.config,
    processes: c.processes,
    loops_per_process: c.loops,
    rate: c.rate,
    measured_seconds: seconds,
    busiest_window: 0,
    throughput: 0,
    ratio: 0,
    grant_p50_ms: null,
    grant_p99_ms: null,
    arrival_lag_p99_ms: 0,
    arrival_lag_max_ms: 0,
    arrivals_late_over_margin: 0,
  };
  try {
    for (let i = 0; i < c.processes; i++) {
      workers.push(startWorker({ mode: c.mode, redisUrl: `redis://127.0.0.1:${redisPort}`, keyPrefix: 'bench', replicaId: `p${i}`, key: 'acct/api', rate: c.rate, loops: c.loops, target, heartbeatMs: c.heartbeatMs }));
    }
    await Promise.all(workers.map((w) => w.next('ready', 20_000)));
    const t0 = performance.now();
    for (const w of workers) w.child.stdin!.write('go\n');
    await sleep((seconds + 1) * 1000);
    for (const w of workers) w.child.stdin!.write('stop\n');
    const done = await Promise.all(workers.map((w) => w.next('done', 15_000)));
    const from = t0 + 1000;
    const inSpan = arrivals.filter((t) => t >= from && t < from + seconds * 1000).length;
    figure.busiest_window = busiest(arrivals);
    figure.throughput = round(inSpan / seconds, 1);
    figure.ratio = round(inSpan / seconds / c.rate, 4);
    const rtts = done.map((d) => d.grant_rtt_ms as { n: number; p50: number; p99: number }).filter((g) => g && g.n > 0);
    if (rtts.length > 0) {
      figure.grant_p50_ms = round(percentile(rtts.map((g) => g.p50), 50), 3);
      figure.grant_p99_ms = round(Math.max(...rtts.map((g) => g.p99)), 3);
    }
    const stats = done.map((d) => d.stats as { requests: number } | undefined).filter((x) => x !== undefined);
    if (stats.length > 0) figure.round_trips_per_call = round(stats.reduce((a, x) => a + x.requests, 0) / done.reduce((a, d) => a + Number(d.calls), 0), 3);
    figure.arrival_lag_p99_ms = round(percentile(lags, 99), 1);
    figure.arrival_lag_max_ms = round(Math.max(...lags), 1);
    figure.arrivals_late_over_margin = lags.filter((l) => l > defaultGuardMs(c.rate)).length;
    const errors = workers.flatMap((w) => w.lines.filter((l) => l.ev === 'error').map((l) => String(l.error)));
    if (errors.length > 0) figure.error = errors[0].split('\n')[0];
  } catch (err) {
    figure.error = (err as Error).message;
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    server.closeAllConnections();
    server.close();
    redis.kill('SIGKILL');
  }
  log(`cluster ${c.limiter} ${c.config} ${c.processes}x${c.loops} @${c.rate}: busiest ${figure.busiest_window}, ${figure.throughput}/s (${figure.ratio}), grant p50/p99 ${figure.grant_p50_ms}/${figure.grant_p99_ms} ms${figure.error ? `, error: ${figure.error}` : ''}`);
  return figure;
}

export async function clusterLimiterCases(seconds: number): Promise<ClusterLimiterFigure[]> {
  const sideBySide = (limiter: string, config: string, mode: WorkerConfig['mode']): Case => ({ limiter, config, mode, processes: 2, loops: 4, rate: 100, serverLatencyMs: 5 });
  const cases: Case[] = [
    sideBySide('RedisWindowLimiter', 'default guard (20 ms)', 'ours'),
    sideBySide('rate-limiter-flexible RateLimiterRedis', '{points: 100, duration: 1}', 'rlf'),
    sideBySide('rate-limiter-flexible RateLimiterRedis', '{points: 100, duration: 1, execEvenly: true}', 'rlf-even'),
    sideBySide('Bottleneck (Redis clustering)', '{reservoir: 100, reservoirRefreshAmount: 100, reservoirRefreshInterval: 1000}', 'bottleneck'),
    { ...sideBySide('Bottleneck (Redis clustering)', 'same, heartbeatInterval: 100 (refresh noticed within 100 ms)', 'bottleneck'), heartbeatMs: 100 },
    { limiter: 'RedisWindowLimiter', config: 'ceiling, default guard (20 ms)', mode: 'ours', processes: 3, loops: 16, rate: 1000, serverLatencyMs: 0 },
  ];
  const out: ClusterLimiterFigure[] = [];
  for (const c of cases) out.push(await runCase(c, seconds));
  return out;
}
