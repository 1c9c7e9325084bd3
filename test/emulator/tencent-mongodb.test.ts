import crypto from 'node:crypto';
import { emulator, truthOf } from '../helpers/harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../emulator/server';
import {
  mongoClientByIp,
  mongoClientByName,
  rawRequest,
  tencentError,
  testScenario,
  TENCENT,
  type MongoClientType,
} from './helpers';

type Page = { Clients: { IP: string; Count: number; InternalService: boolean }[]; TotalCount: number; RequestId: string };

async function walk(client: MongoClientType, instanceId: string, limit = 1000): Promise<{ pages: Page[]; clients: Page['Clients'] }> {
  const pages: Page[] = [];
  let offset = 0;
  for (;;) {
    const page = (await client.DescribeClientConnections({ InstanceId: instanceId, Limit: limit, Offset: offset })) as Page;
    pages.push(page);
    offset += limit;
    if (offset >= page.TotalCount) break;
  }
  return { pages, clients: pages.flatMap((p) => p.Clients) };
}

describe('TencentDB for MongoDB DescribeClientConnections against the real SDK', () => {
  let emu: Emulator;
  let skewed: Emulator;

  beforeAll(async () => {
    emu = await startEmulator({ scenario: testScenario((s) => (s.rate_limits = { DescribeClientConnections: 1000 })) });
    skewed = await startEmulator({ scenario: testScenario(), now: () => Date.now() - 301_000 });
  });
  afterAll(async () => {
    await emu.close();
    await skewed.close();
  });

  it('verifies TC3 signed with service "127" (endpoint 127.0.0.1:PORT)', async () => {
    const r = (await mongoClientByIp(emu.port).DescribeClientConnections({ InstanceId: 'cmgo-small0001' })) as Page;
    expect(r.TotalCount).toBe(2);
    expect(r.Clients).toEqual([
      { IP: '10.0.0.1', Count: 12, InternalService: false },
      { IP: '10.0.0.2', Count: 3, InternalService: true },
    ]);
  });

  it('verifies TC3 signed with service "emulator:PORT" (a host name without a dot, as compose names the emulator service)', async () => {
    const r = (await mongoClientByName(emu.port, TENCENT, 'ap-guangzhou', 'POST', 'emulator').DescribeClientConnections({ InstanceId: 'cmgo-small0001' })) as Page;
    expect(r.TotalCount).toBe(2);
  });

  it('verifies TC3 signed with service "mongodb" (real host name resolved to 127.0.0.1), POST and GET', async () => {
    const post = (await mongoClientByName(emu.port).DescribeClientConnections({ InstanceId: 'cmgo-small0001' })) as Page;
    expect(post.TotalCount).toBe(2);
    const get = (await mongoClientByName(emu.port, TENCENT, 'ap-guangzhou', 'GET').DescribeClientConnections({
      InstanceId: 'cmgo-small0001',
      Limit: 1,
      Offset: 1,
    })) as Page;
    expect(get.Clients).toEqual([{ IP: '10.0.0.2', Count: 3, InternalService: true }]);
  });

  it('answers AuthFailure.SignatureFailure for a wrong key, with the trace id echoed', async () => {
    const err = await tencentError(
      mongoClientByIp(emu.port, { ...TENCENT, secretKey: 'wrong' }).DescribeClientConnections({ InstanceId: 'cmgo-small0001' }),
    );
    expect(err.code).toBe('AuthFailure.SignatureFailure');
    expect(err.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(err.traceId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers AuthFailure.SecretIdNotFound for an unknown SecretId', async () => {
    const err = await tencentError(
      mongoClientByIp(emu.port, { ...TENCENT, secretId: 'AKID-nobody' }).DescribeClientConnections({ InstanceId: 'cmgo-small0001' }),
    );
    expect(err.code).toBe('AuthFailure.SecretIdNotFound');
  });

  it('answers AuthFailure.SignatureExpire when the timestamp is more than 300 s off', async () => {
    const err = await tencentError(mongoClientByIp(skewed.port).DescribeClientConnections({ InstanceId: 'cmgo-small0001' }));
    expect(err.code).toBe('AuthFailure.SignatureExpire');
  });

  it('refuses the legacy HmacSHA256 signature with AuthFailure.SignatureFailure', async () => {
    const { mongodb } = await import('tencentcloud-sdk-nodejs-mongodb');
    const legacy = new mongodb.v20190725.Client({
      credential: TENCENT,
      region: 'ap-guangzhou',
      profile: { signMethod: 'HmacSHA256', httpProfile: { endpoint: `127.0.0.1:${emu.port}`, protocol: 'http://' } },
    });
    const err = await tencentError(legacy.DescribeClientConnections({ InstanceId: 'cmgo-small0001' }));
    expect(err.code).toBe('AuthFailure.SignatureFailure');
  });

  it('rejects a body changed after signing (raw bytes are signed)', async () => {
    const ts = Math.floor(Date.now() / 1000);
    const date = new Date(ts * 1000).toISOString().slice(0, 10);
    const body = '{"InstanceId":"cmgo-small0001"}';
    const sha = (s: string): string => crypto.createHash('sha256').update(s).digest('hex');
    const hmac = (k: string | Buffer, s: string): Buffer => crypto.createHmac('sha256', k).update(s).digest();
    const cr = ['POST', '/', '', 'content-type:application/json\nhost:127.0.0.1\n', 'content-type;host', sha(body)].join('\n');
    const sts = `TC3-HMAC-SHA256\n${ts}\n${date}/127/tc3_request\n${sha(cr)}`;
    const key = hmac(hmac(hmac(`TC3${TENCENT.secretKey}`, date), '127'), 'tc3_request');
    const sig = crypto.createHmac('sha256', key).update(sts).digest('hex');
    const headers = {
      'content-type': 'application/json',
      'x-tc-action': 'DescribeClientConnections',
      'x-tc-version': '2019-07-25',
      'x-tc-timestamp': String(ts),
      authorization: `TC3-HMAC-SHA256 Credential=${TENCENT.secretId}/${date}/127/tc3_request, SignedHeaders=content-type;host, Signature=${sig}`,
    };
    const good = await rawRequest(`${emu.url}/`, { method: 'POST', headers, body });
    expect(JSON.parse(good.body).Response.TotalCount).toBe(2);
    // Same JSON value, different bytes: a verifier that re-serialised the body would accept it.
    const respaced = await rawRequest(`${emu.url}/`, { method: 'POST', headers, body: '{"InstanceId": "cmgo-small0001"}' });
    expect(respaced.status).toBe(200);
    expect(JSON.parse(respaced.body).Response.Error.Code).toBe('AuthFailure.SignatureFailure');
  });

  it('pages 2,345 IPs in 3 pages whose sum equals the truth', async () => {
    const { pages, clients } = await walk(mongoClientByIp(emu.port), 'cmgo-big00001');
    expect(pages.map((p) => p.Clients.length)).toEqual([1000, 1000, 345]);
    expect(pages.every((p) => p.TotalCount === 2345)).toBe(true);
    const truth = (await truthOf(emu)).mongodb['cmgo-big00001'];
    expect(truth?.TotalCount).toBe(2345);
    expect(clients).toEqual(truth?.Clients);
    expect(new Set(clients.map((c) => c.IP)).size).toBe(2345);
    const sum = (list: { Count: number }[]): number => list.reduce((a, c) => a + c.Count, 0);
    expect(sum(clients)).toBe(sum(truth?.Clients ?? []));
    expect(clients.some((c) => c.InternalService)).toBe(true);
  });

  it('shifts pages under a walk when mutate_between_pages is insert_front', async () => {
    const { pages, clients } = await walk(mongoClientByIp(emu.port), 'cmgo-shifting1');
    expect(pages.map((p) => p.TotalCount)).toEqual([2345, 2346, 2347]);
    expect(new Set(clients.map((c) => c.IP)).size).toBeLessThan(clients.length);
  });

  it('answers the documented errors', async () => {
    const client = mongoClientByIp(emu.port);
    const code = async (req: object): Promise<string | undefined> =>
      (await tencentError(client.DescribeClientConnections(req as { InstanceId: string }))).code;
    expect(await code({ InstanceId: 'cmgo-legacy01' })).toBe('InvalidParameterValue.MongoVersionNotSupportQueryClient');
    expect(await code({ InstanceId: 'cmgo-nowhere' })).toBe('InvalidParameterValue.NotFoundInstance');
    expect(await code({ InstanceId: 'cmgo-small0001', Limit: 0 })).toBe('InvalidParameterValue');
    expect(await code({ InstanceId: 'cmgo-small0001', Limit: 1001 })).toBe('InvalidParameterValue');
    expect(await code({ InstanceId: 'cmgo-small0001', Offset: -1 })).toBe('InvalidParameterValue');
    expect(await code({ InstanceId: 'cmgo-small0001', Limit: '10' })).toBe('InvalidParameter');
    expect(await code({})).toBe('MissingParameter');
    const otherRegion = await tencentError(
      mongoClientByIp(emu.port, TENCENT, 'ap-shanghai').DescribeClientConnections({ InstanceId: 'cmgo-small0001' }),
    );
    expect(otherRegion.code).toBe('InvalidParameterValue.NotFoundInstance');
  });
});

describe('Tencent rate limit', () => {
  it('answers RequestLimitExceeded (HTTP 200 envelope) past 5 calls per second', async () => {
    const frozen = Date.now();
    const emu = await emulator(testScenario(), { now: () => frozen });
    const client = mongoClientByIp(emu.port);
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => client.DescribeClientConnections({ InstanceId: 'cmgo-small0001' })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    const codes = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as { code: string }).code);
    expect(codes).toEqual(['RequestLimitExceeded', 'RequestLimitExceeded', 'RequestLimitExceeded']);
    expect(emu.stats().apis.DescribeClientConnections).toMatchObject({ calls: 8, ok: 5, throttled: 3, busiest_window: 5 });
  });
});
