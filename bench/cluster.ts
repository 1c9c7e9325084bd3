// Figures 7-9: the exporter as a cluster (real processes, Debian's redis-server, the emulator in its own process).
// 7: poll efficiency of 1, 2 and 3 replicas sharing one 100 QPS quota, each polling its static shard of one fleet.
// 8: the published run of a 1M-device MQTT job: its size, the leader's encode and write, a follower's read, decode and
//    render. 9: failover after SIGKILL of the leader, and the handover of a graceful stop, at the default lease.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Redis from 'ioredis';
import { decodeStatus, encodeCounters, encodeStatus } from '../src/apis/aliyun-mqtt-sessions/handover';
import { DeviceLines } from '../src/apis/aliyun-mqtt-sessions/device-lines';
import { Inventory } from '../src/apis/aliyun-mqtt-sessions/inventory';
import { decodeRun, encodeRun } from '../src/cluster/published-run';
import { freePort, get, getJson, log, post, round, sample, selfSection, sleep, startNode, startRedis, waitForStatus } from './lib';

const INSTANCE = 'post-cn-bench0001';
const GROUP = 'GID_bench';

function fleetIds(devices: number): string[] {
  const ids: string[] = new Array(devices);
  for (let i = 0; i < devices; i++) ids[i] = `${GROUP}@@@dev-${String(i + 1).padStart(7, '0')}`;
  return ids;
}

async function startEmulator(dir: string, devices: number, qps: number, latency: { min_ms: number; max_ms: number }) {
  const scenario = {
    seed: 7,
    credentials: [{ account: 'bench', provider: 'aliyun', access_key_id: 'LTAI-bench', access_key_secret: 'bench-secret' }],
    latency,
    rate_limits: { BatchQuerySessionByClientIds: qps },
    mqtt: { instances: [{ instance_id: INSTANCE, region: 'cn-hangzhou', account: 'bench', fleets: [{ group_id: GROUP, prefix: 'dev-', size: devices, digits: 7, online_ratio: 0.8 }] }] },
  };
  fs.writeFileSync(path.join(dir, 'scenario.json'), JSON.stringify(scenario));
  const { child, match } = await startNode(['dist/emulator/main.js', '--scenario', path.join(dir, 'scenario.json'), '--listen', '127.0.0.1:0'], path.join(dir, 'emulator.log'), /listening on (http:\/\/[0-9.:]+)/);
  return { child, url: match![1] };
}

function exporterConfig(o: { emuUrl: string; file: string; schedule: string; qps: number; cluster: Record<string, unknown> }): string {
  // JSON is YAML: the exporter's loader reads it as such.
  return JSON.stringify({
    accounts: [{ name: 'bench', provider: 'aliyun', access_key_id: 'LTAI-bench', access_key_secret: 'bench-secret', qps: { BatchQuerySessionByClientIds: o.qps } }],
    jobs: [{ name: 'bench-fleet', type: 'aliyun_mqtt_sessions', account: 'bench', schedule: o.schedule, timeout: '30m', region: 'cn-hangzhou', endpoint: o.emuUrl, instance_id: INSTANCE, client_ids_file: o.file }],
    cluster: o.cluster,
  });
}

async function startReplica(dir: string, id: string, yaml: string): Promise<{ base: string; stop(): Promise<void>; proc: ChildProcess }> {
  const file = path.join(dir, `${id}.yml`);
  fs.writeFileSync(file, yaml);
  const port = await freePort();
  const { child } = await startNode(['dist/src/main.js', '--config.file', file, '--web.listen-address', `127.0.0.1:${port}`, '--log.level', 'warn'], path.join(dir, `${id}.log`));
  const base = `http://127.0.0.1:${port}`;
  await waitForStatus(`${base}/-/healthy`, 200, 60_000, 50);
  return { base, stop: () => child.stop(), proc: child.proc };
}

export interface ClusterPollFigure {
  config: { replicas: number; devices: number; qps: number; latency: { min_ms: number; max_ms: number }; topology: string };
  quota_bound_s: number;
  cycle_s: number | null;
  efficiency: number | null;
  calls: number;
  throttled: number;
  busiest_window: number;
  error?: string;
}

/**
 * N replicas (static shards 0..N-1 of N) share the quota. They start on an empty inventory (their start-up runs poll
 * nothing), the fleet's file is written, and every replica's cron fires at one wall-clock second T: the cycle is from T
 * to the last replica's end of run, the first with the whole fleet (fresh limiters: each first call goes out alone).
 */
export async function clusterPollCase(replicas: number, devices: number, qps: number, tmp: string): Promise<ClusterPollFigure> {
  const latency = { min_ms: 20, max_ms: 200 };
  const dir = fs.mkdtempSync(path.join(tmp, `cluster-poll-${replicas}-`));
  const bound = devices / 10 / qps;
  const fig: ClusterPollFigure = { config: { replicas, devices, qps, latency, topology: `static sharding, ${replicas} shard(s), one Redis` }, quota_bound_s: round(bound, 2), cycle_s: null, efficiency: null, calls: 0, throttled: 0, busiest_window: 0 };
  const file = path.join(dir, 'devices.txt');
  fs.writeFileSync(file, '');
  const redis = await startRedis();
  const emu = await startEmulator(dir, devices, qps, latency);
  const started: Array<{ base: string; stop(): Promise<void> }> = [];
  try {
    const at = new Date(Date.now() + 25_000);
    const schedule = `${at.getSeconds()} ${at.getMinutes()} ${at.getHours()} ${at.getDate()} ${at.getMonth() + 1} *`;
    for (let s = 0; s < replicas; s++) {
      const cluster = { redis: { url: `redis://127.0.0.1:${redis.port}/0` }, replica_id: `r${s}`, sharding: { total_shards: replicas, shard: s } };
      started.push(await startReplica(dir, `r${s}`, exporterConfig({ emuUrl: emu.url, file, schedule, qps, cluster })));
    }
    for (const r of started) await waitForStatus(`${r.base}/-/ready`, 200, 60_000, 250);
    fs.writeFileSync(file, fleetIds(devices).join('\n') + '\n');
    await post(`${emu.url}/_emulator/stats/reset`);
    if (Date.now() > at.getTime() - 3000) throw new Error('the replicas started too late for the scheduled run');
    await sleep(at.getTime() - Date.now());
    const until = Date.now() + (bound * 3 + 120) * 1000;
    let ends: number[] = [];
    for (;;) {
      const texts = await Promise.all(started.map(async (r) => selfSection((await get(`${r.base}/metrics`)).body.toString())));
      ends = texts.map((t) => sample(t, 'cloud_session_exporter_job_last_success_timestamp_seconds', 'job_name="bench-fleet"') ?? 0);
      if (ends.every((e) => e * 1000 >= at.getTime())) break;
      if (Date.now() > until) throw new Error('the cycle did not finish in time');
      await sleep(250);
    }
    const cycle = Math.max(...ends) - at.getTime() / 1000;
    fig.cycle_s = round(cycle, 2);
    fig.efficiency = round(bound / cycle, 4);
    const s = (await getJson<{ apis: Record<string, { calls: number; throttled: number; busiest_window: number }> }>(`${emu.url}/_emulator/stats`)).apis.BatchQuerySessionByClientIds;
    fig.calls = s.calls;
    fig.throttled = s.throttled;
    fig.busiest_window = s.busiest_window;
  } catch (err) {
    fig.error = (err as Error).message;
  } finally {
    for (const r of started) await r.stop();
    await emu.child.stop();
    redis.proc.kill('SIGKILL');
  }
  log(`cluster poll ${replicas} replica(s), ${devices} devices @${qps}: cycle ${fig.cycle_s} s (bound ${fig.quota_bound_s} s) efficiency ${fig.efficiency}, calls ${fig.calls}, throttled ${fig.throttled}, busiest ${fig.busiest_window}${fig.error ? `, ERROR ${fig.error}` : ''}`);
  return fig;
}

export interface PublishFigure {
  devices: number;
  /** The published value: the MQTT status section (bitset + gaps), the counters and the container. */
  bytes: number;
  bytes_per_million_devices: number;
  /** Leader: encoding the statuses, the counters and the container. */
  encode_ms: number;
  /** Leader: HSET of the value and PUBLISH, one round trip to a local Redis. */
  write_ms: number;
  /** Follower: HGET of the value. */
  read_ms: number;
  /** Follower: decoding the container and the statuses. */
  decode_ms: number;
  /** Follower: rendering the 1M per-device lines from them (once per inventory; later runs patch in place). */
  render_first_ms: number;
  render_again_ms: number;
  redis_used_memory_bytes: number;
  runs: number;
}

/** The MQTT job's publish and adopt paths at `devices`, with the job's own encoders and line renderer. */
export async function publishCase(devices: number, runs: number): Promise<PublishFigure> {
  const redis = await startRedis();
  const client = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: false });
  try {
    const ids = fleetIds(devices);
    const inv = new Inventory(ids, [GROUP], new Uint32Array(devices), 0);
    const status = new Uint8Array(devices);
    for (let i = 0; i < devices; i++) status[i] = i % 5 === 0 ? 0 : 1;
    // A partial answer: 20 devices without a status.
    for (let i = 0; i < 20; i++) status[i * 997] = 2;
    const known = status.map((v) => (v === 2 ? 1 : v));
    const counters = { transitions: new Map([[GROUP, { online: 123_456, offline: 123_400 }]]), missing: new Map([[GROUP, 20]]), unexpected: 0 };
    const lines = new DeviceLines({ region: 'cn-hangzhou', instance_id: INSTANCE }, '');
    const m = { encode: [] as number[], write: [] as number[], read: [] as number[], decode: [] as number[], renderFirst: 0, renderAgain: [] as number[] };
    let bytes = 0;
    for (let r = 0; r < runs; r++) {
      let t = performance.now();
      const sections = new Map([['status.v1', encodeStatus(inv.key, status, known)], ['counters.v1', encodeCounters(counters)]]);
      const value = encodeRun({ producedAt: Date.now(), durationMs: 1000, targets: [{ instanceId: INSTANCE, ok: true, families: [] }], sections }, { job: 'fleet', type: 'aliyun_mqtt_sessions', replica: 'bench' }, false);
      m.encode.push(performance.now() - t);
      bytes = value.length;
      t = performance.now();
      await client.multi().hset('cse:run:fleet', 'id', String(r), 'run', value).pexpire('cse:run:fleet', 120_000).publish('cse:events', `published\tfleet\t${r}`).exec();
      m.write.push(performance.now() - t);
      t = performance.now();
      const read = (await client.hgetBuffer('cse:run:fleet', 'run'))!;
      m.read.push(performance.now() - t);
      t = performance.now();
      const run = decodeRun(read);
      const back = decodeStatus(run.sections.get('status.v1')!, inv.key, inv.size)!;
      m.decode.push(performance.now() - t);
      t = performance.now();
      await lines.render(inv, back.status);
      const ms = performance.now() - t;
      if (r === 0) m.renderFirst = ms;
      else m.renderAgain.push(ms);
    }
    const info = await client.info('memory');
    const median = (xs: number[]) => round([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN, 2);
    const fig: PublishFigure = {
      devices,
      bytes,
      bytes_per_million_devices: Math.round((bytes / devices) * 1e6),
      encode_ms: median(m.encode),
      write_ms: median(m.write),
      read_ms: median(m.read),
      decode_ms: median(m.decode),
      render_first_ms: round(m.renderFirst, 1),
      render_again_ms: median(m.renderAgain),
      redis_used_memory_bytes: Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN),
      runs,
    };
    log(`publish ${devices} devices: ${fig.bytes} B, encode ${fig.encode_ms} ms, write ${fig.write_ms} ms, read ${fig.read_ms} ms, decode ${fig.decode_ms} ms, render ${fig.render_first_ms}/${fig.render_again_ms} ms`);
    return fig;
  } finally {
    client.disconnect();
    redis.proc.kill('SIGKILL');
  }
}

export interface FailoverFigure {
  lease_s: number;
  schedule: string;
  devices: number;
  /** SIGKILL of the leader → the other replica's first cloud call. */
  sigkill_to_first_call_s: number | null;
  /** The bound it must meet: lease + one schedule interval. */
  bound_s: number;
  /** SIGTERM of the (new) leader between two runs → the remaining replica holds the lease. */
  sigterm_handover_s: number | null;
  sigterm_exit_s: number | null;
  busiest_window: number;
  throttled: number;
  error?: string;
}

/** Two replicas, default lease; the leader killed, then the new one stopped gracefully (a third takes over). */
export async function failoverCase(tmp: string, leaseS = 15, intervalS = 5): Promise<FailoverFigure> {
  const dir = fs.mkdtempSync(path.join(tmp, 'failover-'));
  const devices = 1000;
  const fig: FailoverFigure = { lease_s: leaseS, schedule: `*/${intervalS} * * * * *`, devices, sigkill_to_first_call_s: null, bound_s: leaseS + intervalS, sigterm_handover_s: null, sigterm_exit_s: null, busiest_window: 0, throttled: 0 };
  const file = path.join(dir, 'devices.txt');
  fs.writeFileSync(file, fleetIds(devices).join('\n') + '\n');
  const redis = await startRedis();
  const emu = await startEmulator(dir, devices, 100, { min_ms: 20, max_ms: 60 });
  const rs: Array<{ id: string; base: string; stop(): Promise<void>; proc: ChildProcess }> = [];
  try {
    for (const id of ['a', 'b', 'c']) {
      const cluster = { redis: { url: `redis://127.0.0.1:${redis.port}/0` }, replica_id: id, lease: `${leaseS}s` };
      rs.push({ id, ...(await startReplica(dir, id, exporterConfig({ emuUrl: emu.url, file, schedule: fig.schedule, qps: 100, cluster }))) });
    }
    const scrape = async (r: (typeof rs)[number]) => selfSection((await get(`${r.base}/metrics`)).body.toString());
    const leads = async (r: (typeof rs)[number]) => sample(await scrape(r), 'cloud_session_exporter_cluster_leader', 'job_name="bench-fleet"') === 1;
    const calls = async (r: (typeof rs)[number]) => sample(await scrape(r), 'cloud_session_exporter_api_requests_total', 'code="OK"') ?? 0;
    let leader: (typeof rs)[number] | undefined;
    for (const until = Date.now() + 30_000; !leader && Date.now() < until; await sleep(200)) for (const r of rs) if (await leads(r)) leader = r;
    if (!leader) throw new Error('no leader');
    await sleep(2000);
    const others = rs.filter((r) => r !== leader);
    const before = await Promise.all(others.map(calls));
    leader.proc.kill('SIGKILL');
    const killed = Date.now();
    let next: (typeof rs)[number] | undefined;
    while (!next && Date.now() - killed < (leaseS + intervalS) * 3000) {
      for (const [i, r] of others.entries()) if ((await calls(r)) > before[i]) next = r;
      if (!next) await sleep(100);
    }
    if (!next) throw new Error('no replica took over');
    fig.sigkill_to_first_call_s = round((Date.now() - killed) / 1000, 2);
    const last = others.find((r) => r !== next)!;
    // A graceful stop lets the run in flight end (within the grace period) and publish it first: measured between runs.
    const lastSuccess = async () => sample(await scrape(next!), 'cloud_session_exporter_job_last_success_timestamp_seconds', 'job_name="bench-fleet"') ?? 0;
    const firstRun = await lastSuccess();
    while ((await lastSuccess()) === firstRun && Date.now() - killed < 60_000) await sleep(100);
    const t = Date.now();
    const stopping = next.stop();
    while (!(await leads(last)) && Date.now() - t < 10_000) await sleep(25);
    fig.sigterm_handover_s = round((Date.now() - t) / 1000, 3);
    await stopping;
    fig.sigterm_exit_s = round((Date.now() - t) / 1000, 3);
    const s = (await getJson<{ apis: Record<string, { throttled: number; busiest_window: number }> }>(`${emu.url}/_emulator/stats`)).apis.BatchQuerySessionByClientIds;
    fig.busiest_window = s.busiest_window;
    fig.throttled = s.throttled;
  } catch (err) {
    fig.error = (err as Error).message;
  } finally {
    for (const r of rs) await r.stop();
    await emu.child.stop();
    redis.proc.kill('SIGKILL');
  }
  log(`failover: SIGKILL → first call of the next leader ${fig.sigkill_to_first_call_s} s (bound ${fig.bound_s} s), SIGTERM → handover ${fig.sigterm_handover_s} s, exit ${fig.sigterm_exit_s} s${fig.error ? `, ERROR ${fig.error}` : ''}`);
  return fig;
}
