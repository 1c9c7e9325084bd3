import { startRedisServer, type RedisServer } from '../helpers/servers';
import { emulator, truthOf } from '../helpers/harness';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClientList, sessionFromClientListEntry } from '../../emulator/apis/redis/client-list';
import type { DasData } from '../../emulator/apis/redis/sessions';
import { startEmulator, type Emulator } from '../../emulator/server';
import { dasClient, popError, testScenario, type PopError } from './helpers';

interface DasAnswer {
  Code: number | string;
  Success: boolean | string;
  Message: string;
  RequestId: string;
  Data: DasData;
}

describe('DAS GetRedisAllSession (synthetic sessions)', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator({
      scenario: testScenario((s) => {
        s.redis.instances.push(
          { ...structuredClone(s.redis.instances[0]!), instance_id: 'r-denied', no_permission: true },
          { ...structuredClone(s.redis.instances[0]!), instance_id: 'r-falsy', business_failure: 'success_false' },
        );
      }),
    });
  });
  afterAll(async () => emu.close());

  it('answers the documented shape: number Code, boolean Success, string Age and Count', async () => {
    const r = await dasClient(emu.url).request<DasAnswer>('GetRedisAllSession', { InstanceId: 'r-test0001' }, { method: 'POST' });
    expect(r.Code).toBe(200);
    expect(r.Success).toBe(true);
    expect(r.Message).toBe('Successful');
    expect(r.Data.Total).toBe(200);
    expect(r.Data.Sessions).toHaveLength(200);
    const s = r.Data.Sessions[0]!;
    expect(Object.keys(s).sort()).toEqual(
      ['Addr', 'Age', 'Client', 'ClientDesc', 'Cmd', 'Db', 'Events', 'Fd', 'Flags', 'Id', 'Idle', 'Multi', 'Name', 'NodeId', 'Obl', 'Oll', 'Omem', 'Psub', 'Qbuf', 'QbufFree', 'Sub'].sort(),
    );
    for (const x of r.Data.Sessions) {
      expect(typeof x.Age).toBe('string');
      expect(Number(x.Age)).toBeGreaterThanOrEqual(x.Idle);
      expect(x.Addr.startsWith(`${x.Client}:`)).toBe(true);
      expect(typeof x.Id).toBe('number');
    }
    expect(new Set(r.Data.Sessions.map((x) => x.NodeId)).size).toBe(3);
    for (const st of r.Data.SourceStats) expect(typeof st.Count).toBe('string');
    expect(r.Data.SourceStats.reduce((a, st) => a + Number(st.Count), 0)).toBe(200);
    expect(r.Data.SourceStats.length).toBeLessThanOrEqual(8);
    const truth = (await truthOf(emu)).redis['r-test0001'] as DasData;
    expect({ ...r.Data, Timestamp: 0 }).toEqual({ ...truth, Timestamp: 0 });
  });

  it('can emit the string forms and list fewer sessions than Total', async () => {
    const r = await dasClient(emu.url).request<DasAnswer>('GetRedisAllSession', { InstanceId: 'r-legacy0001' });
    expect(r.Code).toBe('200');
    expect(r.Success).toBe('true');
    expect(r.Data.Total).toBe(10);
    expect(r.Data.Sessions).toHaveLength(3);
    expect(r.Data.SourceStats.reduce((a, st) => a + Number(st.Count), 0)).toBe(4);
  });

  it('answers a business failure at HTTP 200 with a string code, which pop-core throws', async () => {
    const err = await popError(dasClient(emu.url).request('GetRedisAllSession', { InstanceId: 'r-broken0001' }));
    expect(err.code).toBe('-1001');
    expect(err.entry.response.statusCode).toBe(200);
    expect(err.data.Success).toBe(false);
  });

  it('answers Code 200 with Success false, which pop-core does not throw', async () => {
    const r = await dasClient(emu.url).request<DasAnswer>('GetRedisAllSession', { InstanceId: 'r-falsy' });
    expect(r.Code).toBe(200);
    expect(r.Success).toBe(false);
    expect(emu.stats().apis.GetRedisAllSession?.errors['Success:false']).toBe(1);
  });

  it('answers InvalidParams (400) and NoPermission (403)', async () => {
    const missing = await popError(dasClient(emu.url).request('GetRedisAllSession', {}));
    expect(missing.code).toBe('InvalidParams');
    expect(missing.entry.response.statusCode).toBe(400);
    const denied = await popError(dasClient(emu.url).request('GetRedisAllSession', { InstanceId: 'r-denied' }));
    expect(denied.code).toBe('NoPermission');
    expect(denied.entry.response.statusCode).toBe(403);
  });

  it('answers calls over its rate limit with the gateway\'s Throttling.User (400), and injects Throttling (400)', async () => {
    const frozen = Date.now();
    const limited = await emulator(testScenario((s) => (s.rate_limits = { GetRedisAllSession: 2 })), { now: () => frozen });
    const results = await Promise.allSettled(Array.from({ length: 4 }, () => dasClient(limited.url).request('GetRedisAllSession', { InstanceId: 'r-test0001' })));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as PopError] : []));
    expect(refused.map((e) => `${e.code} ${e.entry.response.statusCode}`)).toEqual(['Throttling.User 400', 'Throttling.User 400']);
    expect(limited.stats().apis.GetRedisAllSession).toMatchObject({ ok: 2, throttled: 2 });
    emu.setFaults({ GetRedisAllSession: { error_rates: { Throttling: 1 } } });
    const injected = await popError(dasClient(emu.url).request('GetRedisAllSession', { InstanceId: 'r-test0001' }));
    emu.setFaults({});
    expect(`${injected.code} ${injected.entry.response.statusCode}`).toBe('Throttling 400');
  });
});

describe('CLIENT LIST mapping', () => {
  it('maps a Redis 7 line to a DAS session', () => {
    const line =
      'id=3 addr=127.0.0.1:52000 laddr=127.0.0.1:6379 fd=8 name=worker age=12 idle=3 flags=N db=2 sub=1 psub=0 ssub=0 multi=-1 qbuf=26 qbuf-free=20448 argv-mem=10 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=22298 events=r cmd=client|list user=default redir=-1 resp=2\n';
    const [entry] = parseClientList(line);
    expect(sessionFromClientListEntry(entry!, 'node-a')).toEqual({
      Sub: 1, Psub: 0, Idle: 3, Flags: 'N', Oll: 0, QbufFree: 20448, Multi: -1, Omem: 0, Qbuf: 26, Name: 'worker', Obl: 0,
      Client: '127.0.0.1', Cmd: 'client|list', Id: 3, Addr: '127.0.0.1:52000', NodeId: 'node-a', Age: '12', Db: 2, Events: 'r', Fd: 8, ClientDesc: '',
    });
  });
});

async function waitFor<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined as T);
    if (v !== undefined && ok(v)) return v;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function openNamedConnection(port: number, name: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.write(`*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$${name.length}\r\n${name}\r\n`);
    });
    socket.once('data', (d) => (d.toString().startsWith('+OK') ? resolve(socket) : reject(new Error(d.toString()))));
    socket.once('error', reject);
  });
}

describe('DAS GetRedisAllSession backed by a real redis-server', () => {
  let redis: RedisServer | undefined;
  let port: number;
  let emu: Emulator;

  beforeAll(async () => {
    redis = await startRedisServer();
    port = redis.port;
    emu = await startEmulator({
      scenario: testScenario((s) => {
        s.redis.instances = [
          { ...structuredClone(s.redis.instances[0]!), instance_id: 'r-real0001', redis: { host: '127.0.0.1', port, node_id: 'r-real0001-db-0', timeout_ms: 2000 } },
        ];
      }),
    });
  });
  afterAll(async () => {
    await emu?.close();
    await redis?.stop();
  });

  const named = (d: DasAnswer): string[] => d.Data.Sessions.map((s) => s.Name).filter((n) => n.startsWith('test-conn-')).sort();

  it('shows connections a test opens, then not once they are closed', async () => {
    const client = dasClient(emu.url);
    const ask = (): Promise<DasAnswer> => client.request<DasAnswer>('GetRedisAllSession', { InstanceId: 'r-real0001' });
    const sockets = await Promise.all([1, 2, 3].map((i) => openNamedConnection(port, `test-conn-${i}`)));
    const open = await ask();
    expect(named(open)).toEqual(['test-conn-1', 'test-conn-2', 'test-conn-3']);
    // The emulator's own CLIENT LIST connection is not reported.
    expect(open.Data.Total).toBe(3);
    for (const s of open.Data.Sessions) {
      expect(s.Client).toBe('127.0.0.1');
      expect(s.NodeId).toBe('r-real0001-db-0');
      expect(typeof s.Age).toBe('string');
    }
    expect(open.Data.SourceStats).toEqual([{ Key: '127.0.0.1', Count: '3', Ids: open.Data.Sessions.map((s) => s.Id) }]);
    for (const s of sockets) s.destroy();
    const closed = await waitFor(ask, (d) => named(d).length === 0);
    expect(closed.Data.Total).toBe(0);
    expect((await truthOf(emu)).redis['r-real0001']).toMatchObject({ Total: 0, Sessions: [] });
  });
});
