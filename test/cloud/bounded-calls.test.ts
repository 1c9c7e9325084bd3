// Defects 1 and 6 of the hardening issue: a slow or endless answer must never wedge a transport, a run or a
// shutdown, and a huge body must fail alone without holding memory.
import { afterEach, describe, expect, test } from 'vitest';
import { AliyunRpcTransport } from '../../src/cloud/providers/aliyun';
import { TencentTransport } from '../../src/cloud/providers/tencent';
import { createApiClient } from '../../src/cloud/client';
import { createApiMetrics } from '../../src/cloud/api-metrics';
import { CloudError, RunAborted } from '../../src/cloud/errors';
import { WindowRateLimiter } from '../../src/cloud/rate-limiter';
import { Registry } from 'prom-client';
import { JobRunner } from '../../src/core/job-runner';
import { createSelfMetrics } from '../../src/metrics/self-metrics';
import { SnapshotStore } from '../../src/metrics/snapshot-store';
import { createLogger } from '../../src/util/log';
import type { Job } from '../../src/core/job-type';
import { startBadServer, type BadServer } from '../helpers/bad-server';
import { ALIYUN, emulator } from '../helpers/harness';
import type { Emulator } from '../../emulator/server';

const INSTANCE = 'post-cn-bound0001';
const SCENARIO = { credentials: [ALIYUN], mqtt: { instances: [{ instance_id: INSTANCE, fleets: [{ group_id: 'GID_sensor', size: 10, online_ratio: 0.5 }] }] } };
const IDS = Array.from({ length: 10 }, (_, i) => `GID_sensor@@@dev-${String(i + 1).padStart(6, '0')}`);

let bad: BadServer | undefined;
let emu: Emulator | undefined;
afterEach(async () => {
  await bad?.close();
  await emu?.close();
  bad = emu = undefined;
});

async function settleAll(promises: Array<Promise<unknown>>): Promise<PromiseSettledResult<unknown>[]> {
  return Promise.allSettled(promises);
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

const aliyun = (url: string, maxBytes = 64 << 20) => new AliyunRpcTransport({ accessKeyId: ALIYUN.access_key_id, accessKeySecret: ALIYUN.access_key_secret }, url, '2020-04-20', maxBytes);
const batchCall = (timeoutMs: number, signal?: AbortSignal) => ({ api: 'BatchQuerySessionByClientIds', params: { InstanceId: INSTANCE, ClientIdList: IDS }, timeoutMs, signal });

describe('every exchange is bounded, and ending it frees its socket', () => {
  test('Alibaba: 300 calls to a server that drips its body all end as Timeout on time, their sockets close, and the next call gets through', async () => {
    emu = await emulator(SCENARIO);
    bad = await startBadServer({ mode: 'drip', upstream: emu.url });
    const t = aliyun(bad.url);
    const started = Date.now();
    // More calls than the agent's 256 sockets: before the fix, the 44 queued behind the stuck ones waited forever.
    const results = await settleAll(Array.from({ length: 300 }, () => t.call(batchCall(300))));
    const elapsed = Date.now() - started;
    expect(results.every((r) => r.status === 'rejected' && (r.reason as CloudError).code === 'Timeout')).toBe(true);
    expect(elapsed).toBeLessThan(3000);
    expect(await until(() => bad!.openConnections === 0, 2000)).toBe(true);
    bad.mode = 'proxy';
    const body = (await t.call(batchCall(2000))) as { OnlineStatusList: unknown[] };
    expect(body.OnlineStatusList).toHaveLength(10);
    t.close();
  });

  test('Tencent: calls to a black hole end as Timeout on time and their sockets close', async () => {
    bad = await startBadServer({ mode: 'blackhole' });
    const t = new TencentTransport({ secretId: 'AKIDbound', secretKey: 'bound-secret-0123456789' }, bad.url, '2019-07-25', { maxTimeoutMs: 10_000, maxResponseBytes: 1 << 20 });
    const started = Date.now();
    // More than the agent's 64 sockets.
    const results = await settleAll(Array.from({ length: 80 }, () => t.call({ api: 'DescribeClientConnections', params: { Region: 'ap-guangzhou', InstanceId: 'cmgo-x' }, timeoutMs: 300 })));
    expect(results.every((r) => r.status === 'rejected' && (r.reason as CloudError).code === 'Timeout')).toBe(true);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await until(() => bad!.openConnections === 0, 2000)).toBe(true);
    t.close();
  });

  test('an aborted run ends its in-flight calls at once, with the abort reason as the code', async () => {
    bad = await startBadServer({ mode: 'drip' });
    const t = aliyun(bad.url);
    const ctl = new AbortController();
    const call = t.call(batchCall(60_000, ctl.signal));
    await until(() => bad!.openConnections === 1, 2000);
    const started = Date.now();
    ctl.abort(new RunAborted('Shutdown'));
    await expect(call).rejects.toMatchObject({ code: 'Shutdown', retryable: false });
    expect(Date.now() - started).toBeLessThan(100);
    expect(await until(() => bad!.openConnections === 0, 2000)).toBe(true);
    t.close();
  });

  test.each(['huge', 'huge-chunked'] as const)('a body beyond the cap (%s) fails as ResponseTooLarge, once (not retried), and stops reading', async (mode) => {
    bad = await startBadServer({ mode, hugeBytes: 200 * 1024 * 1024 });
    const registry = new Registry();
    const metrics = createApiMetrics(registry);
    const client = createApiClient({ account: 'a', transport: aliyun(bad.url, 1024 * 1024), limiterFor: () => new WindowRateLimiter({ rate: 100 }), metrics, requestTimeoutMs: 10_000 });
    const started = Date.now();
    const err = await client.call({ api: 'BatchQuerySessionByClientIds', params: {}, deadline: Date.now() + 10_000, parse: (b) => b }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CloudError);
    expect((err as CloudError).code).toBe('ResponseTooLarge');
    expect(Date.now() - started).toBeLessThan(2000);
    const text = await registry.metrics();
    expect(text).toContain('cloud_session_exporter_api_requests_total{account="a",api="BatchQuerySessionByClientIds",code="ResponseTooLarge"} 1');
    expect(text).not.toMatch(/cloud_session_exporter_api_retries_total\{[^}]*\} [1-9]/);
    expect(bad.accepted).toBe(1);
    expect(await until(() => bad!.openConnections === 0, 2000)).toBe(true);
  });

  test('a compressed answer nobody asked for is refused (a small body could inflate without bound)', async () => {
    const http = await import('node:http');
    const zlib = await import('node:zlib');
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(zlib.gzipSync(JSON.stringify({ RequestId: 'x', OnlineStatusList: [] })));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const t = aliyun(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
    try {
      await expect(t.call(batchCall(2000))).rejects.toMatchObject({ code: 'MalformedResponse' });
    } finally {
      t.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('a run that passes its deadline ends, and shutdown is bounded whatever the job does', () => {
  /** A job that ignores its signal and never returns: the worst a job module could do. */
  const stuck: Job = { instanceIds: ['i-1'], run: () => new Promise(() => undefined) };

  function runnerFor(job: Job, timeout: string | undefined) {
    const metrics = createSelfMetrics({ version: 't', revision: 't' }, { processMetrics: false });
    const logs: string[] = [];
    const logger = createLogger({ level: 'debug', format: 'json', write: (l) => void logs.push(l) });
    const config = { name: 'stuck', type: 'x', schedule: '0 0 1 1 *', labels: {}, jitter: 0, timeout: timeout === undefined ? undefined : Number(timeout) };
    return { runner: new JobRunner({ config, job, instanceIds: job.instanceIds, store: new SnapshotStore(), metrics, logger }), metrics, logs };
  }

  test('the run is abandoned 500 ms after its deadline: a failure, and the next run is not an overlap', async () => {
    const { runner, metrics } = runnerFor(stuck, '300');
    const started = Date.now();
    await runner.trigger();
    expect(Date.now() - started).toBeGreaterThanOrEqual(790);
    expect(Date.now() - started).toBeLessThan(1500);
    await runner.trigger();
    const text = await metrics.registry.metrics();
    expect(text).toContain('cloud_session_exporter_job_runs_total{job_name="stuck",result="failure"} 2');
    expect(text).toContain('cloud_session_exporter_job_runs_total{job_name="stuck",result="skipped_overlap"} 0');
    expect(text).toContain('cloud_session_exporter_job_success{job_name="stuck"} 0');
    await runner.stop(0);
  });

  test('stop() returns within the grace period plus one second while a run is stuck, and says it stopped for shutdown', async () => {
    const { runner, logs } = runnerFor(stuck, '60000');
    runner.start();
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await runner.stop(1000);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(990);
    expect(took).toBeLessThan(2000);
    const line = logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'run stopped for shutdown');
    expect(line?.level).toBe('info');
  });
});

describe('the canary subscriber is bounded too', () => {
  test('against a black-holed broker: waiting for it ends on time and closing returns at once', async () => {
    const { ProbeSubscriber } = await import('../../src/apis/aliyun-mqtt-probe/subscriber');
    bad = await startBadServer({ mode: 'blackhole' });
    const sub = new ProbeSubscriber({ url: `mqtt://127.0.0.1:${bad.port}`, clientId: 'GID_probe@@@x', topic: 't', logger: createLogger({ level: 'error' }), onMessage: () => undefined, connectTimeoutMs: 60_000 });
    sub.start();
    let started = Date.now();
    expect(await sub.waitReady(300)).toBe(false);
    expect(Date.now() - started).toBeLessThan(600);
    started = Date.now();
    await sub.close();
    expect(Date.now() - started).toBeLessThan(300);
    expect(await until(() => bad!.openConnections === 0, 2000)).toBe(true);
  });
});
