// ApsaraMQ for MQTT's per-source-IP ceiling (300 calls/s from one IP to all its APIs, or the IP is blocked): the
// exporter paces every MQTT call of the process under it, whatever the account's QPS; the emulator (in its own
// process, so its windows see network-like timing) enforces it and blocks an IP that goes over.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { appFromYaml, emulatorProcess, parseExposition, tempDir } from '../../helpers/harness';
import { buildQuotaPlan, formatQuotaPlan } from '../../../src/core/quota-plan';
import { JOB_TYPES } from '../../../src/apis';
import { parseConfig } from '../../../src/config/load';
import { ENV, INSTANCE, config, scenario } from './fixtures';

type SourceIps = Record<string, Record<string, { limit: number; busiest_window: number; blocked: number }>>;

/** A 600-device fleet polled one device per call (use_batch_api: false: QuerySessionByClientId, 500 QPS per account). */
async function pollSingly(extraTop = '') {
  const proc = await emulatorProcess(scenario({ latency: { min_ms: 5, max_ms: 30 } }, { size: 300 }));
  const dir = tempDir();
  const truth = (await proc.truth()).mqtt[INSTANCE];
  const file = path.join(dir, 'devices.txt');
  fs.writeFileSync(file, Object.keys(truth).join('\n'));
  const yaml = `${extraTop}${config(proc.url, { file, jobExtra: '    use_batch_api: false\n' })}`;
  const t = appFromYaml(yaml, ENV, {}, dir);
  const started = Date.now();
  await t.app.runAllNow();
  const elapsed = Date.now() - started;
  const stats = (await proc.stats()) as Awaited<ReturnType<typeof proc.stats>> & { source_ips: SourceIps };
  await proc.close();
  return { t, truth, elapsed, stats, m: parseExposition(await t.scrape()), yaml, dir };
}

describe('per-source-IP ceiling (ApsaraMQ for MQTT, 300 calls/s)', () => {
  test('600 single-device queries at the account\'s 500 QPS: paced to 300 calls/s from the process, none blocked, every value exact', async () => {
    const { truth, elapsed, stats, m } = await pollSingly();
    const ip = stats.source_ips.mqtt!['127.0.0.1']!;
    console.log(`source IP: 600 calls in ${elapsed} ms, busiest second ${ip.busiest_window} (ceiling ${ip.limit}), blocked ${ip.blocked}`);
    expect(ip.limit).toBe(300);
    expect(ip.busiest_window).toBeLessThanOrEqual(300);
    expect(ip.blocked).toBe(0);
    expect(stats.apis.QuerySessionByClientId!.calls).toBe(600);
    // The ceiling is the pace (600 calls at 300/s), not the account's 500 QPS.
    expect(elapsed).toBeGreaterThan(1_500);
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(1);
    const online = Object.values(truth).filter(Boolean).length;
    expect(m.value('aliyun_mqtt_clients', { group_id: 'GID_sensor', state: 'online' })! + m.value('aliyun_mqtt_clients', { group_id: 'GID_gateway', state: 'online' })!).toBe(online);
  });

  test('an override above the cloud\'s ceiling gets the IP blocked at the emulator, as the cloud would', async () => {
    const { stats, m } = await pollSingly('source_ip_qps: {onsmqtt: 500}\n');
    const ip = stats.source_ips.mqtt!['127.0.0.1']!;
    expect(ip.busiest_window).toBeGreaterThan(300);
    expect(ip.blocked).toBeGreaterThan(0);
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(0);
  });

  test('--config.check shows the ceiling pacing the single-device queries, and billed calls per day and peak TPS per instance', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'devices.txt'), Array.from({ length: 600 }, (_, i) => `GID_sensor@@@dev-${i}`).join('\n'));
    const yaml = `${config('https://onsmqtt.cn-hangzhou.aliyuncs.com', { file: 'devices.txt', jobExtra: '    use_batch_api: false\n    purchased_tps: 1000\n' })}`.replace('schedule: "0 0 1 1 *"', 'schedule: "*/30 * * * * *"');
    const cfg = parseConfig(yaml, path.join(dir, 'c.yml'), { env: ENV, jobTypes: JOB_TYPES });
    const plan = buildQuotaPlan(cfg, JOB_TYPES, {});
    expect(plan.rows).toHaveLength(1);
    expect(plan.rows[0]).toMatchObject({ api: 'QuerySessionByClientId', qps: 300, callsPerRun: 600, billedPerDay: 600 * 2880, billedInstance: INSTANCE, peakTps: 300, ceiling: { product: 'onsmqtt', qps: 300 } });
    expect(plan.ceilings).toEqual([{ product: 'onsmqtt', qps: 300, apis: ['QuerySessionByClientId'], averagePerSecond: 20, jobs: ['fleet'] }]);
    // 300 billed calls in one second is above the default max_tps_share 0.25 of 1,000 purchased TPS.
    expect(plan.warnings).toEqual([expect.stringMatching(/^instance post-cn-test0001: jobs fleet may send 300 billed calls in one second, above max_tps_share 0.25 of its 1000 purchased messaging TPS \(250\)/)]);
    const text = formatQuotaPlan(plan);
    expect(text).toContain('300 (per-IP)');
    expect(text).toContain(`300 (${INSTANCE})`);
    expect(text).toContain('onsmqtt: 300 QPS over QuerySessionByClientId; jobs fleet use 20.0 calls/s on average');
  });
});

describe('quota_group: two accounts of one cloud account share one quota', () => {
  /** Two exporter accounts with the same AccessKey (the cloud counts per account UID), a job each on the same fleet. */
  async function twoAccounts(group: string) {
    const proc = await emulatorProcess(scenario({ rate_limits: { BatchQuerySessionByClientIds: 10 }, latency: { min_ms: 5, max_ms: 20 } }, { size: 150 }));
    const dir = tempDir();
    const truth = (await proc.truth()).mqtt[INSTANCE];
    fs.writeFileSync(path.join(dir, 'devices.txt'), Object.keys(truth).join('\n'));
    const account = (name: string) => `  - {name: ${name}, provider: aliyun, access_key_id: "\${AK}", access_key_secret: "\${SK}", qps: {BatchQuerySessionByClientIds: 10}${group}}\n`;
    const job = (name: string, acc: string) =>
      `  - {name: ${name}, type: aliyun_mqtt_sessions, account: ${acc}, schedule: "0 0 1 1 *", timeout: 60s, region: cn-hangzhou, endpoint: "${proc.url}", instance_id: ${INSTANCE}, client_ids_file: devices.txt, labels: {copy: ${name}}}\n`;
    const t = appFromYaml(`accounts:\n${account('one')}${account('two')}jobs:\n${job('a', 'one')}${job('b', 'two')}`, ENV, {}, dir);
    await t.app.runAllNow();
    const stats = await proc.stats();
    await proc.close();
    return { batch: stats.apis.BatchQuerySessionByClientIds!, m: parseExposition(await t.scrape()) };
  }

  test('in one quota_group: one limiter, at most 10 calls in any second at the cloud, none throttled', async () => {
    const { batch, m } = await twoAccounts(', quota_group: uid-1234');
    expect(batch.calls).toBe(60);
    expect(batch.throttled).toBe(0);
    expect(batch.busiest_window).toBeLessThanOrEqual(10);
    expect(m.value('cloud_session_exporter_ratelimit_qps', { account: 'uid-1234', api: 'BatchQuerySessionByClientIds' })).toBe(10);
  });

  test('without it: each account paces itself, and together they get throttled (the control)', async () => {
    const { batch } = await twoAccounts('');
    expect(batch.throttled).toBeGreaterThan(0);
  });
});
