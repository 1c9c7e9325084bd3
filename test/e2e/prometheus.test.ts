// End to end with a real Prometheus (the Debian binary): the emulator feeds an exporter running every job type on a
// 2-second schedule; Prometheus scrapes it every second and evaluates the project's recording and alerting rules.
// Checked: promtool check metrics on a real scrape, every recording rule and every dashboard query returns data, and
// an outage injected in the emulator fires the matching alert.
import { mqttOf } from '../../emulator/apis/mqtt';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ALIYUN, ALIYUN_ACCOUNT_YAML, TENCENT, appFromYaml, tempDir, type TestApp, truthOf } from '../helpers/harness';
import { startEmulator, type Emulator } from '../../emulator/server';
import { loadDashboards, interpolate, resolveVariables } from './dashboards';
import { PROMETHEUS_BIN, PROMTOOL_BIN, fastAlerts, haveBinary, startPrometheus, waitUntil, type Prometheus } from './prometheus-process';

const ROOT = path.resolve(__dirname, '../..');
import { loadRules, RULE_FILES, RUNBOOK_URL_LABEL } from '../rules/helpers';
const DASHBOARDS_DIR = path.join(ROOT, 'grafana/dashboards');

const MQTT_INSTANCE = 'post-cn-e2e00001';
const MONGO_OK = 'cmgo-e2e00001';
const MONGO_UNSUPPORTED = 'cmgo-e2e00002';
const REDIS = ['r-e2e0000000000001', 'r-e2e0000000000002'];
const SCHEDULE = '*/2 * * * * *';
const RUNBOOK_URL = 'https://runbooks.example.com/cloud-session-exporter/runbook.md';

/**
 * Recording rules and dashboard queries allowed to return nothing, with the reason. Everything else must have data.
 * Keys: a recording rule's name, or `<dashboard file>: <expr as written>`.
 */
const EXEMPT: Record<string, string> = {};

/** Faults present all along: they make the retry, throttling, canary-error and loss series exist. */
const BASE_FAULTS = {
  // The canary fails now and then (it never retries): its error counter by code carries data.
  SendMessage: { error_rates: { InternalError: 0.15 } },
  // Some batches are throttled and retried (5 attempts: a run never fails from this), so the throttling and retry
  // series carry data.
  BatchQuerySessionByClientIds: { error_rates: { SystemOverFlow: 0.02 } },
};

function scenario(): Record<string, unknown> {
  return {
    seed: 11,
    credentials: [ALIYUN, TENCENT],
    faults: BASE_FAULTS,
    mqtt: {
      instances: [
        {
          instance_id: MQTT_INSTANCE,
          region: 'cn-hangzhou',
          fleets: [
            // High churn so that status transitions happen between 2-second polls.
            { group_id: 'GID_sensor', size: 200, online_ratio: 0.8, churn_per_minute: 0.6 },
            { group_id: 'GID_gateway', size: 100, online_ratio: 0.5, churn_per_minute: 0.6 },
          ],
        },
      ],
    },
    // The canary's messages go through the embedded broker; 40 % are dropped so losses are counted.
    broker: { drop_rate: 0.4, delay_ms: { min: 20, max: 80 } },
    mongodb: {
      instances: [
        // More client IPs than max_client_ips: the folded "other" bucket and its counter carry data.
        { instance_id: MONGO_OK, region: 'ap-guangzhou', client_ips: 40, connections_per_ip: { min: 1, max: 30 }, internal_service_ratio: 0.3 },
        { instance_id: MONGO_UNSUPPORTED, region: 'ap-guangzhou', unsupported: 'MongoVersion' },
      ],
    },
    redis: {
      instances: [
        { instance_id: REDIS[0], nodes: 2, sessions: 300, client_ips: 20, blocked_ratio: 0.05, pubsub_ratio: 0.05, multi_ratio: 0.03 },
        { instance_id: REDIS[1], nodes: 1, sessions: 80, client_ips: 6, idle: [{ weight: 50, min_s: 0, max_s: 59 }, { weight: 50, min_s: 3600, max_s: 7200 }] },
      ],
    },
  };
}

function exporterConfig(emu: Emulator, devicesFile: string): string {
  return `
accounts:
${ALIYUN_ACCOUNT_YAML}  - name: tencent-test
    provider: tencentcloud
    secret_id: \${TC_ID}
    secret_key: \${TC_KEY}
jobs:
  - name: fleet
    type: aliyun_mqtt_sessions
    account: aliyun-test
    schedule: "${SCHEDULE}"
    region: cn-hangzhou
    endpoint: ${emu.url}
    instance_id: ${MQTT_INSTANCE}
    client_ids_file: ${devicesFile}
    # A short threshold and window, so the fleet history has something to show within the test.
    offline_thresholds: [5s, 5m, 1h, 24h, 7d]
    flapping_window: 1m
    per_client_last_change: true
    labels: {env: e2e}
  - name: canary
    type: aliyun_mqtt_probe
    account: aliyun-test
    schedule: "${SCHEDULE}"
    timeout: 1500ms
    region: cn-hangzhou
    endpoint: ${emu.url}
    instance_id: ${MQTT_INSTANCE}
    topic: canary/e2e
    labels: {env: e2e}
    subscribe:
      url: ${mqttOf(emu).broker!.url}
      group_id: GID_probe
      device_id: e2e-1
  - name: mongo
    type: tencentcloud_mongodb_connections
    account: tencent-test
    schedule: "${SCHEDULE}"
    region: ap-guangzhou
    endpoint: ${emu.url}
    instance_ids: [${MONGO_OK}, ${MONGO_UNSUPPORTED}]
    max_client_ips: 15
    labels: {env: e2e}
  - name: redis
    type: aliyun_redis_sessions
    account: aliyun-test
    schedule: "${SCHEDULE}"
    endpoint: ${emu.url}
    instance_ids: [${REDIS.join(', ')}]
    max_client_ips: 5
    max_commands: 5
    idle_thresholds: [1m, 5m, 1h]
    labels: {env: e2e}
`;
}

// A missing binary fails every test here with this message rather than skipping them: `.ci/run` installs it.
const available = haveBinary(PROMETHEUS_BIN) && haveBinary(PROMTOOL_BIN);

describe('end to end with a real Prometheus', () => {
  let emu: Emulator;
  let t: TestApp;
  let prom: Prometheus;
  let target: string;
  const dir = tempDir();

  beforeAll(async () => {
    if (!available) throw new Error(`${PROMETHEUS_BIN} and ${PROMTOOL_BIN} are required (Debian package prometheus: apt-get install prometheus, or set PROMETHEUS_BIN / PROMTOOL_BIN)`);
    emu = await startEmulator({ scenario: scenario(), port: 0 });
    const truth = (await truthOf(emu)).mqtt[MQTT_INSTANCE];
    const devicesFile = path.join(dir, 'devices.txt');
    fs.writeFileSync(devicesFile, Object.keys(truth).join('\n') + '\n');
    t = appFromYaml(
      exporterConfig(emu, devicesFile),
      { AK: ALIYUN.access_key_id, SK: ALIYUN.access_key_secret, TC_ID: TENCENT.secret_id, TC_KEY: TENCENT.secret_key },
      { processMetrics: true },
      dir,
    );
    const addr = await t.app.listen('127.0.0.1:0');
    target = `127.0.0.1:${addr.port}`;
    await t.app.start();

    // The project's rule files with the alerts' `for:` shortened, so an outage can fire within the test.
    const ruleFiles = RULE_FILES.map((file) => {
      const copy = path.join(dir, `fast-${path.basename(file)}`);
      fs.writeFileSync(copy, fastAlerts(fs.readFileSync(file, 'utf8')));
      return copy;
    });
    // Runbook links from the documented external label (promtool's unit tests cannot set one: they check the fallback).
    prom = await startPrometheus({ dir, target, ruleFiles, externalLabels: { [RUNBOOK_URL_LABEL]: RUNBOOK_URL } });
  }, 60_000);

  afterAll(async () => {
    await prom?.stop();
    await t?.app.stop(0);
    await emu?.close();
  }, 30_000);

  test('promtool check metrics accepts a real scrape', async () => {
    // Wait until every job has run once, so that all families are present.
    const body = await waitUntil(
      'every job to have run',
      async () => {
        const text = await (await fetch(`http://${target}/metrics`)).text();
        const ran = ['fleet', 'canary', 'mongo', 'redis'].every((j) => new RegExp(`cloud_session_exporter_job_runs_total\\{[^}]*job_name="${j}"[^}]*\\} [1-9]`).test(text));
        const families = ['aliyun_mqtt_clients{', 'aliyun_mqtt_probe_success{', 'tencentcloud_mongodb_connections{', 'aliyun_redis_sessions{'].every((f) => text.includes(f));
        return ran && families && text;
      },
      20_000,
    );
    expect(body).toContain('aliyun_mqtt_clients{');
    expect(body).toContain('tencentcloud_mongodb_connections{');
    expect(body).toContain('aliyun_redis_sessions{');
    expect(body).toContain('aliyun_mqtt_probe_success{');
    const res = spawnSync(PROMTOOL_BIN, ['check', 'metrics'], { input: body, encoding: 'utf8' });
    const problems = `${res.stdout}${res.stderr}`.split('\n').filter((l) => l.trim() !== '');
    // The whole scrape lints clean, prom-client's process and runtime metrics included, exit status too.
    expect(problems, 'promtool check metrics problems').toEqual([]);
    expect(res.status).toBe(0);
    expect(body).toContain('process_cpu_seconds_total ');
    expect(body).not.toContain('nodejs_active_handles_total');
  }, 30_000);

  test('Prometheus scrapes the exporter and loads the rules without errors', async () => {
    await waitUntil('the target to be up', async () => (await prom.targets()).every((x) => x.health === 'up') && (await prom.targets()).length === 1, 15_000);
    const groups = await waitUntil('rule groups evaluated', async () => {
      const g = await prom.ruleGroups();
      return g.every((x) => x.rules.every((r) => r.health !== 'unknown')) && g;
    }, 15_000);
    const bad = groups.flatMap((g) => g.rules.filter((r) => r.health !== 'ok').map((r) => `${g.name}/${r.name}: ${r.health} ${r.lastError ?? ''}`));
    expect(bad).toEqual([]);
  }, 30_000);

  test('the scenario produces what the rules and dashboards need: throttling, retries, losses, folding, transitions', async () => {
    // Not only present but non-zero: otherwise the checks below would pass on series that are always 0.
    const checks: Record<string, string> = {
      'throttled calls': 'sum(cloud_session_exporter_api_throttled_total) > 0',
      retries: 'sum(cloud_session_exporter_api_retries_total) > 0',
      'lost canary messages': 'sum(aliyun_mqtt_probe_lost_total) > 0',
      'received canary messages': 'sum(aliyun_mqtt_probe_received_total) > 0',
      'folded MongoDB client IPs': 'sum(tencentcloud_mongodb_client_ips_folded_total) > 0',
      'MQTT transitions': 'sum(aliyun_mqtt_client_transitions_total) > 0',
      'MQTT devices offline for a while': 'sum(aliyun_mqtt_clients_offline_longer_than{duration="5s"}) > 0',
      'MQTT flapping devices': 'count(aliyun_mqtt_client_flaps) > 0',
      'MQTT last changes': 'count(aliyun_mqtt_client_last_change_timestamp_seconds) > 0',
      'unsupported MongoDB instance': `tencentcloud_mongodb_client_query_supported{instance_id="${MONGO_UNSUPPORTED}"} == 0`,
      'blocked Redis sessions': 'sum(aliyun_redis_blocked_sessions) > 0',
      'Redis sessions idle for an hour': 'sum(aliyun_redis_idle_sessions{idle_seconds_min="3600"}) > 0',
    };
    let missing: string[] = [];
    await waitUntil(
      'the scenario to produce its data',
      async () => {
        missing = [];
        for (const [what, expr] of Object.entries(checks)) if ((await prom.query(expr)).length === 0) missing.push(what);
        return missing.length === 0;
      },
      40_000,
      1_000,
    ).catch(() => undefined);
    expect(missing).toEqual([]);
  }, 60_000);

  test('every recording rule returns data', async () => {
    const records = loadRules(RULE_FILES).flatMap((r) => (r.record ? [r.record] : []));
    expect(records.length).toBeGreaterThan(10);
    let empty: string[] = [];
    await waitUntil(
      'every recording rule to return data',
      async () => {
        empty = [];
        for (const r of records) if (!(r in EXEMPT) && (await prom.query(r)).length === 0) empty.push(r);
        return empty.length === 0;
      },
      45_000,
      1_000,
    ).catch(() => undefined);
    expect(empty, 'recording rules without data').toEqual([]);
  }, 60_000);

  test('every dashboard query returns data', async () => {
    const dashboards = loadDashboards(DASHBOARDS_DIR);
    expect(dashboards.length).toBeGreaterThanOrEqual(4);
    let problems: string[] = [];
    let total = 0;
    await waitUntil(
      'every dashboard query to return data',
      async () => {
        problems = [];
        total = 0;
        for (const d of dashboards) {
          // The device drill-down with a pattern typed in, as its empty default shows nothing (test/e2e/dashboard-scale.test.ts).
          const { values, found } = await resolveVariables(prom, d, { client: '.*' });
          for (const [name, vals] of Object.entries(found)) if (vals.length === 0) problems.push(`${d.file}: variable $${name} has no values`);
          for (const q of d.queries) {
            total++;
            const key = `${d.file}: ${q.raw}`;
            if (key in EXEMPT) continue;
            const expr = interpolate(q.raw, values);
            try {
              if ((await prom.query(expr)).length === 0) problems.push(`${d.file} / ${q.panel} / ${q.refId}: no data: ${expr}`);
            } catch (err) {
              problems.push(`${d.file} / ${q.panel} / ${q.refId}: ${(err as Error).message}`);
            }
          }
        }
        return problems.length === 0;
      },
      30_000,
      1_000,
    ).catch(() => undefined);
    expect(total).toBeGreaterThan(50);
    expect(problems, 'dashboard queries without data').toEqual([]);
  }, 60_000);

  test('a device changing status every poll fires AliyunMqttClientFlapping; the new alerts evaluate on real series', async () => {
    // Their expressions without the final comparison return data: the selectors, matchers and recording rule meet.
    for (const name of ['AliyunMqttLongOfflineClientsGrowing', 'AliyunMqttClientFlapping']) {
      const rule = loadRules(RULE_FILES).find((r) => r.alert === name)!;
      const lhs = rule.expr.trim().replace(/\s*(>=|>|<=|<|==)\s*[\d.]+$/, '');
      expect(lhs, name).not.toBe(rule.expr.trim());
      await waitUntil(`${name}'s series`, async () => (await prom.query(lhs)).length > 0, 20_000, 1_000);
    }
    const truth = (await truthOf(emu)).mqtt[MQTT_INSTANCE];
    const device = Object.keys(truth)[0];
    let online = truth[device];
    const flapping = async () => (await prom.alerts()).find((a) => a.labels.alertname === 'AliyunMqttClientFlapping' && a.labels.client_id === device && a.state === 'firing');
    // More than 10 changes within the job's 1-minute flapping_window: one flip per 2-second poll.
    const firing = await waitUntil(
      'AliyunMqttClientFlapping to fire for the flipped device',
      async () => {
        mqttOf(emu).setOnline(MQTT_INSTANCE, device, (online = !online));
        return flapping();
      },
      50_000,
      2_000,
    );
    expect(firing.labels).toMatchObject({ severity: 'warning', group_id: device.split('@@@')[0], instance_id: MQTT_INSTANCE, env: 'e2e' });
    expect(Number(firing.value)).toBeGreaterThan(10);
    expect(firing.annotations.runbook_url).toBe(`${RUNBOOK_URL}#aliyunmqttclientflapping`);
  }, 75_000);

  test('an outage of BatchQuerySessionByClientIds fires CloudSessionExporterJobFailing for the MQTT job', async () => {
    const failingFleet = (alerts: Awaited<ReturnType<Prometheus['alerts']>>) =>
      alerts.filter((a) => a.labels.alertname === 'CloudSessionExporterJobFailing' && a.labels.job_name === 'fleet');
    // Healthy before: the fleet job succeeds, and its alert is not even pending.
    // (Polled: run alone, this test starts before Prometheus's first scrape.)
    await waitUntil(
      'the fleet job to succeed, its alert inactive',
      async () => (await prom.query('cloud_session_exporter_job_success{job_name="fleet"} == 1')).length === 1 && failingFleet(await prom.alerts()).length === 0,
      20_000,
      500,
    );

    emu.setFaults({ ...BASE_FAULTS, BatchQuerySessionByClientIds: { error_rates: { InternalError: 1 } } });
    const firing = await waitUntil(
      'CloudSessionExporterJobFailing{job_name="fleet"} to fire',
      async () => {
        const a = failingFleet(await prom.alerts()).find((x) => x.state === 'firing');
        return a;
      },
      30_000,
      500,
    );
    expect(firing.labels).toMatchObject({ severity: 'warning', job: 'cloud-session-exporter', instance: target });
    expect(firing.annotations.description).toContain('fleet');
    expect(firing.annotations.runbook_url).toBe(`${RUNBOOK_URL}#cloudsessionexporterjobfailing`);
    // The other jobs keep succeeding (their runs are independent of the MQTT API).
    for (const job of ['mongo', 'redis']) expect((await prom.query(`cloud_session_exporter_job_last_success_timestamp_seconds{job_name="${job}"} > time() - 10`)).length, job).toBe(1);

    // Recovery: once the API answers again the alert resolves.
    emu.setFaults(BASE_FAULTS);
    await waitUntil('the alert to resolve', async () => failingFleet(await prom.alerts()).length === 0, 30_000, 500);
  }, 75_000);
});
