// Replicas as real processes (dist/bench/cluster-worker.js) and a local HTTP server standing in for the cloud: it
// records when each call arrived, which is what a cloud quota counts.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import type { WorkerConfig } from '../../bench/cluster-worker';

const ROOT = path.resolve(__dirname, '../..');
const WORKER = path.join(ROOT, 'dist/bench/cluster-worker.js');

/** The worker runs the built code: refuse to test a stale build of the cluster modules. */
export function assertBuilt(): void {
  if (!fs.existsSync(WORKER)) throw new Error(`${WORKER} is missing: run npm run build first (npm test does)`);
  const sources = [...fs.readdirSync(path.join(ROOT, 'src/cluster')).map((f) => path.join(ROOT, 'src/cluster', f)), path.join(ROOT, 'bench/cluster-worker.ts')];
  for (const src of sources) {
    const built = path.join(ROOT, 'dist', path.relative(ROOT, src)).replace(/\.ts$/, '.js');
    if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < fs.statSync(src).mtimeMs) throw new Error(`${built} is older than ${src}: run npm run build first`);
  }
}

export interface ArrivalServer {
  url: string;
  /** performance.now() of each request's arrival, in order. */
  arrivals: number[];
  /** Per arrival: ms from the call's start in its replica (x-started-at) to its arrival here. */
  lags: number[];
  close(): Promise<void>;
}

export function startArrivalServer(latencyMs = 0): Promise<ArrivalServer> {
  const arrivals: number[] = [];
  const lags: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const now = performance.now();
    arrivals.push(now);
    lags.push(performance.timeOrigin + now - Number(req.headers['x-started-at']));
    req.resume();
    const answer = () => res.end('ok');
    if (latencyMs > 0) setTimeout(answer, latencyMs);
    else answer();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        arrivals,
        lags,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}

/** Most arrivals in any sliding window of `windowMs` (a window [t, t + windowMs)). */
export function busiestWindow(times: number[], windowMs = 1000): number {
  const s = [...times].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < s.length; hi++) {
    while (s[hi] - s[lo] >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

export interface WorkerEvent {
  ev: string;
  replica: string;
  /** When the test process read the line (performance.now()). */
  at: number;
  [k: string]: unknown;
}

export interface Worker {
  child: ChildProcess;
  events: WorkerEvent[];
  send(line: string): void;
  waitFor(pred: (e: WorkerEvent) => boolean, timeoutMs?: number): Promise<WorkerEvent>;
  /** "stop", then the "done" summary. */
  finish(): Promise<WorkerEvent>;
  exited: Promise<void>;
}

export function startWorker(config: WorkerConfig): Worker {
  const child = spawn(process.execPath, [WORKER, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const events: WorkerEvent[] = [];
  const waiters: Array<() => void> = [];
  let stderr = '';
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line.trim()) continue;
      events.push({ ...(JSON.parse(line) as WorkerEvent), at: performance.now() });
      for (const w of waiters.splice(0)) w();
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.once('exit', () => {
    for (const w of waiters.splice(0)) w();
  });
  const waitFor = (pred: (e: WorkerEvent) => boolean, timeoutMs = 10_000) =>
    new Promise<WorkerEvent>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${config.replicaId}: no matching event within ${timeoutMs} ms; events ${JSON.stringify(events)}; stderr ${stderr}`)), timeoutMs);
      const check = () => {
        const e = events.find(pred);
        if (e) {
          clearTimeout(timer);
          resolve(e);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          clearTimeout(timer);
          reject(new Error(`${config.replicaId} exited (${child.exitCode ?? child.signalCode}); events ${JSON.stringify(events)}; stderr ${stderr}`));
        } else waiters.push(check);
      };
      check();
    });
  return {
    child,
    events,
    send: (line) => child.stdin!.write(line + '\n'),
    waitFor,
    finish: async () => {
      child.stdin!.write('stop\n');
      return waitFor((e) => e.ev === 'done', 15_000);
    },
    exited,
  };
}

/** The arrivals of the busiest window, with their start->arrival lags (to tell a late request from a limiter fault). */
export function explainBusiest(server: ArrivalServer, windowMs = 1000): string {
  const order = server.arrivals.map((_, i) => i).sort((a, b) => server.arrivals[a] - server.arrivals[b]);
  let best = 0;
  let bestLo = 0;
  let lo = 0;
  for (let hi = 0; hi < order.length; hi++) {
    while (server.arrivals[order[hi]] - server.arrivals[order[lo]] >= windowMs) lo++;
    if (hi - lo + 1 > best) {
      best = hi - lo + 1;
      bestLo = lo;
    }
  }
  const inWindow = order.slice(bestLo, bestLo + best);
  const lags = inWindow.map((i) => server.lags[i]);
  const edge = (i: number) => `${server.lags[i].toFixed(1)} ms`;
  return `${best} arrivals in ${(server.arrivals[inWindow[best - 1]] - server.arrivals[inWindow[0]]).toFixed(1)} ms; first/last lag ${edge(inWindow[0])}/${edge(inWindow[best - 1])}; max lag in window ${Math.max(...lags).toFixed(1)} ms`;
}

