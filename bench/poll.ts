// Figures 1 and 3: the emulator and the exporter as separate processes; two full poll cycles, each against the quota
// bound, with throttling and the exporter's CPU: the cold start-up run (fresh process, fresh rate limiter, first
// connection, first inventory parse and render), then a steady one: the job's first scheduled run, at a wall-clock
// second computed so that the cold run has long finished — what every later run of a long-lived exporter does
// (same limiter, inventory cached, lines patched in place).
import fs from 'node:fs';
import path from 'node:path';
import { freePort, get, getJson, log, post, round, sample, selfSection, sleep, startNode, waitForStatus } from './lib';

export interface PollCase {
  devices: number;
  qps: number;
  /** undefined: the default margin (500 ms / QPS, 20-100 ms). */
  marginMs?: number;
  latency: { min_ms: number; max_ms: number };
}

export interface PollFigure {
  config: PollCase & { batch_size: 10; emulator_rate_limit: number; schedule: string; per_client_series: true };
  quota_bound_s: number;
  /** The steady cycle (the cold one is in `cold`). */
  cycle_s: number | null;
  efficiency: number | null;
  cold: { cycle_s: number | null; efficiency: number | null; throttled: number; busiest_window: number } | null;
  job_success: number | null;
  calls: number;
  throttled: number;
  busiest_window: number;
  busiest_window_with_throttled: number;
  errors: Record<string, number>;
  exporter_cpu_s: number | null;
  exporter_cpu_us_per_device: number | null;
  exporter_rss_mb: number | null;
  exporter_rss_bytes_per_device: number | null;
  error?: string;
}

const INSTANCE = 'post-cn-bench0001';
const GROUP = 'GID_bench';

export async function pollCase(c: PollCase, tmp: string): Promise<PollFigure> {
  const dir = fs.mkdtempSync(path.join(tmp, `poll-${c.devices}-${c.qps}-${c.marginMs ?? 'default'}-`));
  const ids: string[] = new Array(c.devices);
  for (let i = 0; i < c.devices; i++) ids[i] = `${GROUP}@@@dev-${String(i + 1).padStart(7, '0')}`;
  fs.writeFileSync(path.join(dir, 'devices.txt'), ids.join('\n') + '\n');
  const scenario = {
    seed: 7,
    credentials: [{ account: 'bench', provider: 'aliyun', access_key_id: 'LTAI-bench', access_key_secret: 'bench-secret' }],
    latency: c.latency,
    rate_limits: { BatchQuerySessionByClientIds: c.qps },
    // A raised quota is one the cloud granted: the per-source-IP ceiling (300) is raised with it, here and in the exporter.
    source_ip_limits: { mqtt: Math.max(300, c.qps) },
    mqtt: {
      instances: [{ instance_id: INSTANCE, region: 'cn-hangzhou', account: 'bench', fleets: [{ group_id: GROUP, prefix: 'dev-', size: c.devices, digits: 7, online_ratio: 0.8, churn_per_minute: 0.02 }] }],
    },
  };
  fs.writeFileSync(path.join(dir, 'scenario.json'), JSON.stringify(scenario, null, 2));
  const bound = c.devices / 10 / c.qps;
  // One firing, at a wall-clock time well after the cold run can have finished (node-cron uses local time).
  const at = new Date(Date.now() + Math.max(30, bound * 1.5 + 20) * 1000);
  const schedule = `${at.getSeconds()} ${at.getMinutes()} ${at.getHours()} ${at.getDate()} ${at.getMonth() + 1} *`;
  const fig: PollFigure = {
    config: { ...c, batch_size: 10, emulator_rate_limit: c.qps, schedule: `${schedule} (start-up run, then this one firing)`, per_client_series: true },
    quota_bound_s: round(bound, 2),
    cycle_s: null,
    efficiency: null,
    cold: null,
    job_success: null,
    calls: 0,
    throttled: 0,
    busiest_window: 0,
    busiest_window_with_throttled: 0,
    errors: {},
    exporter_cpu_s: null,
    exporter_cpu_us_per_device: null,
    exporter_rss_mb: null,
    exporter_rss_bytes_per_device: null,
  };
  const { child: emu, match } = await startNode(['dist/emulator/main.js', '--scenario', path.join(dir, 'scenario.json'), '--listen', '127.0.0.1:0'], path.join(dir, 'emulator.log'), /listening on (http:\/\/[0-9.:]+)/);
  const emuUrl = match![1];
  let exp: { stop(): Promise<void> } | undefined;
  try {
    // JSON is YAML: the exporter's loader reads it as such.
    const config = {
      source_ip_qps: { onsmqtt: Math.max(300, c.qps) },
      accounts: [{ name: 'bench', provider: 'aliyun', access_key_id: 'LTAI-bench', access_key_secret: 'bench-secret', qps: { BatchQuerySessionByClientIds: c.qps }, ...(c.marginMs === undefined ? {} : { rate_limit_margin: `${c.marginMs}ms` }) }],
      jobs: [{ name: 'bench-fleet', type: 'aliyun_mqtt_sessions', account: 'bench', schedule, timeout: '30m', region: 'cn-hangzhou', endpoint: emuUrl, instance_id: INSTANCE, client_ids_file: path.join(dir, 'devices.txt') }],
    };
    fs.writeFileSync(path.join(dir, 'exporter.yml'), JSON.stringify(config, null, 2));
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const started = await startNode(['dist/src/main.js', '--config.file', path.join(dir, 'exporter.yml'), '--web.listen-address', `127.0.0.1:${port}`, '--log.level', 'warn'], path.join(dir, 'exporter.log'));
    exp = started.child;
    await waitForStatus(`${base}/-/healthy`, 200, 60_000, 50);
    await waitForStatus(`${base}/-/ready`, 200, (bound * 3 + 120) * 1000, 500);
    type Stats = { apis: Record<string, { calls: number; throttled: number; busiest_window: number; busiest_window_with_throttled: number; errors: Record<string, number> }> };
    const apiStats = async () => (await getJson<Stats>(`${emuUrl}/_emulator/stats`)).apis.BatchQuerySessionByClientIds;
    let text = selfSection((await get(`${base}/metrics`)).body.toString());
    const coldDur = sample(text, 'cloud_session_exporter_job_duration_seconds', 'job_name="bench-fleet"');
    const coldStats = await apiStats();
    fig.cold = {
      cycle_s: coldDur === undefined ? null : round(coldDur, 2),
      efficiency: coldDur === undefined ? null : round(bound / coldDur, 4),
      throttled: coldStats?.throttled ?? 0,
      busiest_window: coldStats?.busiest_window ?? 0,
    };
    if (sample(text, 'cloud_session_exporter_job_success', 'job_name="bench-fleet"') !== 1) throw new Error('the cold run failed');

    // The steady cycle: the scheduled run, with the account's limiter as the cold run left it.
    await post(`${emuUrl}/_emulator/stats/reset`);
    const lastOk = sample(text, 'cloud_session_exporter_job_last_success_timestamp_seconds', 'job_name="bench-fleet"') ?? 0;
    const cpu0 = sample(text, 'process_cpu_seconds_total') ?? 0;
    if (Date.now() > at.getTime() - 1000) throw new Error('the cold run ended too late for the scheduled one');
    await sleep(at.getTime() - Date.now());
    // Watch the emulator (cheap) until every call was answered, then the exporter until the run is recorded.
    const until = Date.now() + (bound * 3 + 120) * 1000;
    while (((await apiStats())?.calls ?? 0) < c.devices / 10 && Date.now() < until) await sleep(250);
    for (;;) {
      text = selfSection((await get(`${base}/metrics`)).body.toString());
      if ((sample(text, 'cloud_session_exporter_job_last_success_timestamp_seconds', 'job_name="bench-fleet"') ?? 0) > lastOk) break;
      if (Date.now() > until) throw new Error('the steady run did not finish in time');
      await sleep(250);
    }
    const cpu1 = sample(text, 'process_cpu_seconds_total') ?? NaN;
    const rss = sample(text, 'process_resident_memory_bytes') ?? NaN;
    const dur = sample(text, 'cloud_session_exporter_job_duration_seconds', 'job_name="bench-fleet"');
    fig.job_success = sample(text, 'cloud_session_exporter_job_success', 'job_name="bench-fleet"') ?? null;
    if (dur !== undefined) {
      fig.cycle_s = round(dur, 2);
      fig.efficiency = round(bound / dur, 4);
    }
    fig.exporter_cpu_s = round(cpu1 - cpu0, 2);
    fig.exporter_cpu_us_per_device = round(((cpu1 - cpu0) * 1e6) / c.devices, 2);
    fig.exporter_rss_mb = round(rss / 2 ** 20, 1);
    fig.exporter_rss_bytes_per_device = round(rss / c.devices, 0);
    const s = await apiStats();
    if (s) {
      fig.calls = s.calls;
      fig.throttled = s.throttled;
      fig.busiest_window = s.busiest_window;
      fig.busiest_window_with_throttled = s.busiest_window_with_throttled;
      fig.errors = s.errors;
    }
  } catch (err) {
    fig.error = (err as Error).message;
  } finally {
    await exp?.stop();
    await emu.stop();
  }
  log(`poll ${c.devices} devices @${c.qps} QPS margin ${c.marginMs ?? 'default'}: steady cycle ${fig.cycle_s} s (bound ${fig.quota_bound_s} s) efficiency ${fig.efficiency}, throttled ${fig.throttled}, busiest ${fig.busiest_window}; cold ${fig.cold?.cycle_s} s, ${fig.cold?.efficiency}, throttled ${fig.cold?.throttled}${fig.error ? `, ERROR ${fig.error}` : ''}`);
  return fig;
}
