// aliyun_redis_sessions against the emulator through the real pop-core: every aggregate equals what the emulator's
// ground truth implies, and failing instances (business errors, NoPermission) fail alone, without retries.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { App } from '../../../src/core/app';
import { startEmulator, type Emulator } from '../../../emulator/server';
import { parseScenario } from '../../../emulator/scenario';
import { appFromYaml, scrapeApp } from '../../helpers/harness';
import { parseExposition, type Scrape } from '../../helpers/exposition';

const SCENARIO = `
seed: 42
credentials:
  - {account: main, provider: aliyun, access_key_id: LTAI-redis-test, access_key_secret: redis-test-secret}
redis:
  instances:
    # Hundreds of sessions over many IPs and several nodes; DAS lists only 500 of 640 and reports 20 more in Total.
    - {instance_id: r-big, nodes: 5, sessions: 640, client_ips: 37, max_listed: 500, total_extra: 20,
       blocked_ratio: 0.05, pubsub_ratio: 0.05, multi_ratio: 0.05}
    # The older answer style: Code "200", Success "true".
    - {instance_id: r-strings, nodes: [r-strings-db-0, r-strings-db-1], sessions: 120, client_ips: [10.1.0.1, 10.1.0.2, 10.1.0.3],
       code_as_string: true, success_as_string: true}
    - {instance_id: r-fail-code, sessions: 10, business_failure: code}
    - {instance_id: r-fail-success, sessions: 10, business_failure: success_false}
    - {instance_id: r-fail-success-str, sessions: 10, business_failure: success_false, success_as_string: true, code_as_string: true}
    - {instance_id: r-noperm, sessions: 10, no_permission: true}
`;

const OK_IDS = ['r-big', 'r-strings'];
// r-unknown is not in the scenario: DAS answers InvalidParams.
const FAIL_IDS = ['r-fail-code', 'r-fail-success', 'r-fail-success-str', 'r-noperm', 'r-unknown'];
const MAX_IPS = 10;
const MAX_COMMANDS = 4;
const THRESHOLDS = [60, 300, 3600];

interface TruthSession {
  Sub: number;
  Psub: number;
  Idle: number;
  Flags: string;
  Multi: number;
  Omem: number;
  Qbuf: number;
  Client: string;
  Cmd: string;
  NodeId: string;
  Age: string;
}
interface TruthData {
  Total: number;
  Sessions: TruthSession[];
  SourceStats: Array<{ Key: string; Count: string; Ids: number[] }>;
}

/** Top `limit` by value (ties by key), the rest summed into "other": written independently of the job's code. */
function capped(counts: Map<string, number>, limit: number): Map<string, number> {
  if (counts.size <= limit) return counts;
  const sorted = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out = new Map(sorted.slice(0, limit));
  out.set('other', sorted.slice(limit).reduce((a, [, v]) => a + v, 0));
  return out;
}

function countBy<T>(items: T[], key: (t: T) => string, val: (t: T) => number = () => 1): Map<string, number> {
  const m = new Map<string, number>();
  for (const i of items) m.set(key(i), (m.get(key(i)) ?? 0) + val(i));
  return m;
}

let emulator: Emulator;
let app: App;
let samples: Scrape;
let truth: Record<string, TruthData | { error: string }>;

beforeAll(async () => {
  emulator = await startEmulator({ scenario: parseScenario(SCENARIO, 'redis-emulator-test'), port: 0 });
  ({ app } = appFromYaml(
    `
accounts:
  - name: main
    provider: aliyun
    access_key_id: LTAI-redis-test
    access_key_secret: redis-test-secret
jobs:
  - name: redis
    type: aliyun_redis_sessions
    account: main
    schedule: "0 * * * * *"
    endpoint: \${EMULATOR_URL}
    instance_ids: [${[...OK_IDS, ...FAIL_IDS].join(', ')}]
    max_client_ips: ${MAX_IPS}
    max_commands: ${MAX_COMMANDS}
    idle_thresholds: [1m, 5m, 1h]
    labels: {env: test}
`,
    { EMULATOR_URL: emulator.url },
  ));
  await app.runAllNow();
  samples = parseExposition(await scrapeApp(app));
  truth = ((await (await fetch(`${emulator.url}/_emulator/truth`)).json()) as { redis: typeof truth }).redis;
});

afterAll(async () => {
  await app?.stop(0);
  await emulator?.close();
});

describe.each(OK_IDS)('instance %s: every aggregate equals the truth', (id) => {
  const t = () => truth[id] as TruthData;
  const m = { instance_id: id };

  test('the truth is what the test expects', () => {
    expect('error' in truth[id]).toBe(false);
    expect(t().Sessions.length).toBeGreaterThan(100);
  });

  test('sessions, listed sessions, per node', () => {
    expect(samples.value('aliyun_redis_sessions', m)).toBe(t().Total);
    expect(samples.value('aliyun_redis_listed_sessions', m)).toBe(t().Sessions.length);
    expect(samples.byLabel('aliyun_redis_node_sessions', 'node_id', m)).toEqual(countBy(t().Sessions, (s) => s.NodeId));
    if (id === 'r-big') {
      expect(t().Total).toBe(660);
      expect(t().Sessions.length).toBe(500);
      expect(samples.byLabel('aliyun_redis_node_sessions', 'node_id', m).size).toBe(5);
    }
  });

  test('per client IP, capped with an exact other', () => {
    const perIp = new Map(t().SourceStats.map((s) => [s.Key, Number(s.Count)]));
    const expected = capped(perIp, MAX_IPS);
    const got = samples.byLabel('aliyun_redis_client_sessions', 'client_ip', m);
    expect(got).toEqual(expected);
    // The sum stays exact: every session, listed or not.
    expect([...got.values()].reduce((a, b) => a + b, 0)).toBe(t().SourceStats.reduce((a, s) => a + Number(s.Count), 0));
    expect(samples.value('aliyun_redis_client_ips_folded_total', m)).toBe(Math.max(0, perIp.size - MAX_IPS));
    if (id === 'r-big') expect(perIp.size).toBeGreaterThan(MAX_IPS);

    // Buffers per IP use the same kept IPs; everything else is in other.
    const kept = new Set([...expected.keys()].filter((k) => k !== 'other'));
    const ipOf = (s: TruthSession) => (kept.has(s.Client) ? s.Client : 'other');
    const omem = countBy(t().Sessions, ipOf, (s) => s.Omem);
    const qbuf = countBy(t().Sessions, ipOf, (s) => s.Qbuf);
    for (const k of kept) {
      if (!omem.has(k)) omem.set(k, 0);
      if (!qbuf.has(k)) qbuf.set(k, 0);
    }
    expect(samples.byLabel('aliyun_redis_client_output_buffer_bytes', 'client_ip', m)).toEqual(omem);
    expect(samples.byLabel('aliyun_redis_client_query_buffer_bytes', 'client_ip', m)).toEqual(qbuf);
    expect(samples.value('aliyun_redis_output_buffer_bytes', m)).toBe(t().Sessions.reduce((a, s) => a + s.Omem, 0));
  });

  test('commands, idle thresholds', () => {
    const cmds = countBy(t().Sessions, (s) => s.Cmd.toLowerCase());
    expect(samples.byLabel('aliyun_redis_command_sessions', 'command', m)).toEqual(capped(cmds, MAX_COMMANDS));
    if (id === 'r-big') expect(cmds.size).toBeGreaterThan(MAX_COMMANDS);
    const idle = samples.byLabel('aliyun_redis_idle_sessions', 'idle_seconds_min', m);
    expect(idle).toEqual(new Map(THRESHOLDS.map((th) => [String(th), t().Sessions.filter((s) => s.Idle >= th).length])));
  });

  test('pub/sub, MULTI, blocked, oldest age', () => {
    const s = t().Sessions;
    const pubsub = s.filter((x) => x.Sub > 0 || x.Psub > 0).length;
    const multi = s.filter((x) => x.Multi >= 0).length;
    const blocked = s.filter((x) => x.Flags.includes('b')).length;
    expect(samples.value('aliyun_redis_pubsub_sessions', m)).toBe(pubsub);
    expect(samples.value('aliyun_redis_multi_sessions', m)).toBe(multi);
    expect(samples.value('aliyun_redis_blocked_sessions', m)).toBe(blocked);
    expect(samples.value('aliyun_redis_oldest_session_age_seconds', m)).toBe(Math.max(...s.map((x) => Number(x.Age))));
    if (id === 'r-big') for (const n of [pubsub, multi, blocked]) expect(n).toBeGreaterThan(0);
  });

  test('label order: instance_id first, the metric label next, static labels last', () => {
    const mine = samples.samples.filter((x) => x.name.startsWith('aliyun_redis_') && x.labels.instance_id === id);
    // Every family of the instance, so a wrong order cannot hide by leaving nothing to check.
    expect(new Set(mine.map((x) => x.name)).size).toBeGreaterThanOrEqual(14);
    for (const smp of mine) {
      const names = smp.pairs.map(([k]) => k);
      expect(names[0]).toBe('instance_id');
      expect(names[names.length - 1]).toBe('env');
      expect(names.length).toBeLessThanOrEqual(3);
    }
  });

  test('instance success 1', () => {
    expect(samples.value('cloud_session_exporter_instance_success', { job_name: 'redis', instance_id: id })).toBe(1);
    expect(samples.value('cloud_session_exporter_instance_last_success_timestamp_seconds', { job_name: 'redis', instance_id: id })).toBeGreaterThan(0);
  });
});

describe('failing instances fail alone', () => {
  test.each(FAIL_IDS)('%s: instance success 0 and no Redis series', (id) => {
    expect(samples.value('cloud_session_exporter_instance_success', { job_name: 'redis', instance_id: id })).toBe(0);
    expect(samples.samples.filter((s) => s.name.startsWith('aliyun_redis_') && s.labels.instance_id === id)).toEqual([]);
  });

  test('the job as a whole failed, yet the good instances were exported', () => {
    expect(samples.value('cloud_session_exporter_job_success', { job_name: 'redis' })).toBe(0);
    for (const id of OK_IDS) expect(samples.value('aliyun_redis_sessions', { instance_id: id })).toBeGreaterThan(0);
  });

  test('one call per instance: business errors, NoPermission and InvalidParams are not retried', () => {
    const api = { account: 'main', api: 'GetRedisAllSession' };
    expect(samples.value('cloud_session_exporter_api_requests_total', { ...api, code: 'OK' })).toBe(OK_IDS.length);
    // Code "-1001" (string) + Success false: pop-core throws with the body's code.
    expect(samples.value('cloud_session_exporter_api_requests_total', { ...api, code: '-1001' })).toBe(1);
    // Code 200 + Success false (boolean or string): pop-core passes it, the job's parser refuses it.
    expect(samples.value('cloud_session_exporter_api_requests_total', { ...api, code: 'BusinessFailure' })).toBe(2);
    expect(samples.value('cloud_session_exporter_api_requests_total', { ...api, code: 'NoPermission' })).toBe(1);
    expect(samples.value('cloud_session_exporter_api_requests_total', { ...api, code: 'InvalidParams' })).toBe(1);
    expect(samples.value('cloud_session_exporter_api_retries_total', api)).toBe(0);
    const stats = emulator.stats().apis.GetRedisAllSession;
    expect(stats.calls).toBe(OK_IDS.length + FAIL_IDS.length);
    expect(stats.ok).toBe(OK_IDS.length);
    expect(stats.errors.NoPermission).toBe(1);
    expect(stats.errors.InvalidParams).toBe(1);
  });

  test('a second run keeps the folded counter growing and the failures failing', async () => {
    const before = samples.value('aliyun_redis_client_ips_folded_total', { instance_id: 'r-big' })!;
    await app.runAllNow();
    const again = parseExposition(await scrapeApp(app));
    expect(again.value('aliyun_redis_client_ips_folded_total', { instance_id: 'r-big' })).toBe(before * 2);
    expect(again.value('cloud_session_exporter_instance_success', { job_name: 'redis', instance_id: 'r-noperm' })).toBe(0);
    expect(again.value('cloud_session_exporter_instance_success', { job_name: 'redis', instance_id: 'r-big' })).toBe(1);
    expect(emulator.stats().apis.GetRedisAllSession.calls).toBe(2 * (OK_IDS.length + FAIL_IDS.length));
  });
});

describe('DAS throttling', () => {
  test('calls over the cloud\'s limit get Throttling.User (HTTP 400): retried, counted as throttled, and every instance exported', async () => {
    const ids = ['r-one', 'r-two', 'r-three'];
    const scenario = `
seed: 1
credentials:
  - {account: main, provider: aliyun, access_key_id: LTAI-redis-test, access_key_secret: redis-test-secret}
rate_limits: {GetRedisAllSession: 1}
redis:
  instances:
${ids.map((id) => `    - {instance_id: ${id}, sessions: 5}`).join('\n')}
`;
    const emu = await startEmulator({ scenario: parseScenario(scenario, 'das-throttling'), port: 0 });
    const t = appFromYaml(
      `
accounts:
  - {name: main, provider: aliyun, access_key_id: LTAI-redis-test, access_key_secret: redis-test-secret}
jobs:
  - {name: redis, type: aliyun_redis_sessions, account: main, schedule: "0 * * * * *", timeout: 20s, endpoint: "${emu.url}", instance_ids: [${ids.join(', ')}]}
`,
    );
    try {
      await t.app.runAllNow();
      const m = parseExposition(await t.scrape());
      const api = { account: 'main', api: 'GetRedisAllSession' };
      const throttled = emu.stats().apis.GetRedisAllSession.throttled;
      expect(throttled).toBeGreaterThan(0);
      expect(m.value('cloud_session_exporter_api_requests_total', { ...api, code: 'Throttling.User' })).toBe(throttled);
      expect(m.value('cloud_session_exporter_api_throttled_total', api)).toBe(throttled);
      expect(m.value('cloud_session_exporter_api_retries_total', api)).toBe(throttled);
      expect(m.value('cloud_session_exporter_job_success', { job_name: 'redis' })).toBe(1);
      for (const id of ids) expect(m.value('aliyun_redis_sessions', { instance_id: id })).toBe(5);
    } finally {
      await t.app.stop(0);
      await emu.close();
    }
  }, 30_000);
});
