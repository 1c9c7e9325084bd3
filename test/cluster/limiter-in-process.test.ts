import { afterEach, describe, expect, test } from 'vitest';
import type Redis from 'ioredis';
import { RateLimitAbortedError, WindowRateLimiter } from '../../src/cloud/rate-limiter';
import type { PoolLimiter } from '../../src/cloud/accounts';
import { ClusterMembership } from '../../src/cluster/membership';
import { connectClusterRedis } from '../../src/cluster/redis';
import { RedisWindowLimiter } from '../../src/cluster/redis-window-limiter';
import { startRedisServer, type RedisServer } from '../helpers/servers';
import { busiestWindow } from './harness';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let redis: RedisServer | undefined;
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await redis?.stop();
  redis = undefined;
});

async function replica(id: string, opts: { now?: () => number; heartbeatMs?: number; ttlMs?: number } = {}): Promise<{ client: Redis; membership: ClusterMembership }> {
  redis ??= await startRedisServer();
  const client = connectClusterRedis({ url: `redis://127.0.0.1:${redis.port}`, commandTimeoutMs: 300, reconnectMs: 100 });
  const membership = new ClusterMembership({ redis: client, keyPrefix: 't', replicaId: id, heartbeatMs: opts.heartbeatMs ?? 200, ttlMs: opts.ttlMs ?? 5000, probeMs: 100, now: opts.now });
  membership.start();
  while (membership.state !== 'up') await sleep(5);
  cleanups.push(async () => {
    await membership.stop();
    client.disconnect();
  });
  return { client, membership };
}

function limiter(membership: ClusterMembership, rate: number, extra: Partial<ConstructorParameters<typeof RedisWindowLimiter>[0]> = {}): RedisWindowLimiter {
  const l = new RedisWindowLimiter({ membership, key: 'acct/api', rate, ...extra });
  cleanups.push(() => l.close());
  return l;
}

describe('RedisWindowLimiter in one process', () => {
  test('WindowRateLimiter and RedisWindowLimiter both satisfy PoolLimiter', async () => {
    const { membership } = await replica('a');
    const both: PoolLimiter[] = [new WindowRateLimiter({ rate: 10 }), limiter(membership, 10)];
    for (const l of both) expect(await l.schedule(async () => 42)).toBe(42);
    expect(both.map((l) => l.rule)).toEqual([
      { calls: 10, windowMs: 1000 },
      { calls: 10, windowMs: 1000 },
    ]);
  });

  test('replica clocks do not matter: two replicas whose clocks differ by 2,000 s still share 50/s', async () => {
    const a = await replica('a', { now: () => performance.now() + 1_000_000 });
    const b = await replica('b', { now: () => performance.now() - 1_000_000 });
    const la = limiter(a.membership, 50, { now: () => performance.now() + 1_000_000 });
    const lb = limiter(b.membership, 50, { now: () => performance.now() - 1_000_000 });
    const starts: number[] = [];
    let running = true;
    const loop = async (l: RedisWindowLimiter) => {
      while (running) await l.schedule(async () => void starts.push(performance.now()));
    };
    const loops = [la, la, lb, lb].map(loop);
    await sleep(2500);
    running = false;
    await Promise.all(loops);
    expect(busiestWindow(starts)).toBeLessThanOrEqual(50);
    // Slow start, then 50/s: well over 80 calls in 2.5 s.
    expect(starts.length).toBeGreaterThan(80);
  });

  test('a per-source-IP ceiling in the same grant: two quotas of 40/s under one 50/s ceiling, on two replicas; in every window each within 40, both within 50', async () => {
    const a = await replica('a');
    const b = await replica('b');
    const localCeiling = new WindowRateLimiter({ rate: 25 });
    const ceiling = { key: 'ip/onsmqtt', rate: 50, local: () => localCeiling };
    const mk = (m: ClusterMembership, key: string) => limiter(m, 40, { key, ceiling });
    const limiters = [mk(a.membership, 'acct1/Batch'), mk(b.membership, 'acct1/Batch'), mk(a.membership, 'acct2/Single'), mk(b.membership, 'acct2/Single')];
    const starts: Array<{ at: number; quota: string }> = [];
    let running = true;
    const loop = async (l: RedisWindowLimiter, quota: string) => {
      while (running) await l.schedule(async () => void starts.push({ at: performance.now(), quota }));
    };
    const loops = limiters.flatMap((l, i) => [loop(l, i < 2 ? 'acct1' : 'acct2'), loop(l, i < 2 ? 'acct1' : 'acct2')]);
    await sleep(3000);
    running = false;
    await Promise.all(loops);
    const all = starts.map((x) => x.at);
    expect(busiestWindow(all)).toBeLessThanOrEqual(50);
    for (const q of ['acct1', 'acct2']) expect(busiestWindow(starts.filter((x) => x.quota === q).map((x) => x.at))).toBeLessThanOrEqual(40);
    // The ceiling is the bottleneck: close to 50/s after the slow starts, shared by both quotas.
    expect(all.length).toBeGreaterThan(90);
    for (const q of ['acct1', 'acct2']) expect(starts.filter((x) => x.quota === q).length).toBeGreaterThan(20);
  });

  test('SCRIPT FLUSH (NOSCRIPT on the next EVALSHA): the script is sent again and calls go on', async () => {
    const { client, membership } = await replica('a');
    const l = limiter(membership, 100);
    for (let i = 0; i < 5; i++) await l.schedule(async () => undefined);
    // ioredis keeps each defined script's SHA1; the grant script is loaded in Redis, then flushed.
    const sha = (client as unknown as { scriptsSet: Record<string, { sha: string }> }).scriptsSet.cseGrant.sha;
    expect(await client.script('EXISTS', sha)).toEqual([1]);
    await client.script('FLUSH');
    expect(await client.script('EXISTS', sha)).toEqual([0]);
    for (let i = 0; i < 5; i++) await l.schedule(async () => undefined);
    expect(await client.script('EXISTS', sha)).toEqual([1]);
    expect(l.degraded).toBe(false);
    expect(l.stats.granted).toBeGreaterThanOrEqual(10);
  });

  test('a call aborted while waiting rejects with RateLimitAbortedError(reason); cancelAll rejects the rest', async () => {
    const { membership } = await replica('a');
    const l = limiter(membership, 1);
    const ran: number[] = [];
    const first = l.schedule(async () => void ran.push(1));
    const ctl = new AbortController();
    const second = l.schedule(async () => void ran.push(2), ctl.signal);
    const third = l.schedule(async () => void ran.push(3));
    expect(l.queueDepth).toBe(3);
    await first;
    ctl.abort('deadline');
    await expect(second).rejects.toEqual(new RateLimitAbortedError('deadline'));
    await expect(second).rejects.toHaveProperty('reason', 'deadline');
    l.cancelAll();
    await expect(third).rejects.toBeInstanceOf(RateLimitAbortedError);
    expect(ran).toEqual([1]);
    expect(l.queueDepth).toBe(0);
    await expect(l.schedule(async () => 1, AbortSignal.abort('gone'))).rejects.toHaveProperty('reason', 'gone');
  });

  test('a replica overdue in the membership makes the others keep to their shares until its entry expires', async () => {
    const { client, membership } = await replica('a', { heartbeatMs: 100, ttlMs: 2500 });
    const seen: boolean[] = [];
    const l = limiter(membership, 100, { onDegradedChange: (d) => seen.push(d) });
    await l.schedule(async () => undefined);
    expect(l.degraded).toBe(false);
    // A replica last heard of 1.5 s ago: past overdueMs (100 + 300 + 500 ms), within the 2.5 s TTL.
    const [sec, usec] = await client.time();
    await client.zadd('t:replicas', (Number(sec) * 1000 + Number(usec) / 1000 - 1500).toFixed(3), 'ghost');
    await l.schedule(async () => undefined);
    await l.schedule(async () => undefined);
    expect(l.degraded).toBe(true);
    expect(membership.shareDivisor).toBe(2);
    // Its entry expires 1 s later; the idle probe notices and the shared quota is back.
    const until = performance.now() + 3000;
    while (l.degraded && performance.now() < until) await sleep(50);
    expect(l.degraded).toBe(false);
    expect(seen).toEqual([true, false]);
  });

  test('keys live under the prefix and expire on their own', async () => {
    const { client, membership } = await replica('a');
    const l = limiter(membership, 10);
    await l.schedule(async () => undefined);
    const keys = (await client.keys('*')).sort();
    expect(keys).toEqual(['t:joined', 't:limit:acct/api:log', 't:limit:acct/api:pace', 't:replicas']);
    for (const k of keys) expect(await client.pttl(k)).toBeGreaterThan(0);
  });

  test('without redis-server the cluster tests fail instead of being skipped', async () => {
    await expect(startRedisServer({ bin: '/nonexistent/redis-server' })).rejects.toThrow(/could not start/);
  });
});
