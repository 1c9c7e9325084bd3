// The SDK transports through a forward proxy that fails: real pop-core and the real Tencent SDK, real sockets on
// 127.0.0.1. Every proxy failure is a CloudError naming the proxy (never its credentials) with the right retry
// semantics, and a proxy that never answers ends the call at its timeout with its sockets closed.
import { describe, expect, test } from 'vitest';
import { CloudError } from '../../src/cloud/errors';
import { proxyRoute, type ProxyEndpoint } from '../../src/cloud/proxy';
import { AliyunRpcTransport } from '../../src/cloud/providers/aliyun';
import { TencentTransport } from '../../src/cloud/providers/tencent';
import type { CloudTransport } from '../../src/cloud/transport';
import { freePort } from '../helpers/servers';
import { findSecretLeaks } from '../helpers/secrets';
import { startBlackHole, startProxy } from '../helpers/proxy';
import { ALIYUN, emulator, TENCENT } from '../helpers/harness';

const PASSWORD = 'Pr0xy-transport-Pa55';

/** The endpoint's route through `proxyUrl`, as the transport pool would compute it. */
function through(proxyUrl: string, endpoint: string): ProxyEndpoint {
  const r = proxyRoute(endpoint, { proxy_url: proxyUrl }, {});
  if (r.via !== 'proxy') throw new Error(`no proxy route: ${JSON.stringify(r)}`);
  return r;
}

type Sdk = 'aliyun' | 'tencent';
function transport(sdk: Sdk, endpoint: string, proxyUrl: string): CloudTransport {
  const proxy = through(proxyUrl, endpoint);
  return sdk === 'aliyun'
    ? new AliyunRpcTransport({ accessKeyId: ALIYUN.access_key_id, accessKeySecret: ALIYUN.access_key_secret }, endpoint, '2020-04-20', 1 << 20, proxy)
    : new TencentTransport({ secretId: TENCENT.secret_id, secretKey: TENCENT.secret_key }, endpoint, '2019-07-25', { maxTimeoutMs: 5000, maxResponseBytes: 1 << 20, proxy });
}

async function failure(t: CloudTransport, timeoutMs = 3000): Promise<CloudError> {
  const api = t.provider === 'aliyun' ? 'BatchQuerySessionByClientIds' : 'DescribeClientConnections';
  try {
    await t.call({ api, params: { InstanceId: 'x-proxy-test' }, region: 'ap-guangzhou', timeoutMs });
  } catch (err) {
    expect(err).toBeInstanceOf(CloudError);
    return err as CloudError;
  } finally {
    t.close?.();
  }
  throw new Error('the call did not fail');
}

// Host names under .test never resolve: only a proxy can carry these calls.
const HTTPS_TARGET = { aliyun: 'https://onsmqtt.cn-hangzhou.emulator.test', tencent: 'https://mongodb.emulator.test' };
const HTTP_TARGET = { aliyun: 'http://onsmqtt.cn-hangzhou.emulator.test:18080', tencent: 'http://mongodb.emulator.test:18080' };
const SDKS: Sdk[] = ['aliyun', 'tencent'];

describe.each(SDKS)('%s SDK', (sdk) => {
  test('wrong proxy credentials: ProxyAuthRequired, final for the account, not retried; the message names the proxy, never the password', async () => {
    const proxy = await startProxy({ credentials: { user: 'svc', password: 'the-right-one-123' } });
    const wrong = proxy.url.replace('the-right-one-123', PASSWORD);
    for (const [form, endpoint] of [['CONNECT', HTTPS_TARGET[sdk]], ['absolute-form', HTTP_TARGET[sdk]]] as const) {
      const err = await failure(transport(sdk, endpoint, wrong));
      expect(err.code, form).toBe('ProxyAuthRequired');
      expect(err.retryable).toBe(false);
      expect(err.finalForRun).toBe('account');
      expect(err.message).toContain(`proxy http://127.0.0.1:${proxy.port} refused its credentials (407`);
      expect(findSecretLeaks(JSON.stringify(err.toLogObject()) + err.message, { PASSWORD, 'user:password': `svc:${PASSWORD}` })).toEqual([]);
    }
    // The proxy was asked with Basic credentials both ways.
    expect(proxy.refused).toBe(2);
    expect(proxy.authorizations).toEqual(Array(2).fill(`Basic ${Buffer.from(`svc:${PASSWORD}`).toString('base64')}`));
  });

  test('a proxy that refuses CONNECT by policy: ProxyRefused with its status, final; a 502 from it is retryable', async () => {
    const forbidding = await startProxy({ refuseWith: 403 });
    const err = await failure(transport(sdk, HTTPS_TARGET[sdk], forbidding.url));
    expect(err.code).toBe('ProxyRefused');
    expect(err.message).toMatch(new RegExp(`proxy http://127\\.0\\.0\\.1:${forbidding.port} refused CONNECT [a-z.-]+\\.emulator\\.test:443: 403 Refused By Policy`));
    expect([err.retryable, err.finalForRun]).toEqual([false, 'account']);
    const failingUpstream = await startProxy({ refuseWith: 502 });
    const upstreamErr = await failure(transport(sdk, HTTPS_TARGET[sdk], failingUpstream.url));
    expect([upstreamErr.code, upstreamErr.retryable, upstreamErr.finalForRun]).toEqual(['ProxyRefused', true, undefined]);
  });

  test('a proxy nobody listens on: ProxyUnreachable, retryable, for CONNECT and absolute-form alike', async () => {
    const port = await freePort();
    for (const endpoint of [HTTPS_TARGET[sdk], HTTP_TARGET[sdk]]) {
      const err = await failure(transport(sdk, endpoint, `http://u:${PASSWORD}@127.0.0.1:${port}`));
      expect(err.code, endpoint).toBe('ProxyUnreachable');
      expect(err.message).toContain(`cannot reach proxy http://127.0.0.1:${port}: ECONNREFUSED`);
      expect(err.retryable).toBe(true);
      expect(err.message).not.toContain(PASSWORD);
    }
  });

  test('a black-holed proxy: the call ends at its timeout, naming the proxy, and its connection to the proxy is closed', async () => {
    const hole = await startBlackHole();
    for (const endpoint of [HTTPS_TARGET[sdk], HTTP_TARGET[sdk]]) {
      const started = Date.now();
      const err = await failure(transport(sdk, endpoint, hole.url), 400);
      const elapsed = Date.now() - started;
      expect(err.code, endpoint).toBe('Timeout');
      expect(err.message).toContain(`through proxy ${hole.url}`);
      expect(elapsed).toBeGreaterThanOrEqual(390);
      expect(elapsed).toBeLessThan(1500);
    }
    expect(hole.accepted).toBe(2);
    const until = Date.now() + 2000;
    while (hole.open > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(hole.open).toBe(0);
  });

  test('a forward proxy carries absolute-form calls to the emulator: the answer is the cloud\'s', async () => {
    const emu = await emulator({ credentials: [ALIYUN, TENCENT], mqtt: { instances: [{ instance_id: 'post-cn-proxy0001', fleets: [{ group_id: 'GID_sensor', size: 3, online_ratio: 1 }] }] }, mongodb: { instances: [{ instance_id: 'cmgo-proxy001', region: 'ap-guangzhou', client_ips: 3 }] } });
    const proxy = await startProxy({ credentials: { user: 'svc', password: PASSWORD } });
    const endpoint = `${HTTP_TARGET[sdk].replace(':18080', '')}:${new URL(emu.url).port}`;
    const t = transport(sdk, endpoint, proxy.url);
    const body =
      sdk === 'aliyun'
        ? await t.call({ api: 'BatchQuerySessionByClientIds', params: { InstanceId: 'post-cn-proxy0001', ClientIdList: ['GID_sensor@@@dev-000001'] }, timeoutMs: 3000 })
        : await t.call({ api: 'DescribeClientConnections', params: { InstanceId: 'cmgo-proxy001', Limit: 100, Offset: 0 }, region: 'ap-guangzhou', timeoutMs: 3000 });
    t.close?.();
    expect(JSON.stringify(body)).toMatch(sdk === 'aliyun' ? /"OnlineStatus":true/ : /"TotalCount":3/);
    expect(Object.values(proxy.forwarded)).toEqual([1]);
  });
});
