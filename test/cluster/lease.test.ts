import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ClusterEvents } from '../../src/cluster/events';
import { LeaderLease } from '../../src/cluster/lease';
import { connectClusterRedis } from '../../src/cluster/redis';
import { startRedisServer, type RedisServer } from '../helpers/servers';
import { assertBuilt, startWorker, type Worker, type WorkerEvent } from './harness';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LEASE_MS = 1500;
const RENEW_MS = 500;

let redis: RedisServer | undefined;
let workers: Worker[] = [];
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(() => assertBuilt());
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  for (const w of workers) w.child.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.exited));
  workers = [];
  await redis?.stop();
  redis = undefined;
});

async function contenders(n: number): Promise<Worker[]> {
  redis ??= await startRedisServer();
  const ws = Array.from({ length: n }, (_, i) =>
    startWorker({ mode: 'lease', redisUrl: `redis://127.0.0.1:${redis!.port}`, keyPrefix: 'test', replicaId: `r${i}`, job: 'mqtt', leaseMs: LEASE_MS, renewMs: RENEW_MS, commandTimeoutMs: 300, probeMs: 100 }),
  );
  workers.push(...ws);
  await Promise.all(ws.map((w) => w.waitFor((e) => e.ev === 'ready')));
  return ws;
}

/** Leader events of all workers in the order the test read them. */
function leaderEvents(ws: Worker[]): WorkerEvent[] {
  return ws.flatMap((w) => w.events.filter((e) => e.ev === 'leader')).sort((a, b) => a.at - b.at);
}

function currentLeaders(ws: Worker[]): string[] {
  const state = new Map<string, boolean>();
  for (const e of leaderEvents(ws)) state.set(e.replica, e.leader as boolean);
  return [...state].filter(([, leader]) => leader).map(([r]) => r);
}

/** Never two leaders at once, going by the order of the events (a killed worker's leadership ends at its kill). */
function maxConcurrentLeaders(ws: Worker[], killed: Map<string, number>): number {
  const changes = leaderEvents(ws).map((e) => ({ at: e.at, replica: e.replica, leader: e.leader as boolean }));
  for (const [replica, at] of killed) changes.push({ at, replica, leader: false });
  changes.sort((a, b) => a.at - b.at);
  const state = new Map<string, boolean>();
  let max = 0;
  for (const c of changes) {
    state.set(c.replica, c.leader);
    max = Math.max(max, [...state.values()].filter(Boolean).length);
  }
  return max;
}

describe('LeaderLease across processes', () => {
  test(`one leader of 3; SIGKILL it: another leads within lease + renew (${LEASE_MS} + ${RENEW_MS} ms), with a higher token; the stale token is rejected`, async () => {
    const ws = await contenders(3);
    await sleep(800);
    const first = currentLeaders(ws);
    expect(first).toHaveLength(1);
    const leader = ws.find((w) => w.events.some((e) => e.ev === 'leader' && e.leader))!;
    const oldToken = leader.events.find((e) => e.ev === 'leader' && e.leader)!.token as string;
    leader.child.kill('SIGKILL');
    const killedAt = performance.now();
    const others = ws.filter((w) => w !== leader);
    const next = await Promise.race(others.map((w) => w.waitFor((e) => e.ev === 'leader' && e.leader === true, 5000)));
    const failoverMs = next.at - killedAt;
    console.log(`failover after SIGKILL: ${failoverMs.toFixed(0)} ms; tokens ${oldToken} -> ${String(next.token)}`);
    expect(failoverMs).toBeLessThanOrEqual(LEASE_MS + RENEW_MS + 250);
    expect(BigInt(next.token as string)).toBeGreaterThan(BigInt(oldToken));
    await sleep(300);
    expect(currentLeaders(others)).toEqual([next.replica]);
    expect(maxConcurrentLeaders(ws, new Map([[first[0], killedAt]]))).toBe(1);
    // Fencing: the old leader's token no longer publishes; the new one does.
    const checker = others[0];
    checker.send(`check ${oldToken}`);
    checker.send(`check ${String(next.token)}`);
    const stale = await checker.waitFor((e) => e.ev === 'check' && e.token === oldToken);
    const fresh = await checker.waitFor((e) => e.ev === 'check' && e.token === next.token);
    expect(stale.current).toBe(false);
    expect(fresh.current).toBe(true);
  });

  test('a graceful stop releases the lease: another replica takes over at once, not after the lease', async () => {
    const ws = await contenders(3);
    await sleep(800);
    const leader = ws.find((w) => currentLeaders([w]).length === 1)!;
    const oldToken = leader.events.find((e) => e.ev === 'leader' && e.leader)!.token as string;
    leader.child.kill('SIGTERM');
    const released = await leader.waitFor((e) => e.ev === 'released');
    const others = ws.filter((w) => w !== leader);
    const next = await Promise.race(others.map((w) => w.waitFor((e) => e.ev === 'leader' && e.leader === true, 5000)));
    const handoverMs = next.at - released.at;
    console.log(`handover after release: ${handoverMs.toFixed(0)} ms`);
    // Through the release message, well before the renew period (let alone the lease) would have elapsed.
    expect(handoverMs).toBeLessThan(RENEW_MS / 2);
    expect(BigInt(next.token as string)).toBeGreaterThan(BigInt(oldToken));
    expect(maxConcurrentLeaders(ws, new Map())).toBe(1);
  });
});

describe('LeaderLease without Redis', () => {
  test('Redis down: the leader leads until its lease would have expired, then stops; nobody else leads; the token survives an emptied Redis', async () => {
    redis = await startRedisServer();
    const port = redis.port;
    const changes: Array<{ who: string; leader: boolean; token?: string; at: number }> = [];
    const leases = ['a', 'b'].map((who) => {
      const client = connectClusterRedis({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 200, reconnectMs: 100 });
      const events = new ClusterEvents(client, 't');
      events.start();
      const lease = new LeaderLease({ redis: client, events, keyPrefix: 't', job: 'j', replicaId: who, leaseMs: LEASE_MS, renewMs: RENEW_MS, onChange: (leader, token) => changes.push({ who, leader, token, at: performance.now() }) });
      cleanups.push(async () => {
        await lease.stop();
        events.stop();
        client.disconnect();
      });
      return { client, lease };
    });
    await Promise.all(leases.map(({ client }) => new Promise<void>((r) => (client.status === 'ready' ? r() : client.once('ready', () => r())))));
    void leases[0].lease.start();
    await sleep(100);
    void leases[1].lease.start();
    await sleep(RENEW_MS * 2);
    expect(changes.map((c) => [c.who, c.leader])).toEqual([['a', true]]);
    const token = changes[0].token!;

    redis.process.kill('SIGKILL');
    await redis.stop();
    const downAt = performance.now();
    await sleep(LEASE_MS + RENEW_MS);
    // a stopped leading within one lease of its last renewal (at most lease after Redis went down); b never led.
    expect(changes.map((c) => [c.who, c.leader])).toEqual([
      ['a', true],
      ['a', false],
    ]);
    expect(changes[1].at - downAt).toBeLessThanOrEqual(LEASE_MS);
    expect(await leases[1].lease.isCurrent(token)).toBe(false);

    // Redis comes back empty: the fencing counter is gone, yet the next token is higher.
    redis = await startRedisServer({ port });
    const until = performance.now() + 5000;
    while (!changes.some((c, i) => i >= 2 && c.leader) && performance.now() < until) await sleep(50);
    const again = changes.slice(2).find((c) => c.leader)!;
    expect(again).toBeDefined();
    expect(BigInt(again.token!)).toBeGreaterThan(BigInt(token));
  });
});
