// The real exporter process with HTTPS_PROXY in its environment, as deployed: every job type reaches https://
// endpoints on port 443 through a CONNECT proxy that asks for credentials, with TLS end to end to a front (the
// emulator behind a certificate made for the test, trusted through NODE_EXTRA_CA_CERTS as an operator would trust a
// private CA). The endpoints' names do not resolve, so every call the front served came through the proxy.
import { expect, test } from 'vitest';
import { emulator } from '../helpers/harness';
import { parseExposition } from '../helpers/exposition';
import { startExporter, waitFor } from '../helpers/exporter-process';
import { findSecretLeaks } from '../helpers/secrets';
import { startProxy, startTlsFront } from '../helpers/proxy';

const ALI = { account: 'ali', provider: 'aliyun' as const, access_key_id: 'LTAI-proxy-https', access_key_secret: 'proxy-https-secret-0123' };
const TC = { account: 'tc', provider: 'tencentcloud' as const, secret_id: 'AKID-proxy-https', secret_key: 'proxy-https-tc-key-0123' };
const PASSWORD = 'Pr0xy-https-Pa55word';
const NAMES = { mqtt: 'onsmqtt.cn-hangzhou.emulator.test', das: 'das.emulator.test', mongodb: 'mongodb.emulator.test' };
const APIS = ['BatchQuerySessionByClientIds', 'SendMessage', 'DescribeClientConnections', 'GetRedisAllSession'];
const JOBS = ['fleet', 'canary', 'mongo', 'redis'];

// An https:// proxy adds TLS to the proxy itself (its certificate checked too) around the tunnel's own TLS.
test.each(['http', 'https'])('HTTPS through an %s:// CONNECT proxy with credentials: every call of every job type, TLS verified end to end', async (proxyScheme) => {
  const emu = await emulator({
    credentials: [ALI, TC],
    mqtt: { instances: [{ instance_id: 'post-cn-https0001', region: 'cn-hangzhou', fleets: [{ group_id: 'GID_sensor', size: 20, online_ratio: 0.5 }] }] },
    mongodb: { instances: [{ instance_id: 'cmgo-https001', region: 'ap-guangzhou', client_ips: 12 }] },
    redis: { instances: [{ instance_id: 'r-https001', nodes: 2, sessions: 20, client_ips: 4 }] },
  });
  const front = await startTlsFront(emu.url, Object.values(NAMES));
  const proxy = await startProxy({
    credentials: { user: 'svc', password: PASSWORD },
    route: () => ({ host: '127.0.0.1', port: front.port }),
    tls: proxyScheme === 'https' ? front.issue('proxy', ['IP:127.0.0.1']) : undefined,
  });
  const ids = Array.from({ length: 20 }, (_, i) => `GID_sensor@@@dev-${String(i + 1).padStart(6, '0')}`);
  const yaml = `
accounts:
  - {name: ali, provider: aliyun, access_key_id: ${ALI.access_key_id}, access_key_secret: ${ALI.access_key_secret}}
  - {name: tc, provider: tencentcloud, secret_id: ${TC.secret_id}, secret_key: ${TC.secret_key}}
jobs:
  - {name: fleet, type: aliyun_mqtt_sessions, account: ali, schedule: "*/2 * * * * *", region: cn-hangzhou, endpoint: "https://${NAMES.mqtt}",
     instance_id: post-cn-https0001, client_ids: [${ids.join(', ')}]}
  - {name: canary, type: aliyun_mqtt_probe, account: ali, schedule: "*/2 * * * * *", region: cn-hangzhou, endpoint: "https://${NAMES.mqtt}",
     instance_id: post-cn-https0001, topic: canary/probe}
  - {name: mongo, type: tencentcloud_mongodb_connections, account: tc, schedule: "*/2 * * * * *", region: ap-guangzhou, endpoint: "https://${NAMES.mongodb}",
     instance_ids: [cmgo-https001], page_size: 5}
  - {name: redis, type: aliyun_redis_sessions, account: ali, schedule: "*/2 * * * * *", endpoint: "https://${NAMES.das}", instance_ids: [r-https001]}
`;
  const exporter = await startExporter(yaml, {
    HTTPS_PROXY: proxy.url,
    HTTP_PROXY: '',
    https_proxy: '',
    http_proxy: '',
    NO_PROXY: '',
    no_proxy: '',
    NODE_EXTRA_CA_CERTS: front.caFile,
  });
  let scrape = '';
  try {
    await waitFor(
      'every job succeeded through the proxy',
      async () => {
        scrape = await exporter.scrape();
        const s = parseExposition(scrape);
        return JOBS.every((job) => s.value('cloud_session_exporter_job_success', { job_name: job }) === 1);
      },
      20_000,
    );
  } finally {
    expect((await exporter.terminate()).code).toBe(0);
  }
  const stats = emu.stats();
  const calls = Object.fromEntries(APIS.map((api) => [api, stats.apis[api]?.calls ?? 0]));
  expect(Object.values(calls).every((n) => n > 0)).toBe(true);
  // The front is reachable only through the proxy: it served every call the emulator answered.
  expect(front.served).toEqual(calls);
  // Tunnels to the endpoints' names on 443, kept alive across calls; every one asked with the proxy's credentials.
  expect(Object.keys(proxy.tunnels).sort()).toEqual(Object.values(NAMES).map((n) => `${n}:443`).sort());
  expect(proxy.refused).toBe(0);
  expect(findSecretLeaks(`${exporter.output()}\n${scrape}`, { PASSWORD, 'user:password': `svc:${PASSWORD}` })).toEqual([]);
});
