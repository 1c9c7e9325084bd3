// tencentcloud_mongodb_connections against the emulator with the real Tencent SDK: values equal the emulator's truth,
// the cardinality cap keeps sums exact, and the 5 calls/s limit is never exceeded.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ACCOUNT, API, SCENARIO_CREDENTIALS, SECRET_KEY, TOKEN, startHarness, type Harness, type Scrape } from './harness';
import { expectNoDuplicateSeries } from '../../helpers/exposition';

const BIG = 'cmgo-big00001';
const SMALL = 'cmgo-small001';

const SCENARIO = `
seed: 11
${SCENARIO_CREDENTIALS}
latency: {min_ms: 5, max_ms: 30}
mongodb:
  instances:
    - instance_id: ${BIG}
      region: ap-guangzhou
      client_ips: 2345
      connections_per_ip: {min: 1, max: 60}
      internal_service_ratio: 0.3
    - instance_id: ${SMALL}
      region: ap-guangzhou
      clients:
        - {ip: 192.168.0.10, count: 12}
        - {ip: 192.168.0.11, count: 3, internal_service: true}
      client_ips: 4
      internal_service_ratio: 0.5
`;

type TruthClients = Array<{ IP: string; Count: number; InternalService: boolean }>;

async function truthOf(h: Harness): Promise<Record<string, { TotalCount: number; Clients: TruthClients }>> {
  const res = await fetch(`${h.emu.url}/_emulator/truth`);
  return ((await res.json()) as { mongodb: Record<string, { TotalCount: number; Clients: TruthClients }> }).mongodb;
}

// The emulator runs in its own process wherever a test asserts the cloud's 1-second windows (see harness.ts).
describe('healthy scenario, cap high enough to keep every IP', () => {
  let h: Harness;
  let m: Scrape;
  beforeAll(async () => {
    h = await startHarness(SCENARIO, { instanceIds: [BIG, SMALL], maxClientIps: 5000 }, { ownProcess: true });
    m = await h.run();
  });
  afterAll(async () => h?.close());

  test('per-IP values, internal_service and totals equal the truth for 2,345 IPs (3 pages) and a small instance', async () => {
    const truth = await truthOf(h);
    for (const id of [BIG, SMALL]) {
      const t = truth[id];
      const series = m.all('tencentcloud_mongodb_client_connections', { instance_id: id });
      expect(series.length).toBe(t.Clients.length);
      const got = new Map(series.map((s) => [s.labels.client_ip, s]));
      for (const c of t.Clients) {
        const s = got.get(c.IP);
        expect(s, c.IP).toBeDefined();
        expect(s!.value).toBe(c.Count);
        expect(s!.labels.internal_service).toBe(String(c.InternalService));
      }
      expect(m.value('tencentcloud_mongodb_connections', { instance_id: id })).toBe(t.Clients.reduce((a, c) => a + c.Count, 0));
      expect(m.value('tencentcloud_mongodb_client_ips', { instance_id: id })).toBe(t.TotalCount);
      expect(m.value('tencentcloud_mongodb_result_complete', { instance_id: id })).toBe(1);
      expect(m.value('tencentcloud_mongodb_client_query_supported', { instance_id: id })).toBe(1);
      expect(m.value('tencentcloud_mongodb_client_ips_folded_total', { instance_id: id })).toBe(0);
      expect(m.value('cloud_session_exporter_instance_success', { job_name: 'mongo', instance_id: id })).toBe(1);
    }
    expect(truth[BIG].TotalCount).toBe(2345);
    expect(m.value('tencentcloud_mongodb_pages_fetched', { instance_id: BIG })).toBe(3);
    expect(m.value('tencentcloud_mongodb_pages_fetched', { instance_id: SMALL })).toBe(1);
    expect(m.all('tencentcloud_mongodb_client_connections', { client_ip: 'other' })).toEqual([]);
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'mongo' })).toBe(1);
    expectNoDuplicateSeries(m);
  });

  test('labels: region, instance_id first, then the metric labels, then the static labels', () => {
    const s = m.one('tencentcloud_mongodb_client_connections', { instance_id: SMALL, client_ip: '192.168.0.11' })!;
    expect(s.rawLabels).toBe('region="ap-guangzhou",instance_id="cmgo-small001",client_ip="192.168.0.11",internal_service="true",env="test"');
    expect(m.one('tencentcloud_mongodb_connections', { instance_id: SMALL })!.rawLabels).toBe('region="ap-guangzhou",instance_id="cmgo-small001",env="test"');
    for (const name of ['tencentcloud_mongodb_client_ips', 'tencentcloud_mongodb_client_ips_folded_total', 'tencentcloud_mongodb_client_query_supported', 'tencentcloud_mongodb_pages_fetched', 'tencentcloud_mongodb_result_complete']) {
      expect(m.one(name, { instance_id: BIG })!.rawLabels).toBe(`region="ap-guangzhou",instance_id="${BIG}",env="test"`);
    }
  });

  test('exactly 4 calls, none throttled, none retried, never more than 5 in a second', async () => {
    const stats = (await h.emu.stats()).apis[API];
    expect(stats.calls).toBe(4);
    expect(stats.ok).toBe(4);
    expect(stats.throttled).toBe(0);
    expect(stats.busiest_window_with_throttled).toBeLessThanOrEqual(5);
    expect(m.value('cloud_session_exporter_api_requests_total', { account: ACCOUNT, api: API, code: 'OK' })).toBe(4);
    expect(m.value('cloud_session_exporter_api_retries_total', { account: ACCOUNT, api: API })).toBe(0);
    expect(m.value('cloud_session_exporter_api_throttled_total', { account: ACCOUNT, api: API })).toBe(0);
    expect(m.value('cloud_session_exporter_ratelimit_qps', { account: ACCOUNT, api: API })).toBe(5);
    // The default margin at 5 calls/s, not widened: nothing was throttled.
    expect(m.value('cloud_session_exporter_ratelimit_margin_seconds', { account: ACCOUNT, api: API })).toBe(0.1);
  });

  test('no credential appears in the logs or the exposition', async () => {
    const text = h.logs.join('') + JSON.stringify(m.samples);
    expect(text).not.toContain(SECRET_KEY);
    expect(text).not.toContain(TOKEN);
  });
});

describe('cardinality cap: max_client_ips 50', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(SCENARIO, { instanceIds: [BIG, SMALL], maxClientIps: 50 });
  });
  afterAll(async () => h?.close());

  test('top 50 IPs kept, the rest in client_ip="other" per internal_service, sums exact, folded counter counts', async () => {
    const m = await h.run();
    const truth = (await truthOf(h))[BIG];
    const series = m.all('tencentcloud_mongodb_client_connections', { instance_id: BIG });
    const others = series.filter((s) => s.labels.client_ip === 'other');
    expect(series.length).toBe(52);
    expect(others.map((s) => s.labels.internal_service).sort()).toEqual(['false', 'true']);
    const total = truth.Clients.reduce((a, c) => a + c.Count, 0);
    expect(series.reduce((a, s) => a + s.value, 0)).toBe(total);
    expect(m.value('tencentcloud_mongodb_connections', { instance_id: BIG })).toBe(total);
    for (const internal of [true, false]) {
      const want = truth.Clients.filter((c) => c.InternalService === internal).reduce((a, c) => a + c.Count, 0);
      expect(m.sum('tencentcloud_mongodb_client_connections', { instance_id: BIG, internal_service: String(internal) })).toBe(want);
    }
    // The kept IPs are the heaviest: none folded has more connections than the lightest kept one.
    const kept = series.filter((s) => s.labels.client_ip !== 'other');
    const byIp = new Map(truth.Clients.map((c) => [c.IP, c.Count]));
    for (const s of kept) expect(s.value).toBe(byIp.get(s.labels.client_ip));
    const lightestKept = Math.min(...kept.map((s) => s.value));
    const keptIps = new Set(kept.map((s) => s.labels.client_ip));
    expect(Math.max(...truth.Clients.filter((c) => !keptIps.has(c.IP)).map((c) => c.Count))).toBeLessThanOrEqual(lightestKept);
    expect(m.value('tencentcloud_mongodb_client_ips_folded_total', { instance_id: BIG })).toBe(2345 - 50);
    expect(m.value('tencentcloud_mongodb_client_ips', { instance_id: BIG })).toBe(2345);
    // The small instance stays under the cap: no "other" series.
    expect(m.all('tencentcloud_mongodb_client_connections', { instance_id: SMALL, client_ip: 'other' })).toEqual([]);
    expect(m.all('tencentcloud_mongodb_client_connections', { instance_id: SMALL }).length).toBe(6);

    const again = await h.run();
    expect(again.value('tencentcloud_mongodb_client_ips_folded_total', { instance_id: BIG })).toBe(2 * (2345 - 50));
    expect(again.value('tencentcloud_mongodb_client_ips_folded_total', { instance_id: SMALL })).toBe(0);
  });
});

describe('many instances on one account share the 5 calls/s limit', () => {
  let h: Harness;
  const ids = Array.from({ length: 8 }, (_, i) => `cmgo-many000${i}`);
  beforeAll(async () => {
    const instances = ids.map((id, i) => `    - {instance_id: ${id}, client_ips: ${i % 2 === 0 ? 1500 : 40}}`).join('\n');
    // A saturated 5/s limit with the default guard (100 ms at 5/s): the emulator counts arrivals in its own process,
    // so under CPU load a call reaches it tens of ms after it started. With the former flat 20 ms margin this test drew
    // a RequestLimitExceeded in about 1 run in 4 under load.
    h = await startHarness(`${SCENARIO_CREDENTIALS}\nmongodb:\n  instances:\n${instances}\n`, { instanceIds: ids, maxClientIps: 10 }, { ownProcess: true });
  });
  afterAll(async () => h?.close());

  test('12 calls: all answered, none throttled, at most 5 in any 1-second window', async () => {
    const m = await h.run();
    const stats = (await h.emu.stats()).apis[API];
    expect(stats.calls).toBe(12);
    expect(stats.throttled).toBe(0);
    expect(stats.busiest_window_with_throttled).toBeLessThanOrEqual(5);
    // The quota is used, not just respected (pacing may spread starts slightly on a loaded machine).
    expect(stats.busiest_window).toBeGreaterThanOrEqual(4);
    for (const [i, id] of ids.entries()) {
      expect(m.value('tencentcloud_mongodb_client_ips', { instance_id: id })).toBe(i % 2 === 0 ? 1500 : 40);
      expect(m.value('tencentcloud_mongodb_pages_fetched', { instance_id: id })).toBe(i % 2 === 0 ? 2 : 1);
    }
  });
});
