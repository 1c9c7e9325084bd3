// TencentTransport with the real SDK against a scripted HTTP server: request shape (region, token, explicit agent)
// and the normalisation of every failure the SDK can raise; plus the job type's config checks and quota plan.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { CloudError } from '../../src/cloud/errors';
import { TencentTransport, splitTencentEndpoint } from '../../src/cloud/providers/tencent';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/load';
import { JOB_TYPES } from '../../src/apis';
import { tencentcloudMongodbConnections } from '../../src/apis/tencentcloud-mongodb-connections';
import { buildQuotaPlan } from '../../src/core/quota-plan';
import { registerSecret } from '../../src/util/redact';
import { exporterConfigYaml } from '../apis/tencentcloud-mongodb-connections/harness';

interface Seen {
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Reply = (req: http.IncomingMessage, res: http.ServerResponse) => void;

let server: http.Server;
let url = '';
let reply: Reply;
const seen: Seen[] = [];

const envelope = (Response: unknown): Reply => (_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ Response }));
};

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      reply(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
afterEach(() => {
  seen.length = 0;
});

const SECRET = 'transportSecretKey-0123456789';
const newTransport = (endpoint = url) => new TencentTransport({ secretId: 'AKIDtransport', secretKey: SECRET, token: 'transport-token-abc' }, endpoint, '2019-07-25', { maxTimeoutMs: 5000, maxResponseBytes: 1 << 20 });

async function failure(t: TencentTransport, timeoutMs = 2000): Promise<CloudError> {
  try {
    await t.call({ api: 'DescribeClientConnections', params: { InstanceId: 'cmgo-x' }, region: 'ap-guangzhou', timeoutMs });
  } catch (err) {
    expect(err).toBeInstanceOf(CloudError);
    return err as CloudError;
  }
  throw new Error('the call did not fail');
}

describe('request shape', () => {
  test('the region travels as X-TC-Region, never in the body; TC3 POST JSON with token and the API version', async () => {
    reply = envelope({ Clients: [], TotalCount: 0, RequestId: 'req-1' });
    const t = newTransport();
    const body = await t.call({ api: 'DescribeClientConnections', params: { InstanceId: 'cmgo-x', Limit: 1000, Offset: 0, Skip: undefined }, region: 'ap-guangzhou', timeoutMs: 2000 });
    expect(body).toEqual({ Clients: [], TotalCount: 0, RequestId: 'req-1' });
    const { headers, body: sent } = seen[0];
    expect(JSON.parse(sent)).toEqual({ InstanceId: 'cmgo-x', Limit: 1000, Offset: 0 });
    expect(headers['x-tc-region']).toBe('ap-guangzhou');
    expect(headers['x-tc-action']).toBe('DescribeClientConnections');
    expect(headers['x-tc-version']).toBe('2019-07-25');
    expect(headers['x-tc-token']).toBe('transport-token-abc');
    expect(headers['content-type']).toBe('application/json');
    expect(headers.authorization).toMatch(/^TC3-HMAC-SHA256 Credential=AKIDtransport\/\d{4}-\d\d-\d\d\/127\/tc3_request, SignedHeaders=content-type;host, Signature=[0-9a-f]{64}$/);
    expect(JSON.stringify(headers)).not.toContain(SECRET);
    t.close();
  });

  test('one SDK client per region; no region means no X-TC-Region header', async () => {
    reply = envelope({ Clients: [], TotalCount: 0, RequestId: 'r' });
    const t = newTransport();
    await t.call({ api: 'DescribeClientConnections', params: { InstanceId: 'a' }, region: 'ap-shanghai', timeoutMs: 2000 });
    await t.call({ api: 'DescribeClientConnections', params: { InstanceId: 'b' }, timeoutMs: 2000 });
    expect(seen[0].headers['x-tc-region']).toBe('ap-shanghai');
    expect(seen[1].headers['x-tc-region']).toBeUndefined();
    t.close();
  });

  test('http_proxy in the environment is ignored: the explicit agent goes straight to the endpoint', async () => {
    reply = envelope({ Clients: [], TotalCount: 0, RequestId: 'r' });
    const before = process.env.http_proxy;
    process.env.http_proxy = 'http://127.0.0.1:9'; // discard port: a request through it would fail
    try {
      const t = newTransport();
      await expect(t.call({ api: 'DescribeClientConnections', params: { InstanceId: 'a' }, timeoutMs: 2000 })).resolves.toBeDefined();
      expect(seen.length).toBe(1);
      t.close();
    } finally {
      if (before === undefined) delete process.env.http_proxy;
      else process.env.http_proxy = before;
    }
  });

  test('endpoint URLs split into the SDK protocol and host[:port]; the internal endpoint keeps service "mongodb"', () => {
    expect(splitTencentEndpoint('https://mongodb.tencentcloudapi.com')).toEqual({ protocol: 'https://', endpoint: 'mongodb.tencentcloudapi.com' });
    expect(splitTencentEndpoint('https://mongodb.internal.tencentcloudapi.com')).toEqual({ protocol: 'https://', endpoint: 'mongodb.internal.tencentcloudapi.com' });
    expect(splitTencentEndpoint('http://127.0.0.1:18080/')).toEqual({ protocol: 'http://', endpoint: '127.0.0.1:18080' });
    expect(() => splitTencentEndpoint('https://mongodb.tencentcloudapi.com/v3')).toThrow(/path/);
    expect(() => splitTencentEndpoint('ftp://x')).toThrow(/http/);
  });
});

describe('error normalisation', () => {
  const codes: Array<[string, boolean, boolean]> = [
    ['RequestLimitExceeded', true, true],
    ['RequestLimitExceeded.UinLimitExceeded', true, true],
    ['InternalError', true, false],
    ['InternalError.DbError', true, false],
    ['AuthFailure.SignatureFailure', false, false],
    ['AuthFailure.SignatureExpire', false, false],
    ['InvalidParameterValue.MongoVersionNotSupportQueryClient', false, false],
    ['InvalidParameterValue.ProxyNotSupportQueryClient', false, false],
    ['InvalidParameterValue.RegionNotSupportQueryClient', false, false],
    ['InvalidParameterValue.NotFoundInstance', false, false],
    ['InvalidParameter.PermissionDenied', false, false],
  ];
  for (const [code, retryable, throttled] of codes) {
    test(`HTTP 200 envelope ${code} → retryable ${retryable}, throttled ${throttled}, request ID kept`, async () => {
      reply = envelope({ Error: { Code: code, Message: `message of ${code}` }, RequestId: 'rid-42' });
      const e = await failure(newTransport());
      expect({ code: e.code, retryable: e.retryable, throttled: e.throttled, requestId: e.requestId, provider: e.provider }).toEqual({ code, retryable, throttled, requestId: 'rid-42', provider: 'tencentcloud' });
      expect(e.message).toContain(code);
    });
  }

  test('a non-200 status has no code: HTTP503 retryable, HTTP404 final', async () => {
    reply = (_q, res) => {
      res.statusCode = 503;
      res.end('<html>busy</html>');
    };
    let e = await failure(newTransport());
    expect([e.code, e.retryable, e.httpStatus]).toEqual(['HTTP503', true, 503]);
    reply = (_q, res) => {
      res.statusCode = 404;
      res.end('nope');
    };
    e = await failure(newTransport());
    expect([e.code, e.retryable, e.httpStatus]).toEqual(['HTTP404', false, 404]);
  });

  test('a 200 without Response, an HTML page, a truncated body → MalformedResponse (retryable)', async () => {
    const bodies = ['{"Result":{}}', '<html><body>502 Bad Gateway</body></html>', '{"Response":{"TotalCount":3,"Cli'];
    for (const b of bodies) {
      reply = (_q, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(b);
      };
      const e = await failure(newTransport());
      expect([e.code, e.retryable], b).toEqual(['MalformedResponse', true]);
    }
  });

  test('no answer within the call timeout → Timeout (retryable), promptly', async () => {
    reply = () => undefined; // never answers
    const started = Date.now();
    const e = await failure(newTransport(), 300);
    expect([e.code, e.retryable]).toEqual(['Timeout', true]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test('a refused connection → NetworkError (retryable)', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const e = await failure(newTransport(`http://127.0.0.1:${port}`));
    expect([e.code, e.retryable]).toEqual(['NetworkError', true]);
  });

  test('a credential echoed by the server never reaches the error message', async () => {
    registerSecret(SECRET);
    reply = envelope({ Error: { Code: 'AuthFailure.SignatureFailure', Message: `bad signature for key ${SECRET}` }, RequestId: 'r' });
    const e = await failure(newTransport());
    expect(e.message).not.toContain(SECRET);
    expect(JSON.stringify(e.toLogObject())).not.toContain(SECRET);
  });
});

describe('job config', () => {
  const problems = (extra: Partial<Parameters<typeof exporterConfigYaml>[1]>, replace?: [string, string]): string[] => {
    let text = exporterConfigYaml('https://mongodb.internal.tencentcloudapi.com', { instanceIds: ['cmgo-a', 'cmgo-b'], ...extra });
    if (replace) text = text.replace(replace[0], replace[1]);
    try {
      parseConfig(text, 'c.yml', { env: { TC_ID: 'id', TC_KEY: 'key', TC_TOKEN: 'tok' }, jobTypes: JOB_TYPES });
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  };

  test('defaults: max_client_ips 300, page_size 1000; the internal endpoint is accepted', () => {
    const text = exporterConfigYaml('https://mongodb.internal.tencentcloudapi.com', { instanceIds: ['cmgo-a'] }).replace(/    max_client_ips: .*\n/, '');
    const cfg = parseConfig(text, 'c.yml', { env: { TC_ID: 'id', TC_KEY: 'key', TC_TOKEN: 'tok' }, jobTypes: JOB_TYPES });
    expect(cfg.jobs[0]).toMatchObject({ max_client_ips: 300, page_size: 1000, endpoint: 'https://mongodb.internal.tencentcloudapi.com', instance_ids: ['cmgo-a'] });
    expect(cfg.accounts[0]).toMatchObject({ provider: 'tencentcloud', credentials: { type: 'sts', secret_id: 'id', secret_key: 'key', token: 'tok' } });
  });

  test('duplicate or missing instance IDs, page_size out of 1..1000, an endpoint with a path, a static label named client_ip', () => {
    expect(problems({ instanceIds: ['cmgo-a', 'cmgo-a'] })).toEqual([expect.stringMatching(/instance_ids\[1\].*duplicate instance ID "cmgo-a"/)]);
    expect(problems({ instanceIds: [] })).toEqual([expect.stringMatching(/instance_ids.*at least one/)]);
    expect(problems({ pageSize: 1001 })).toEqual([expect.stringMatching(/page_size/)]);
    expect(problems({}, ['    labels: {env: test}', '    page_size: 0\n    labels: {env: test}'])).toEqual([expect.stringMatching(/page_size/)]);
    expect(problems({}, ['internal.tencentcloudapi.com', 'internal.tencentcloudapi.com/api'])).toEqual([expect.stringMatching(/endpoint.*path/)]);
    expect(problems({}, ['{env: test}', '{client_ip: x}'])).toEqual([expect.stringMatching(/client_ip.*collides/)]);
  });

  test('quota plan: one call per instance at least, at the documented 5 calls/s', () => {
    const cfg = parseConfig(exporterConfigYaml('https://mongodb.tencentcloudapi.com', { instanceIds: ['cmgo-a', 'cmgo-b', 'cmgo-c'] }), 'c.yml', {
      env: { TC_ID: 'id', TC_KEY: 'key', TC_TOKEN: 'tok' },
      jobTypes: JOB_TYPES,
    });
    const usage = tencentcloudMongodbConnections.plan(cfg.jobs[0] as never, cfg.dir, cfg.accounts);
    expect(usage).toEqual([{ account: 'tc', api: 'DescribeClientConnections', endpoint: 'https://mongodb.tencentcloudapi.com', callsPerRun: 3, basis: expect.stringContaining('at least 1 page') }]);
    expect(tencentcloudMongodbConnections.apiQps).toEqual({ DescribeClientConnections: 5 });
    const plan = buildQuotaPlan(cfg, JOB_TYPES);
    expect(plan.rows).toEqual([expect.objectContaining({ account: 'tc', api: 'DescribeClientConnections', qps: 5, callsPerRun: 3, shortestCycleMs: 600 })]);
  });
});

test('config/examples/tencentcloud-mongodb-connections.yml is a valid configuration', () => {
  const cfg = loadConfigFile('config/examples/tencentcloud-mongodb-connections.yml', { env: { TENCENTCLOUD_SECRET_ID: 'AKIDexample', TENCENTCLOUD_SECRET_KEY: 'example-key' }, jobTypes: JOB_TYPES });
  expect(cfg.jobs[0]).toMatchObject({ type: 'tencentcloud_mongodb_connections', region: 'ap-guangzhou', max_client_ips: 300, page_size: 1000 });
});
