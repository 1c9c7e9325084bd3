// One replica in its own process, for test/cluster and bench/cluster-limiter.ts: loops calling a local HTTP server
// through a shared limiter (ours, rate-limiter-flexible or Bottleneck), or competing for a leader lease.
// Usage: node dist/bench/cluster-worker.js '<json WorkerConfig>'. Prints JSON lines; reads "go", "stop" and
// "check <token>" lines on stdin; SIGTERM stops gracefully (the lease is released).
import http from 'node:http';
import readline from 'node:readline';
import Bottleneck from 'bottleneck';
import Redis from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { ClusterEvents } from '../src/cluster/events';
import { LeaderLease } from '../src/cluster/lease';
import { ClusterMembership } from '../src/cluster/membership';
import { connectClusterRedis } from '../src/cluster/redis';
import { RedisWindowLimiter } from '../src/cluster/redis-window-limiter';

export interface WorkerConfig {
  mode: 'ours' | 'rlf' | 'rlf-even' | 'bottleneck' | 'lease';
  redisUrl: string;
  keyPrefix: string;
  replicaId: string;
  /** Limiter modes: the quota key, calls per second for all replicas together, concurrent loops, the server. */
  key?: string;
  rate?: number;
  loops?: number;
  target?: string;
  /** Ours: the guard (default defaultGuardMs(rate)). */
  guardMs?: number;
  /** Ours: membership heartbeat. Bottleneck: its clustering heartbeatInterval. */
  heartbeatMs?: number;
  ttlMs?: number;
  probeMs?: number;
  commandTimeoutMs?: number;
  /** Lease mode. */
  job?: string;
  leaseMs?: number;
  renewMs?: number;
}

const cfg = JSON.parse(process.argv[2]) as WorkerConfig;
const print = (o: object) => process.stdout.write(JSON.stringify({ ...o, replica: cfg.replicaId }) + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function call(target: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // x-started-at (wall clock, µs precision): the server can tell how long the request took to arrive.
    const headers = { 'x-started-at': (performance.timeOrigin + performance.now()).toFixed(3) };
    const req = http.get(`${target}/?r=${encodeURIComponent(cfg.replicaId)}`, { agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve());
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

interface Driver {
  schedule(fn: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

async function limiterDriver(): Promise<{ driver: Driver; grantRtts: number[]; stats?: () => object }> {
  const rate = cfg.rate!;
  const key = cfg.key!;
  const grantRtts: number[] = [];
  if (cfg.mode === 'ours') {
    const redis = connectClusterRedis({ url: cfg.redisUrl, commandTimeoutMs: cfg.commandTimeoutMs, reconnectMs: cfg.probeMs });
    const membership = new ClusterMembership({
      redis,
      keyPrefix: cfg.keyPrefix,
      replicaId: cfg.replicaId,
      heartbeatMs: cfg.heartbeatMs,
      ttlMs: cfg.ttlMs,
      probeMs: cfg.probeMs,
      onStateChange: (state) => print({ ev: 'membership', state, t: Date.now() }),
    });
    const limiter = new RedisWindowLimiter({
      membership,
      key,
      rate,
      guardMs: cfg.guardMs,
      onDegradedChange: (degraded) => print({ ev: 'degraded', degraded, t: Date.now() }),
      onGrantRoundTrip: (ms) => grantRtts.push(ms),
    });
    membership.start();
    while (membership.state === 'connecting') await sleep(10);
    return {
      grantRtts,
      stats: () => ({ ...limiter.stats }),
      driver: {
        schedule: (fn) => limiter.schedule(fn),
        stop: async () => {
          limiter.close();
          await membership.stop();
          redis.disconnect();
        },
      },
    };
  }
  const [host, port] = new URL(cfg.redisUrl).host.split(':');
  if (cfg.mode === 'bottleneck') {
    const b = new Bottleneck({
      id: `${cfg.keyPrefix}-${key}`,
      datastore: 'ioredis',
      clearDatastore: false,
      clientOptions: { host, port: Number(port) },
      reservoir: rate,
      reservoirRefreshAmount: rate,
      reservoirRefreshInterval: 1000,
      // In clustering mode the reservoir refresh is only noticed on a heartbeat (default every 5 s).
      ...(cfg.heartbeatMs ? { heartbeatInterval: cfg.heartbeatMs } : {}),
    });
    // Errors after the stop (connections closing under jobs in flight) are not the limiter's.
    let stopping = false;
    b.on('error', (err: Error) => void (stopping || print({ ev: 'error', error: String(err) })));
    await b.ready();
    const stop = () => {
      stopping = true;
      return b.disconnect(false);
    };
    return { grantRtts, driver: { schedule: (fn) => b.schedule(fn), stop } };
  }
  const client = new Redis({ host, port: Number(port) });
  const rl = new RateLimiterRedis({ storeClient: client, keyPrefix: cfg.keyPrefix, points: rate, duration: 1, execEvenly: cfg.mode === 'rlf-even' });
  return {
    grantRtts,
    driver: {
      schedule: async (fn) => {
        for (;;) {
          const t0 = performance.now();
          try {
            await rl.consume(key);
            grantRtts.push(performance.now() - t0);
            return fn();
          } catch (res) {
            if (!(res instanceof RateLimiterRes)) throw res;
            await sleep(res.msBeforeNext);
          }
        }
      },
      stop: async () => void client.disconnect(),
    },
  };
}

async function runLimiter(): Promise<void> {
  const { driver, grantRtts, stats } = await limiterDriver();
  let running = false;
  let calls = 0;
  let errors = 0;
  const loops: Array<Promise<void>> = [];
  const lines = readline.createInterface({ input: process.stdin });
  let stopped!: () => void;
  const stopping = new Promise<void>((r) => (stopped = r));
  lines.on('line', (line) => {
    if (line === 'go' && !running) {
      running = true;
      for (let i = 0; i < cfg.loops!; i++) {
        loops.push(
          (async () => {
            while (running) {
              try {
                await driver.schedule(() => call(cfg.target!));
                calls++;
              } catch (err) {
                if (!running) return;
                errors++;
                if (errors <= 3) print({ ev: 'error', error: String(err) });
                await sleep(50);
              }
            }
          })(),
        );
      }
    } else if (line === 'stop') stopped();
  });
  print({ ev: 'ready' });
  await stopping;
  running = false;
  await Promise.race([driver.stop(), sleep(3000)]);
  await Promise.race([Promise.all(loops), sleep(3000)]);
  const sorted = [...grantRtts].sort((a, b) => a - b);
  const pct = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN);
  print({ ev: 'done', calls, errors, grant_rtt_ms: { n: sorted.length, p50: pct(50), p99: pct(99) }, stats: stats?.() });
  process.exit(0);
}

async function runLease(): Promise<void> {
  const redis = connectClusterRedis({ url: cfg.redisUrl, commandTimeoutMs: cfg.commandTimeoutMs, reconnectMs: cfg.probeMs });
  const events = new ClusterEvents(redis, cfg.keyPrefix);
  events.start();
  const lease = new LeaderLease({
    redis,
    events,
    keyPrefix: cfg.keyPrefix,
    job: cfg.job!,
    replicaId: cfg.replicaId,
    leaseMs: cfg.leaseMs,
    renewMs: cfg.renewMs,
    onChange: (leader, token) => print({ ev: 'leader', leader, token, t: Date.now() }),
  });
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const m = /^check (\d+)$/.exec(line);
    if (m) void lease.isCurrent(m[1]).then((current) => print({ ev: 'check', token: m[1], current }));
  });
  process.on('SIGTERM', () => {
    void lease.stop().then(() => {
      print({ ev: 'released', t: Date.now() });
      events.stop();
      redis.disconnect();
      process.exit(0);
    });
  });
  await new Promise<void>((r) => (redis.status === 'ready' ? r() : redis.once('ready', () => r())));
  void lease.start();
  print({ ev: 'ready' });
}

(cfg.mode === 'lease' ? runLease() : runLimiter()).catch((err: Error) => {
  print({ ev: 'fatal', error: err.stack ?? String(err) });
  process.exit(1);
});
