// Pagination under change: pages that move during the walk (emulator), and a lying server (scripted transport)
// that must never make the walk loop, duplicate a series or report an inconsistent walk as complete.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createApp } from '../../../src/core/app';
import type { CallRequest, CloudTransport } from '../../../src/cloud/transport';
import { parseConfig } from '../../../src/config/load';
import { JOB_TYPES } from '../../../src/apis';
import { walkPages } from '../../../src/apis/tencentcloud-mongodb-connections/walk';
import type { ClientRecord, Page } from '../../../src/apis/tencentcloud-mongodb-connections/parse';
import { createLogger } from '../../../src/util/log';
import { snapshotExposition } from '../../../src/metrics/exposition';
import { Scrape, SCENARIO_CREDENTIALS, exporterConfigYaml, parseExposition, startHarness, type Harness } from './harness';
import { expectNoDuplicateSeries } from '../../helpers/exposition';

const rec = (i: number, count = 1 + (i % 7)): ClientRecord => ({ ip: `10.0.${i >> 8}.${i & 255}`, count, internal: i % 3 === 0 });

describe('pages that change mid-walk (emulator mutate_between_pages)', () => {
  let h: Harness;
  let m: Scrape;
  const modes = ['insert_front', 'remove_front', 'append'] as const;
  beforeAll(async () => {
    const instances = [
      ...modes.map((mode) => `    - {instance_id: cmgo-${mode.replace('_', '')}, client_ips: 2345, mutate_between_pages: ${mode}}`),
      '    - {instance_id: cmgo-stable01, client_ips: 2345}',
      '    - {instance_id: cmgo-onepage1, client_ips: 40, mutate_between_pages: insert_front}',
    ].join('\n');
    h = await startHarness(`${SCENARIO_CREDENTIALS}\nmongodb:\n  instances:\n${instances}\n`, {
      instanceIds: [...modes.map((mode) => `cmgo-${mode.replace('_', '')}`), 'cmgo-stable01', 'cmgo-onepage1'],
      maxClientIps: 100_000,
    });
    m = await h.run();
  }, 60_000);
  afterAll(async () => h?.close());

  test('a walk whose pages move is repeated once, then reported with result_complete 0', () => {
    for (const mode of modes) {
      const id = `cmgo-${mode.replace('_', '')}`;
      expect(m.value('cloud_session_exporter_instance_success', { job_name: 'mongo', instance_id: id }), id).toBe(1);
      expect(m.value('tencentcloud_mongodb_result_complete', { instance_id: id }), id).toBe(0);
      expect(m.value('tencentcloud_mongodb_pages_fetched', { instance_id: id }), id).toBe(6);
      // The totals stay self-consistent: the per-IP series sum to the connections gauge.
      expect(m.sum('tencentcloud_mongodb_client_connections', { instance_id: id })).toBe(m.value('tencentcloud_mongodb_connections', { instance_id: id }));
    }
    expect(h.logs.filter((l) => l.includes('two walks in a row')).length).toBe(3);
  });

  test('no IP gets two series, however the pages shifted', () => {
    expectNoDuplicateSeries(m);
    const ips = m.all('tencentcloud_mongodb_client_connections', { instance_id: 'cmgo-insertfront' }).map((s) => s.labels.client_ip);
    expect(new Set(ips).size).toBe(ips.length);
  });

  test('stable instances in the same job stay complete (a one-page walk cannot see the change)', () => {
    expect(m.value('tencentcloud_mongodb_result_complete', { instance_id: 'cmgo-stable01' })).toBe(1);
    expect(m.value('tencentcloud_mongodb_pages_fetched', { instance_id: 'cmgo-stable01' })).toBe(3);
    expect(m.value('tencentcloud_mongodb_result_complete', { instance_id: 'cmgo-onepage1' })).toBe(1);
    expect(m.value('tencentcloud_mongodb_pages_fetched', { instance_id: 'cmgo-onepage1' })).toBe(1);
  });
});

describe('TotalCount as the documentation samples give it (emulator total_count), through the SDK', () => {
  let h: Harness;
  let m: Scrape;
  // instance → [total_count, client IPs, expected TotalCount series, expected mismatch, expected calls]
  const cases: Record<string, [string, number, number | undefined, number, number]> = {
    'cmgo-tccorrect': ['correct', 2345, 2345, 0, 3],
    'cmgo-tczero001': ['zero', 2345, 0, 1, 3],
    'cmgo-tcabsent1': ['absent', 2345, undefined, 1, 3],
    'cmgo-tcover001': ['{off_by: 5}', 2345, 2350, 1, 3],
    'cmgo-tcsample1': ['{off_by: -1}', 2, 1, 1, 1],
    // A last page that happens to be full costs one more call, answered empty, whatever TotalCount says.
    'cmgo-tcfull001': ['correct', 2000, 2000, 0, 3],
  };
  beforeAll(async () => {
    const instances = Object.entries(cases).map(([id, [mode, ips]]) => `    - {instance_id: ${id}, client_ips: ${ips}, total_count: ${mode}}`);
    h = await startHarness(`${SCENARIO_CREDENTIALS}\nmongodb:\n  instances:\n${instances.join('\n')}\n`, { instanceIds: Object.keys(cases) });
    m = await h.run();
  }, 60_000);
  afterAll(async () => h?.close());

  test.each(Object.keys(cases))('%s: every client listed, TotalCount shown as said, the mismatch reported, no walk repeated', async (id) => {
    const [, ips, total, mismatch, calls] = cases[id];
    const truth = (await h.emu.truth()).mongodb[id];
    expect(truth.TotalCount).toBe(ips);
    expect(m.all('tencentcloud_mongodb_client_connections', { instance_id: id }).map((s) => s.labels.client_ip).sort()).toEqual(truth.Clients.map((c) => c.IP).sort());
    expect(m.value('tencentcloud_mongodb_client_ips', { instance_id: id })).toBe(ips);
    expect(m.value('tencentcloud_mongodb_total_count_reported', { instance_id: id })).toBe(total);
    expect(m.value('tencentcloud_mongodb_total_count_mismatch', { instance_id: id })).toBe(mismatch);
    expect(m.value('tencentcloud_mongodb_result_complete', { instance_id: id })).toBe(1);
    expect(m.value('tencentcloud_mongodb_pages_fetched', { instance_id: id })).toBe(calls);
  });

  test('the calls against the 5/s budget are exactly one per page read', async () => {
    const stats = (await h.emu.stats()).apis.DescribeClientConnections;
    expect(stats.calls).toBe(Object.values(cases).reduce((a, c) => a + c[4], 0));
    expect(stats.throttled).toBe(0);
    expect(m.value('cloud_session_exporter_api_retries_total', { api: 'DescribeClientConnections' })).toBe(0);
  });
});

describe('walkPages against a scripted server', () => {
  // `total` null: the answers carry no TotalCount.
  const serve = (records: ClientRecord[], total: number | null = records.length, cap = Infinity) => async (offset: number, limit: number): Promise<Page> => ({
    clients: records.slice(offset, offset + Math.min(limit, cap)),
    totalCount: total ?? undefined,
  });

  test('a stable list is read exactly once, offset stepping by Limit', async () => {
    const records = Array.from({ length: 2345 }, (_, i) => rec(i));
    const offsets: number[] = [];
    const inner = serve(records);
    const w = await walkPages((o, l) => (offsets.push(o), inner(o, l)), 1000);
    expect(offsets).toEqual([0, 1000, 2000]);
    expect(w.problems).toEqual([]);
    expect(w.clients.size).toBe(2345);
  });

  test('TotalCount 0: one page, complete', async () => {
    const w = await walkPages(serve([]), 1000);
    expect(w.pages).toBe(1);
    expect(w.problems).toEqual([]);
  });

  test.each([
    ['absent', null],
    ['0', 0],
    ['1 (the sample with 2 clients)', 1],
    ['2,344 (one short)', 2344],
  ])('TotalCount %s: every page read until the short one, the walk complete', async (_what, total) => {
    const records = Array.from({ length: 2345 }, (_, i) => rec(i));
    const offsets: number[] = [];
    const inner = serve(records, total);
    const w = await walkPages((o, l) => (offsets.push(o), inner(o, l)), 1000);
    expect(offsets).toEqual([0, 1000, 2000]);
    expect(w.clients.size).toBe(2345);
    expect(w.totalCount).toBe(total ?? undefined);
    expect(w.problems).toEqual([]);
  });

  test('a last page that happens to be full costs one call more, answered empty', async () => {
    const records = Array.from({ length: 2000 }, (_, i) => rec(i));
    const w = await walkPages(serve(records), 1000);
    expect([w.pages, w.clients.size, w.problems]).toEqual([3, 2000, []]);
  });

  test('a server paging below Limit is read up to its first (short) page: TotalCount above the IPs listed is all that shows it', async () => {
    const records = Array.from({ length: 950 }, (_, i) => rec(i));
    const w = await walkPages(serve(records, 950, 300), 1000);
    expect([w.pages, w.clients.size, w.totalCount, w.problems]).toEqual([1, 300, 950, []]);
  });

  test('a server that never stops growing is cut off at ceil(max(first TotalCount, 100,000) / Limit) + 2 pages', async () => {
    let calls = 0;
    const w = await walkPages(async (offset, limit) => {
      calls++;
      return { clients: Array.from({ length: limit }, (_, i) => rec(offset + i)), totalCount: 3000 + offset + 2 * limit };
    }, 1000);
    expect(calls).toBe(102);
    expect(w.problems.some((p) => p.startsWith('stopped after 102 pages'))).toBe(true);
  });

  test('a server that claims more than it returns: the walk ends at the first short (here empty) page, complete', async () => {
    const records = Array.from({ length: 1000 }, (_, i) => rec(i));
    const w = await walkPages(serve(records, 5000), 1000);
    expect([w.pages, w.clients.size, w.problems]).toEqual([2, 1000, []]);
  });

  test('a server returning the same full page again: each IP kept once, with its latest record, walk incomplete', async () => {
    let call = 0;
    const w = await walkPages(async () => {
      call++;
      return { clients: [rec(1, call), rec(2, 10 * call)], totalCount: 6 };
    }, 2);
    expect(w.pages).toBe(2);
    expect(w.clients.size).toBe(2);
    expect(w.clients.get(rec(1).ip)!.count).toBe(2);
    expect(w.clients.get(rec(2).ip)!.count).toBe(20);
    expect(w.problems.some((p) => p.includes('repeated IPs already seen, and nothing else'))).toBe(true);
    expect(w.problems.some((p) => p.includes('repeated an IP'))).toBe(true);
  });
});

// The job with a scripted transport instead of the SDK: what happens when only the first walk is disturbed.
class ScriptedTransport implements CloudTransport {
  readonly provider = 'tencentcloud' as const;
  calls: Array<Record<string, unknown>> = [];
  constructor(private readonly answer: (call: number, params: Record<string, unknown>) => Promise<unknown>) {}
  async call(req: CallRequest): Promise<unknown> {
    this.calls.push({ ...req.params, region: req.region });
    return this.answer(this.calls.length, req.params);
  }
}

async function runWithTransport(transport: CloudTransport, maxClientIps = 100_000): Promise<{ m: Scrape; logs: string[] }> {
  const logs: string[] = [];
  const config = parseConfig(exporterConfigYaml('https://mongodb.internal.tencentcloudapi.com', { instanceIds: ['cmgo-scripted'], maxClientIps }), 'x.yml', {
    env: { TC_ID: 'AKIDscripted', TC_KEY: 'scripted-key-123', TC_TOKEN: 'scripted-token-123' },
    jobTypes: JOB_TYPES,
  });
  const app = createApp(config, { jobTypes: JOB_TYPES, logger: createLogger({ format: 'json', write: (l) => logs.push(l) }), processMetrics: false, transports: { tencentcloud: () => transport } });
  try {
    await app.runAllNow();
    return { m: parseExposition(([...snapshotExposition(await app.metrics.registry.metrics(), app.store)].join(''))), logs };
  } finally {
    await app.stop(0);
  }
}

describe('the job repeats a disturbed walk once', () => {
  const records = Array.from({ length: 2345 }, (_, i) => rec(i));
  const page = (offset: number, total = records.length, list = records) => ({ Clients: list.slice(offset, offset + 1000).map((r) => ({ IP: r.ip, Count: r.count, InternalService: r.internal })), TotalCount: total, RequestId: 'r' });

  test('first walk sees TotalCount move, the second is clean: complete, pages of both walks counted, the region sent as the call\'s region', async () => {
    const t = new ScriptedTransport(async (call, p) => page(Number(p.Offset), call === 2 ? records.length + 1 : records.length));
    const { m } = await runWithTransport(t);
    expect(m.value('tencentcloud_mongodb_result_complete', { instance_id: 'cmgo-scripted' })).toBe(1);
    expect(m.value('tencentcloud_mongodb_pages_fetched', { instance_id: 'cmgo-scripted' })).toBe(6);
    expect(m.value('tencentcloud_mongodb_client_ips', { instance_id: 'cmgo-scripted' })).toBe(2345);
    expect(t.calls[0]).toEqual({ region: 'ap-guangzhou', InstanceId: 'cmgo-scripted', Limit: 1000, Offset: 0 });
    expect(t.calls.map((c) => c.Offset)).toEqual([0, 1000, 2000, 0, 1000, 2000]);
  });

  test('a TotalCount that disagrees with the rows is reported, not walked again: one walk, one call per page', async () => {
    for (const [total, mismatch] of [[records.length, 0], [0, 1], [1, 1], [undefined, 1], [records.length + 7, 1]] as const) {
      const t = new ScriptedTransport(async (_call, p) => {
        const { TotalCount: _t, ...rest } = page(Number(p.Offset));
        return total === undefined ? rest : { ...rest, TotalCount: total };
      });
      const { m } = await runWithTransport(t);
      const id = { instance_id: 'cmgo-scripted' };
      expect(t.calls.map((c) => c.Offset), `TotalCount ${total}`).toEqual([0, 1000, 2000]);
      expect(m.value('tencentcloud_mongodb_client_ips', id)).toBe(2345);
      expect(m.value('tencentcloud_mongodb_total_count_reported', id)).toBe(total);
      expect(m.value('tencentcloud_mongodb_total_count_mismatch', id)).toBe(mismatch);
      expect(m.value('tencentcloud_mongodb_result_complete', id)).toBe(1);
      expect(m.value('tencentcloud_mongodb_pages_fetched', id)).toBe(3);
      expect(m.all('tencentcloud_mongodb_client_connections')).toHaveLength(2345);
    }
  });

  test('the repeated walk fails: the first walk is reported, incomplete, and the poll still counts as ok', async () => {
    const t = new ScriptedTransport(async (call, p) => {
      if (call >= 4) throw Object.assign(new Error('boom'), {});
      return page(Number(p.Offset), call === 2 ? records.length - 1 : records.length);
    });
    const { m, logs } = await runWithTransport(t);
    expect(m.value('cloud_session_exporter_instance_success', { job_name: 'mongo', instance_id: 'cmgo-scripted' })).toBe(1);
    expect(m.value('tencentcloud_mongodb_result_complete', { instance_id: 'cmgo-scripted' })).toBe(0);
    expect(m.value('tencentcloud_mongodb_pages_fetched', { instance_id: 'cmgo-scripted' })).toBe(3);
    expect(m.all('tencentcloud_mongodb_client_connections').length).toBe(2345);
    expect(logs.some((l) => l.includes('the repeated walk failed'))).toBe(true);
  });

  test('a body that is not a DescribeClientConnections answer fails the instance as MalformedResponse (retried)', async () => {
    const t = new ScriptedTransport(async () => ({ Clients: [{ Count: 3 }], TotalCount: 1 }));
    const { m } = await runWithTransport(t);
    expect(m.value('cloud_session_exporter_instance_success', { job_name: 'mongo', instance_id: 'cmgo-scripted' })).toBe(0);
    expect(m.value('cloud_session_exporter_api_requests_total', { account: 'tc', api: 'DescribeClientConnections', code: 'MalformedResponse' })).toBe(5);
  });
});
