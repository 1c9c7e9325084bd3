import Redis from 'ioredis';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { startRedisServer, type RedisServer } from '../helpers/servers';
import { assertBuilt, busiestWindow, explainBusiest, startArrivalServer, startWorker, type ArrivalServer, type Worker } from './harness';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let redis: RedisServer | undefined;
let server: ArrivalServer | undefined;
let workers: Worker[] = [];

beforeAll(() => assertBuilt());
afterEach(async () => {
  for (const w of workers) w.child.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.exited));
  workers = [];
  await server?.close();
  server = undefined;
  await redis?.stop();
  redis = undefined;
});

/**
 * The guard is the limiter's assumption that a call reaches the cloud within guardMs of its start. On this 2-core
 * machine, with 3 replicas, Redis and the server busy, requests took up to 36 ms from their start to the server
 * (measured with x-started-at), past the default 20 ms: the tests use 40 ms so they judge the limiter, not the
 * scheduler. (The benchmark runs the default guard.)
 */
const GUARD_MS = 40;

async function replicas(n: number, base: { rate: number; loops: number; key: string } & Record<string, unknown>): Promise<Worker[]> {
  redis ??= await startRedisServer();
  server ??= await startArrivalServer(2);
  const ws = Array.from({ length: n }, (_, i) =>
    startWorker({
      mode: 'ours',
      redisUrl: `redis://127.0.0.1:${redis!.port}`,
      keyPrefix: 'test',
      replicaId: `r${i}`,
      target: server!.url,
      heartbeatMs: 250,
      ttlMs: 5000,
      probeMs: 200,
      commandTimeoutMs: 300,
      guardMs: GUARD_MS,
      ...base,
    }),
  );
  workers.push(...ws);
  await Promise.all(ws.map((w) => w.waitFor((e) => e.ev === 'ready')));
  return ws;
}

describe('RedisWindowLimiter across processes', () => {
  test('3 processes x 4 loops sharing 100/s: no 1 s window over 100 at the server, and the quota used', async () => {
    const ws = await replicas(3, { rate: 100, loops: 4, key: 'acct/api' });
    for (const w of ws) w.send('go');
    await sleep(5000);
    const done = await Promise.all(ws.map((w) => w.finish()));
    const arrivals = server!.arrivals;
    // Steady state: from 1 s after the first arrival (each replica's slow start) to the last.
    const from = arrivals[0] + 1000;
    const steady = arrivals.filter((t) => t >= from);
    const rate = (steady.length - 1) / ((steady[steady.length - 1] - steady[0]) / 1000);
    const lags = server!.lags;
    console.log(explainBusiest(server!));
    console.log(`start->arrival lag: max ${Math.max(...lags).toFixed(1)} ms, over 20 ms: ${lags.filter((l) => l > 20).length}, over 10 ms: ${lags.filter((l) => l > 10).length} of ${lags.length}`);
    console.log(`busiest ${busiestWindow(arrivals)}, steady ${rate.toFixed(1)}/s, calls ${done.map((d) => d.calls).join('+')}, stats ${JSON.stringify(done.map((d) => d.stats))}`);
    expect(busiestWindow(arrivals)).toBeLessThanOrEqual(100);
    // A floor that catches a limiter starving its callers, not the throughput goal (>= 99%), which is a timing figure
    // for \`npm run bench\`: other processes on a busy 2-core machine delay the replicas' timers.
    expect(rate).toBeGreaterThanOrEqual(80);
    for (const d of done) expect(d.errors).toBe(0);
  });

  test('a fractional quota (0.5/s) held by 3 processes: calls at least 2 s apart, one every ~2 s', async () => {
    const ws = await replicas(3, { rate: 0.5, loops: 2, key: 'acct/slow-api' });
    for (const w of ws) w.send('go');
    await sleep(8500);
    await Promise.all(ws.map((w) => w.finish()));
    const a = server!.arrivals;
    const gaps = a.slice(1).map((t, i) => Math.round(t - a[i]));
    console.log(`0.5/s: ${a.length} calls, gaps ${gaps.join(' ')} ms`);
    expect(busiestWindow(a, 2000)).toBe(1);
    expect(a.length).toBeGreaterThanOrEqual(4);
  });

  test('Redis paused for 5 s: every replica falls back to a third of the quota, then shares it again; no window over 100', async () => {
    const ws = await replicas(3, { rate: 100, loops: 4, key: 'acct/api' });
    for (const w of ws) w.send('go');
    await sleep(2000);
    const stoppedAt = performance.now();
    redis!.process.kill('SIGSTOP');
    await sleep(5000);
    redis!.process.kill('SIGCONT');
    const resumedAt = performance.now();
    await sleep(6000);
    const done = await Promise.all(ws.map((w) => w.finish()));
    const a = server!.arrivals;
    const during = a.filter((t) => t > stoppedAt + 1000 && t < resumedAt);
    // Steady again from a second after the last replica left its share.
    const back = Math.max(...ws.flatMap((w) => w.events.filter((e) => e.ev === 'degraded' && e.degraded === false).map((e) => e.at)));
    const after = a.filter((t) => t > back + 1000);
    const afterRate = (after.length - 1) / ((after[after.length - 1] - after[0]) / 1000);
    const flips = ws.map((w) => w.events.filter((e) => e.ev === 'degraded').map((e) => e.degraded));
    console.log(explainBusiest(server!));
    console.log(`paused: busiest ${busiestWindow(a)}, busiest during ${busiestWindow(during)}, calls during ${during.length}, rate after ${afterRate.toFixed(1)}/s, degraded ${JSON.stringify(flips)}, errors ${done.map((d) => d.errors)}`);
    expect(busiestWindow(a)).toBeLessThanOrEqual(100);
    // Fallback: three shares of floor(100 / 3) = 33 per second, after the blackout.
    expect(during.length).toBeGreaterThan(0);
    expect(busiestWindow(during)).toBeLessThanOrEqual(99);
    for (const f of flips) expect(f).toEqual([true, false]);
    expect(afterRate).toBeGreaterThanOrEqual(80);
  });

  test('Redis restarted empty: scripts loaded again, replicas registered again, the shared quota back; no window over 100', async () => {
    const ws = await replicas(3, { rate: 100, loops: 4, key: 'acct/api' });
    for (const w of ws) w.send('go');
    await sleep(2000);
    const port = redis!.port;
    redis!.process.kill('SIGKILL');
    await redis!.stop();
    await sleep(3000);
    redis = await startRedisServer({ port });
    await sleep(6000);
    // Registered again, and the scripts (membership join, grant) loaded into the new server.
    const probe = new Redis({ host: '127.0.0.1', port });
    const members = await probe.zrange('test:replicas', 0, -1);
    const scripts = Number(/number_of_cached_scripts:(\d+)/.exec(await probe.info('memory'))?.[1]);
    probe.disconnect();
    expect(members.sort()).toEqual(['r0', 'r1', 'r2']);
    expect(scripts).toBeGreaterThanOrEqual(2);
    const done = await Promise.all(ws.map((w) => w.finish()));
    const a = server!.arrivals;
    const back = Math.max(...ws.flatMap((w) => w.events.filter((e) => e.ev === 'degraded' && e.degraded === false).map((e) => e.at)));
    const after = a.filter((t) => t > back + 1000);
    const afterRate = (after.length - 1) / ((after[after.length - 1] - after[0]) / 1000);
    const flips = ws.map((w) => w.events.filter((e) => e.ev === 'degraded').map((e) => e.degraded));
    console.log(explainBusiest(server!));
    console.log(`restarted: busiest ${busiestWindow(a)}, rate after ${afterRate.toFixed(1)}/s, degraded ${JSON.stringify(flips)}, errors ${done.map((d) => d.errors)}`);
    expect(busiestWindow(a)).toBeLessThanOrEqual(100);
    for (const f of flips) expect(f).toEqual([true, false]);
    expect(afterRate).toBeGreaterThanOrEqual(80);
  });
});
