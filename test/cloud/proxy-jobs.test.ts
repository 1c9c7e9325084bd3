// Every job type's cloud calls through a forward proxy, counted at the proxy and at the emulator: the environment's
// HTTP_PROXY (the emulator speaks plain HTTP), NO_PROXY exemptions, the account's proxy_url overriding the
// environment, proxy_url: "" for none, and proxy credentials that never reach logs, metrics or errors.
import { describe, expect, test } from 'vitest';
import { appFromYaml, emulator, scrapeApp } from '../helpers/harness';
import { parseExposition } from '../helpers/exposition';
import { findSecretLeaks } from '../helpers/secrets';
import { freePort } from '../helpers/servers';
import { startProxy } from '../helpers/proxy';
import type { Emulator } from '../../emulator/server';

const ALI = { account: 'ali', provider: 'aliyun' as const, access_key_id: 'LTAI-proxy-jobs', access_key_secret: 'proxy-jobs-secret-0123' };
const TC = { account: 'tc', provider: 'tencentcloud' as const, secret_id: 'AKID-proxy-jobs', secret_key: 'proxy-jobs-tc-key-0123' };
const PASSWORD = 'Pr0xy-jobs-Pa55word';
const SCENARIO = {
  credentials: [ALI, TC],
  mqtt: { instances: [{ instance_id: 'post-cn-proxy0001', region: 'cn-hangzhou', fleets: [{ group_id: 'GID_sensor', size: 35, online_ratio: 0.5 }] }] },
  mongodb: { instances: [{ instance_id: 'cmgo-proxy001', region: 'ap-guangzhou', client_ips: 25 }] },
  redis: { instances: [{ instance_id: 'r-proxy001', nodes: 2, sessions: 30, client_ips: 5 }] },
};
/** One API per job type: what the emulator counts per API and the proxy per action. */
const APIS = ['BatchQuerySessionByClientIds', 'SendMessage', 'DescribeClientConnections', 'GetRedisAllSession'];

interface Hosts {
  mqtt: string;
  das: string;
  mongodb: string;
}
/** Names under .test never resolve: a call to them that succeeds went through the proxy. */
const UNRESOLVABLE: Hosts = { mqtt: 'onsmqtt.cn-hangzhou.emulator.test', das: 'das.emulator.test', mongodb: 'mongodb.emulator.test' };

function configYaml(port: string, hosts: Hosts, account: { ali?: string; tc?: string } = {}): string {
  return `
accounts:
  - name: ali
    provider: aliyun
    access_key_id: ${ALI.access_key_id}
    access_key_secret: ${ALI.access_key_secret}
${account.ali ?? ''}
  - name: tc
    provider: tencentcloud
    secret_id: ${TC.secret_id}
    secret_key: ${TC.secret_key}
${account.tc ?? ''}
jobs:
  - {name: fleet, type: aliyun_mqtt_sessions, account: ali, schedule: "0 0 0 1 1 *", region: cn-hangzhou, endpoint: "http://${hosts.mqtt}:${port}",
     instance_id: post-cn-proxy0001, client_ids: [${Array.from({ length: 35 }, (_, i) => `GID_sensor@@@dev-${String(i + 1).padStart(6, '0')}`).join(', ')}]}
  - {name: canary, type: aliyun_mqtt_probe, account: ali, schedule: "0 0 0 1 1 *", region: cn-hangzhou, endpoint: "http://${hosts.mqtt}:${port}",
     instance_id: post-cn-proxy0001, topic: canary/probe}
  - {name: mongo, type: tencentcloud_mongodb_connections, account: tc, schedule: "0 0 0 1 1 *", region: ap-guangzhou, endpoint: "http://${hosts.mongodb}:${port}",
     instance_ids: [cmgo-proxy001], page_size: 10}
  - {name: redis, type: aliyun_redis_sessions, account: ali, schedule: "0 0 0 1 1 *", endpoint: "http://${hosts.das}:${port}", instance_ids: [r-proxy001]}
`;
}

async function runOnce(emu: Emulator, yaml: string, proxyEnv: Record<string, string>): Promise<{ calls: Record<string, number>; jobSuccess: Record<string, number | undefined>; text: string }> {
  emu.resetStats();
  const { app, logs } = appFromYaml(yaml, {}, { proxyEnv });
  await app.runAllNow();
  const scrape = await scrapeApp(app);
  await app.stop(0);
  const samples = parseExposition(scrape);
  const jobSuccess = Object.fromEntries(['fleet', 'canary', 'mongo', 'redis'].map((job) => [job, samples.value('cloud_session_exporter_job_success', { job_name: job })]));
  const stats = emu.stats();
  const calls = Object.fromEntries(APIS.map((api) => [api, stats.apis[api]?.calls ?? 0]));
  return { calls, jobSuccess, text: `${logs.join('\n')}\n${scrape}` };
}

const ALL_OK = { fleet: 1, canary: 1, mongo: 1, redis: 1 };

describe('every job type through a proxy', () => {
  test('HTTP_PROXY carries every call of every job type: the proxy forwarded exactly what the emulator answered', async () => {
    const emu = await emulator(SCENARIO);
    const proxy = await startProxy();
    const port = new URL(emu.url).port;
    const run = await runOnce(emu, configYaml(port, UNRESOLVABLE), { HTTP_PROXY: proxy.url, HTTPS_PROXY: 'http://127.0.0.1:1' });
    expect(run.jobSuccess).toEqual(ALL_OK);
    // 35 devices in batches of 10, one probe, 25 client IPs in pages of 10, one DAS call.
    expect(run.calls).toEqual({ BatchQuerySessionByClientIds: 4, SendMessage: 1, DescribeClientConnections: 3, GetRedisAllSession: 1 });
    expect(proxy.forwarded).toEqual(run.calls);
  });

  test('NO_PROXY exempts the hosts it lists: those calls go direct, the others through the proxy', async () => {
    const emu = await emulator(SCENARIO);
    const proxy = await startProxy();
    const port = new URL(emu.url).port;
    // MongoDB and DAS at 127.0.0.1 (reachable directly) and listed in no_proxy; MQTT at a name only the proxy can reach.
    const hosts = { ...UNRESOLVABLE, mongodb: '127.0.0.1', das: 'localhost' };
    const run = await runOnce(emu, configYaml(port, hosts), { HTTP_PROXY: proxy.url, no_proxy: `localhost, 127.0.0.1:${port}` });
    expect(run.jobSuccess).toEqual(ALL_OK);
    expect(proxy.forwarded).toEqual({ BatchQuerySessionByClientIds: run.calls.BatchQuerySessionByClientIds, SendMessage: 1 });
    expect(run.calls.DescribeClientConnections).toBe(3);
    expect(run.calls.GetRedisAllSession).toBe(1);
  });

  test("proxy_url overrides the environment (HTTP_PROXY and NO_PROXY), with credentials that never show in logs or metrics", async () => {
    const emu = await emulator(SCENARIO);
    const proxy = await startProxy({ credentials: { user: 'svc', password: PASSWORD } });
    const dead = `http://127.0.0.1:${await freePort()}`;
    const port = new URL(emu.url).port;
    const proxyKey = `    proxy_url: "${proxy.url}"`;
    const run = await runOnce(emu, configYaml(port, UNRESOLVABLE, { ali: proxyKey, tc: proxyKey }), { HTTP_PROXY: dead, NO_PROXY: '*' });
    expect(run.jobSuccess).toEqual(ALL_OK);
    expect(proxy.forwarded).toEqual(run.calls);
    expect(proxy.refused).toBe(0);
    expect(findSecretLeaks(run.text, { PASSWORD, 'user:password': `svc:${PASSWORD}` })).toEqual([]);
  });

  test('wrong proxy credentials fail each job once with ProxyAuthRequired (not retried), and the password shows nowhere', async () => {
    const emu = await emulator(SCENARIO);
    const proxy = await startProxy({ credentials: { user: 'svc', password: 'the-right-one-456' } });
    const proxyKey = `    proxy_url: "${proxy.url.replace('the-right-one-456', PASSWORD)}"`;
    const port = new URL(emu.url).port;
    const run = await runOnce(emu, configYaml(port, UNRESOLVABLE, { ali: proxyKey, tc: proxyKey }), {});
    expect(run.jobSuccess).toEqual({ fleet: 0, canary: 0, mongo: 0, redis: 0 });
    expect(Object.values(run.calls).every((n) => n === 0)).toBe(true);
    // One refused call per job: a 407 is final for the account and API for the rest of the run (4 batches → 1 call).
    expect(proxy.refused).toBe(4);
    expect(run.text).toMatch(/cloud_session_exporter_api_requests_total\{[^}]*code="ProxyAuthRequired"[^}]*\} 1/);
    expect(run.text).toContain(`refused its credentials (407`);
    expect(findSecretLeaks(run.text, { PASSWORD, 'user:password': `svc:${PASSWORD}` })).toEqual([]);
  });

  test('an unusable proxy variable fails the calls it would carry as ProxyMisconfigured, naming the variable and never its value', async () => {
    const emu = await emulator(SCENARIO);
    const port = new URL(emu.url).port;
    const hosts = { mqtt: '127.0.0.1', das: '127.0.0.1', mongodb: '127.0.0.1' };
    const run = await runOnce(emu, configYaml(port, hosts), { http_proxy: `socks5://svc:${PASSWORD}@127.0.0.1:1080` });
    expect(run.jobSuccess).toEqual({ fleet: 0, canary: 0, mongo: 0, redis: 0 });
    expect(Object.values(run.calls).every((n) => n === 0)).toBe(true);
    expect(run.text).toContain('not sent: http_proxy has the scheme socks5: only http:// and https:// proxies are supported');
    expect(run.text).toMatch(/cloud_session_exporter_api_requests_total\{[^}]*code="ProxyMisconfigured"[^}]*\} 1/);
    expect(findSecretLeaks(run.text, { PASSWORD })).toEqual([]);
  });

  test('proxy_url: "" reaches the cloud directly whatever the environment says', async () => {
    const emu = await emulator(SCENARIO);
    const dead = `http://127.0.0.1:${await freePort()}`;
    const port = new URL(emu.url).port;
    const none = '    proxy_url: ""';
    const run = await runOnce(emu, configYaml(port, { mqtt: '127.0.0.1', das: '127.0.0.1', mongodb: '127.0.0.1' }, { ali: none, tc: none }), { HTTP_PROXY: dead, http_proxy: dead });
    expect(run.jobSuccess).toEqual(ALL_OK);
    expect(run.calls.BatchQuerySessionByClientIds).toBe(4);
  });
});
