import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { startRedisServer, type RedisServer } from '../helpers/servers';
import { assertBuilt, busiestWindow, startArrivalServer, startWorker, type ArrivalServer, type Worker } from './harness';

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
      ...base,
    }),
  );
  workers.push(...ws);
  await Promise.all(ws.map((w) => w.waitFor((e) => e.ev === 'ready')));
  return ws;
}

describe('RedisWindowLimiter across processes', () => {
  test('3 processes x 4 loops sharing 100/s: no 1 s window over 100 at the server, >= 95% of the quota', async () => {
    const ws = await replicas(3, { rate: 100, loops: 4, key: 'acct/api' });
    for (const w of ws) w.send('go');
    await sleep(5000);
    const done = await Promise.all(ws.map((w) => w.finish()));
    const arrivals = server!.arrivals;
    // Steady state: from 1 s after the first arrival (each replica's slow start) to the last.
    const from = arrivals[0] + 1000;
    const steady = arrivals.filter((t) => t >= from);
    const rate = (steady.length - 1) / ((steady[steady.length - 1] - steady[0]) / 1000);
    console.log(`busiest ${busiestWindow(arrivals)}, steady ${rate.toFixed(1)}/s, calls ${done.map((d) => d.calls).join('+')}, grant rtt ${JSON.stringify(done.map((d) => d.grant_rtt_ms))}`);
    expect(busiestWindow(arrivals)).toBeLessThanOrEqual(100);
    expect(rate).toBeGreaterThanOrEqual(95);
    for (const d of done) expect(d.errors).toBe(0);
  });
});
