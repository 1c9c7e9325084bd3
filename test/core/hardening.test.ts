// Hardening defects 3, 4, 5, 7 and 8, and the weaknesses fixed with them: each test failed on the code before the fix.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { LimiterPool, TransportPool } from '../../src/cloud/accounts';
import { createApiMetrics } from '../../src/cloud/api-metrics';
import { rateRule } from '../../src/cloud/rate';
import { WindowRateLimiter } from '../../src/cloud/rate-limiter';
import { parseConfig } from '../../src/config/load';
import { JOB_TYPES } from '../../src/apis';
import { readInventorySync, InventoryLoader } from '../../src/apis/aliyun-mqtt-sessions/inventory';
import { createLogger } from '../../src/util/log';
import { BinaryGaugeLines } from '../../src/metrics/binary-gauge-lines';
import { snapshotExposition } from '../../src/metrics/exposition';
import { FamilyBuilder } from '../../src/metrics/family';
import { SnapshotStore } from '../../src/metrics/snapshot-store';
import { buildQuotaPlan, formatQuotaPlan } from '../../src/core/quota-plan';
import { runDeadlineMs } from '../../src/util/schedule';
import { acceptsGzip } from '../../src/core/http';
import { parseFlags } from '../../src/main';
import { Registry } from 'prom-client';
import { ALIYUN, ALIYUN_ACCOUNT_YAML, TENCENT, appFromYaml, emulator, parseExposition, tempDir } from '../helpers/harness';
import { runExporter as run } from '../helpers/exporter-process';

const ENV = { AK: ALIYUN.access_key_id, SK: ALIYUN.access_key_secret, TID: TENCENT.secret_id, TKEY: TENCENT.secret_key };
const INSTANCE = 'post-cn-hard0001';
const IDS = Array.from({ length: 20 }, (_, i) => `GID_sensor@@@dev-${String(i + 1).padStart(6, '0')}`);
const MQTT_SCENARIO = { credentials: [ALIYUN, TENCENT], mqtt: { instances: [{ instance_id: INSTANCE, fleets: [{ group_id: 'GID_sensor', size: 20, online_ratio: 0.5 }] }] } };

function mqttJob(url: string, extra = ''): string {
  return `accounts:
${ALIYUN_ACCOUNT_YAML}jobs:
  - name: fleet
    type: aliyun_mqtt_sessions
    account: ${ALIYUN.account}
    schedule: "0 0 1 1 *"
    timeout: 10s
    region: cn-hangzhou
    endpoint: ${url}
    instance_id: ${INSTANCE}${extra}
`;
}


describe('defect 3: a rate below 1 per second', () => {
  test('0.5 is one call per 2 s, stated once: the limiter, the pool and the plan agree', async () => {
    expect(rateRule(0.5)).toEqual({ calls: 1, windowMs: 2000 });
    expect(rateRule(2.5)).toEqual({ calls: 2, windowMs: 1000 });
    const pool = new LimiterPool(createApiMetrics(new Registry()));
    // Before the fix the pool compared Math.floor(0.5) = 0 with the limiter's clamped 1 and built a new limiter,
    // cancelling the queued calls, on every call.
    expect(pool.get('a', 'DescribeClientConnections', 0.5)).toBe(pool.get('a', 'DescribeClientConnections', 0.5));
    const limiter = new WindowRateLimiter({ rate: 0.5 });
    const starts: number[] = [];
    await Promise.all([0, 1].map(() => limiter.schedule(async () => void starts.push(Date.now()))));
    expect(starts[1] - starts[0]).toBeGreaterThanOrEqual(1990);
  });

  test('a MongoDB job at qps 0.5 polls both its instances (the calls are not cancelled), and the plan shows 0.50', async () => {
    const emu = await emulator({ credentials: [ALIYUN, TENCENT], mongodb: { instances: [{ instance_id: 'cmgo-a', region: 'ap-guangzhou', client_ips: 3 }, { instance_id: 'cmgo-b', region: 'ap-guangzhou', client_ips: 3 }] } });
    const yaml = `accounts:
  - {name: tc, provider: tencentcloud, secret_id: "\${TID}", secret_key: "\${TKEY}", qps: {DescribeClientConnections: 0.5}}
jobs:
  - name: mongo
    type: tencentcloud_mongodb_connections
    account: tc
    schedule: "0 0 1 1 *"
    timeout: 10s
    region: ap-guangzhou
    endpoint: ${emu.url}
    instance_ids: [cmgo-a, cmgo-b]
`;
    const t = appFromYaml(yaml, ENV);
    await t.app.runAllNow();
    const m = parseExposition(await t.scrape());
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'mongo' })).toBe(1);
    expect(m.value('tencentcloud_mongodb_client_ips', { instance_id: 'cmgo-b' })).toBe(3);
    const plan = buildQuotaPlan(parseConfig(yaml, 'x.yml', { env: ENV, jobTypes: JOB_TYPES }), JOB_TYPES);
    expect(plan.rows[0]).toMatchObject({ qps: 0.5, shortestCycleMs: 4000 });
    expect(formatQuotaPlan(plan)).toMatch(/DescribeClientConnections\s+0\.50\s/);
  });
});

describe('defect 4: staleness lasts as long as the data are missing, per instance too', () => {
  test('job_stale and instance_stale stay 1 on every scrape until a poll succeeds again', async () => {
    const emu = await emulator(MQTT_SCENARIO);
    let clock = Date.now();
    const t = appFromYaml(mqttJob(emu.url, `\n    stale_after: 60s\n    client_ids: ${JSON.stringify(IDS)}`), ENV, { now: () => clock });
    await t.app.runAllNow();
    emu.setFaults({ BatchQuerySessionByClientIds: { error_rates: { ParameterCheckFailed: 1 } } });
    clock += 61_000;
    await t.app.runAllNow();
    for (let scrape = 0; scrape < 3; scrape++) {
      const m = parseExposition(await t.scrape());
      expect(m.value('cloud_session_exporter_job_stale', { job_name: 'fleet' })).toBe(1);
      expect(m.value('cloud_session_exporter_instance_stale', { job_name: 'fleet', instance_id: INSTANCE })).toBe(1);
    }
    emu.setFaults({});
    await t.app.runAllNow();
    const m = parseExposition(await t.scrape());
    expect(m.value('cloud_session_exporter_job_stale', { job_name: 'fleet' })).toBe(0);
    expect(m.value('cloud_session_exporter_instance_stale', { job_name: 'fleet', instance_id: INSTANCE })).toBe(0);
  });
});

describe('defect 5: two jobs that would emit the same series', () => {
  const job = (name: string, labels = '') => `
  - name: ${name}
    type: aliyun_redis_sessions
    account: ${ALIYUN.account}
    schedule: "0 * * * *"
    instance_ids: [r-1, r-2]${labels}`;
  const yaml = (jobs: string) => `accounts:\n${ALIYUN_ACCOUNT_YAML}jobs:${jobs}\n`;

  test('are rejected, naming both jobs and their lines', () => {
    expect(() => parseConfig(yaml(job('a') + job('b').replace('[r-1, r-2]', '[r-3, r-2]')), 'x.yml', { env: ENV, jobTypes: JOB_TYPES })).toThrow(
      /jobs\[1\] \(line 12\): jobs "a" \(line 7\) and "b" both report aliyun_redis_sessions for instance r-2 with the same labels/,
    );
  });

  test('are accepted when a static label tells them apart', () => {
    expect(() => parseConfig(yaml(job('a') + job('b', '\n    labels: {view: b}')), 'x.yml', { env: ENV, jobTypes: JOB_TYPES })).not.toThrow();
  });
});

describe('defect 7: --config.check and the run see the same inventory', () => {
  test('one parser: a 5-line file is counted the same by the plan and by the run', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'devices.txt');
    fs.writeFileSync(file, 'GID_sensor@@@a\nnot-an-id\nGID_sensor@@@b  # comment\nGID_x@@@short-group\n\n');
    const cfg = parseConfig(mqttJob('http://127.0.0.1:1', `\n    client_ids_file: devices.txt`), path.join(dir, 'c.yml'), { env: ENV, jobTypes: JOB_TYPES, checkFiles: true });
    const plan = buildQuotaPlan(cfg, JOB_TYPES);
    const run = await new InventoryLoader([], file, createLogger({ level: 'error' })).load();
    expect(run.size).toBe(2);
    expect(run.invalid).toBe(2);
    expect(readInventorySync([], file).inventory.size).toBe(2);
    expect(plan.rows[0].basis).toBe('2 devices / 10 per call');
    expect(cfg.checkNotes.join('\n')).toMatch(/2 device\(s\) in 1 group\(s\)[\s\S]*2 invalid client ID\(s\) will be skipped, e\.g\. devices\.txt:2 "not-an-id"/);
  });

  test.each([
    ['missing', (dir: string) => path.join(dir, 'nope.txt'), 'ENOENT'],
    ['a directory', (dir: string) => dir, 'EISDIR'],
  ])('--config.check fails when client_ids_file is %s', async (_what, target, code) => {
    const dir = tempDir();
    const config = path.join(dir, 'c.yml');
    fs.writeFileSync(config, mqttJob('http://127.0.0.1:1', `\n    client_ids_file: ${target(dir)}`));
    const r = await run([`--config.file=${config}`, '--config.check'], ENV);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`jobs\\[0\\]\\.client_ids_file \\(line \\d+\\): cannot read .*: ${code}`));
  });

  test('/-/ready is 503 while a job cannot read its inventory, and 200 once it can', async () => {
    const emu = await emulator(MQTT_SCENARIO);
    const dir = tempDir();
    const t = appFromYaml(mqttJob(emu.url, '\n    client_ids_file: devices.txt'), ENV, {}, dir);
    const addr = await t.app.listen('127.0.0.1:0');
    await t.app.runAllNow();
    expect((await fetch(`http://127.0.0.1:${addr.port}/-/ready`)).status).toBe(503);
    fs.writeFileSync(path.join(dir, 'devices.txt'), IDS.join('\n'));
    await t.app.runAllNow();
    expect((await fetch(`http://127.0.0.1:${addr.port}/-/ready`)).status).toBe(200);
  });
});

describe('defect 8: reloads do not leak sockets', () => {
  const openFds = () => fs.readdirSync('/proc/self/fd').length;

  test('1,000 reloads that replace a job each time: open transports and fds stay flat', async () => {
    const emu = await emulator(MQTT_SCENARIO);
    const transports = new TransportPool();
    const base = mqttJob(emu.url, `\n    client_ids: ${JSON.stringify(IDS)}`);
    const t = appFromYaml(base, ENV, { transportPool: transports });
    await t.app.runAllNow();
    const before = openFds();
    for (let i = 1; i <= 1000; i++) {
      // Alternating request_timeout: a new account setting, so the job and its transport are replaced each time.
      fs.writeFileSync(t.configFile, base.replace('access_key_secret: ${SK}', `access_key_secret: \${SK}\n    request_timeout: ${i % 2 ? 6 : 5}s`));
      expect((await t.app.reload()).ok).toBe(true);
      if (i % 100 === 0) await t.app.runAllNow();
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(transports.size).toBe(1);
    expect(openFds() - before).toBeLessThanOrEqual(5);
  });
});

describe('weaknesses fixed with the defects', () => {
  test('a scrape shows one poll whole: a poll finishing mid-scrape patches a copy', async () => {
    const lines = new BinaryGaugeLines('online', 'h');
    const store = new SnapshotStore();
    const labels = (i: number) => `id="${i}"`;
    const put = async (v: number) => {
      const fam = await lines.render('k', 3, labels, Uint8Array.of(v, v, v));
      store.put('j', 'i', [fam, new FamilyBuilder('online_count', 'h', 'gauge').sample('', v * 3).build()], 0);
    };
    await put(1);
    const scrape = snapshotExposition('', store);
    // The poll lands after the scrape took its snapshot, before it streamed anything.
    await put(0);
    const text = [...scrape].join('');
    expect(text).toContain('online{id="0"} 1\n');
    expect(text).toContain('online_count 3\n');
  });

  test('the default deadline leaves room for the next tick', () => {
    expect(runDeadlineMs({ schedule: '*/30 * * * * *', jitter: 0 })).toBe(27_000);
    expect(runDeadlineMs({ schedule: '0 * * * *', jitter: 60_000 })).toBe(3_535_000);
    expect(runDeadlineMs({ schedule: '* * * * * *', jitter: 0, timeout: 5000 })).toBe(5000);
  });

  test('after a signature error the run sends no more calls', async () => {
    const emu = await emulator(MQTT_SCENARIO);
    const t = appFromYaml(mqttJob(emu.url, `\n    client_ids: ${JSON.stringify(Array.from({ length: 500 }, (_, i) => `GID_sensor@@@x-${i}`))}`), { ...ENV, SK: 'a-wrong-secret-0123' });
    await t.app.runAllNow();
    const m = parseExposition(await t.scrape());
    expect(m.value('cloud_session_exporter_api_requests_total', { api: 'BatchQuerySessionByClientIds', code: 'SignatureDoesNotMatch' })).toBeGreaterThanOrEqual(1);
    // 50 batches in the pool; before, every one was sent and refused.
    expect(emu.stats().apis.BatchQuerySessionByClientIds.calls).toBeLessThanOrEqual(3);
  });

  test('a big inventory with many bad lines logs the first few with their lines and one summary', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'devices.txt');
    fs.writeFileSync(file, Array.from({ length: 2000 }, (_, i) => (i % 2 ? `GID_sensor@@@d${i}` : `bad line ${i}`)).join('\n'));
    const logs: string[] = [];
    const inv = await new InventoryLoader([], file, createLogger({ format: 'json', write: (l) => void logs.push(l) })).load();
    expect(inv.invalid).toBe(1000);
    expect(logs).toHaveLength(6);
    expect(JSON.parse(logs[0])).toMatchObject({ where: 'devices.txt:1', client_id: 'bad line 0' });
    expect(JSON.parse(logs[5])).toMatchObject({ invalid: 1000, valid: 1000, shown: 5 });
  });

  test('control characters from an inventory line are escaped in logfmt', () => {
    const lines: string[] = [];
    createLogger({ write: (l) => void lines.push(l) }).warn({ client_id: 'GID_x@@@\u001b[31mred\u001b[0m' }, 'skipping');
    expect(lines[0]).not.toContain('\u001b');
    expect(lines[0]).toContain('client_id="GID_x@@@\\u001b[31mred\\u001b[0m"');
  });

  test('Accept-Encoding q-values are honoured', () => {
    expect(acceptsGzip('gzip')).toBe(true);
    expect(acceptsGzip('gzip;q=0')).toBe(false);
    expect(acceptsGzip('gzip; q=0.0, identity')).toBe(false);
    expect(acceptsGzip('*;q=0.5')).toBe(true);
    expect(acceptsGzip('identity, *;q=0')).toBe(false);
    expect(acceptsGzip(undefined)).toBe(false);
  });

  test('flags and empty configs: a telemetry path without "/" and a config without jobs are errors', async () => {
    expect(() => parseFlags(['--web.telemetry-path=metrics'])).toThrow(/must be a path starting with "\/"/);
    const dir = tempDir();
    const config = path.join(dir, 'c.yml');
    fs.writeFileSync(config, `accounts:\n${ALIYUN_ACCOUNT_YAML}jobs: []\n`);
    const refused = await run([`--config.file=${config}`, '--config.check'], ENV);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/no jobs are configured/);
    expect((await run([`--config.file=${config}`, '--config.check', '--config.allow-no-jobs'], ENV)).code).toBe(0);
    const missing = await run([`--config.file=${path.join(dir, 'none.yml')}`, '--web.listen-address=127.0.0.1:0']);
    expect(missing.code).toBe(1);
    // Said once (it used to be logged and printed).
    expect(missing.err.match(/cannot read the file/g)).toHaveLength(1);
    expect(missing.err).toMatch(/cannot read the file: ENOENT \(set the path with --config\.file\)/);
  });

  test('quota warnings are logged at start-up, not only by --config.check', () => {
    const t = appFromYaml(mqttJob('http://127.0.0.1:1', `\n    client_ids: ${JSON.stringify(IDS)}`).replace('access_key_secret: ${SK}', 'access_key_secret: ${SK}\n    qps: {BatchQuerySessionByClientIds: 200}'), ENV);
    expect(t.logs.some((l) => /above the documented limit of 100/.test(l))).toBe(true);
  });
});
