// Failure paths against the emulator with the real Tencent SDK: signature and timestamp rejection (never retried),
// the documented error codes, unsupported instances next to working ones, throttling and other retried failures.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ACCOUNT, API, SCENARIO_CREDENTIALS, SECRET_ID, SECRET_KEY, TOKEN, startHarness, type Harness, type Scrape } from './harness';

const OK = 'cmgo-ok000001';
const BIG = 'cmgo-big00001';
const SMALL = 'cmgo-small001';

function expectNoSecrets(h: Harness, ...more: string[]): void {
  const text = h.logs.join('');
  for (const secret of [SECRET_KEY, TOKEN, ...more]) expect(text).not.toContain(secret);
}

async function truthOf(h: Harness, id: string): Promise<Array<{ IP: string; Count: number; InternalService: boolean }>> {
  const res = await fetch(`${h.emu.url}/_emulator/truth`);
  return ((await res.json()) as { mongodb: Record<string, { Clients: Array<{ IP: string; Count: number; InternalService: boolean }> }> }).mongodb[id].Clients;
}

function expectEqualsTruth(m: Scrape, id: string, truth: Array<{ IP: string; Count: number; InternalService: boolean }>): void {
  const series = m.all('tencentcloud_mongodb_client_connections', { instance_id: id });
  expect(series.length).toBe(truth.length);
  const byIp = new Map(series.map((s) => [s.labels.client_ip, s]));
  for (const c of truth) {
    expect(byIp.get(c.IP)?.value, c.IP).toBe(c.Count);
    expect(byIp.get(c.IP)?.labels.internal_service).toBe(String(c.InternalService));
  }
  expect(m.value('tencentcloud_mongodb_result_complete', { instance_id: id })).toBe(1);
}

const ONE_INSTANCE = `
seed: 5
${SCENARIO_CREDENTIALS}
mongodb:
  instances:
    - {instance_id: ${OK}, client_ips: 120}
`;

describe('authentication failures are final: one call, no retry', () => {
  const cases: Array<{ what: string; code: string; opts: Parameters<typeof startHarness>[1]; emu?: Parameters<typeof startHarness>[2]; secret?: string }> = [
    { what: 'a wrong secret_key', code: 'AuthFailure.SignatureFailure', opts: { instanceIds: [OK], secretKey: 'wrongSecretKey-but-still-secret-42' }, secret: 'wrongSecretKey-but-still-secret-42' },
    { what: 'an expired timestamp (cloud clock 10 minutes ahead)', code: 'AuthFailure.SignatureExpire', opts: { instanceIds: [OK] }, emu: { now: () => Date.now() + 10 * 60_000 } },
    { what: 'an unknown secret_id', code: 'AuthFailure.SecretIdNotFound', opts: { instanceIds: [OK], secretId: 'AKIDunknown000000000000000000' } },
    { what: 'a wrong token', code: 'AuthFailure.TokenFailure', opts: { instanceIds: [OK], token: 'wrong-token-value-123456' }, secret: 'wrong-token-value-123456' },
  ];
  for (const c of cases) {
    test(`${c.what} → ${c.code}`, async () => {
      const h = await startHarness(ONE_INSTANCE, c.opts, c.emu);
      try {
        const m = await h.run();
        expect(m.value('cloud_session_exporter_instance_success', { job_name: 'mongo', instance_id: OK })).toBe(0);
        expect(m.value('cloud_session_exporter_job_success', { job_name: 'mongo' })).toBe(0);
        expect(m.value('cloud_session_exporter_api_requests_total', { account: ACCOUNT, api: API, code: c.code })).toBe(1);
        expect(m.sum('cloud_session_exporter_api_requests_total', { account: ACCOUNT, api: API })).toBe(1);
        expect(m.value('cloud_session_exporter_api_retries_total', { account: ACCOUNT, api: API })).toBe(0);
        const stats = (await h.emu.stats()).apis[API];
        const failures = Object.values(stats.signature_failures).reduce((a, b) => a + b, 0);
        expect(stats.signature_failures[c.code]).toBe(1);
        expect(failures).toBe(1);
        expect(m.all('tencentcloud_mongodb_client_connections')).toEqual([]);
        const failed = h.logs.filter((l) => l.includes('poll failed'));
        expect(failed.length).toBe(1);
        expect(failed[0]).toContain(c.code);
        expectNoSecrets(h, ...(c.secret ? [c.secret] : []));
      } finally {
        await h.close();
      }
    });
  }
});

describe('documented error codes; unsupported instances next to working ones', () => {
  let h: Harness;
  let m: Scrape;
  const unsupported = {
    'cmgo-oldver01': 'InvalidParameterValue.MongoVersionNotSupportQueryClient',
    'cmgo-proxy001': 'InvalidParameterValue.ProxyNotSupportQueryClient',
    'cmgo-region01': 'InvalidParameterValue.RegionNotSupportQueryClient',
  };
  beforeAll(async () => {
    h = await startHarness(
      `${SCENARIO_CREDENTIALS}
mongodb:
  instances:
    - {instance_id: ${OK}, client_ips: 1200}
    - {instance_id: cmgo-oldver01, client_ips: 10, unsupported: MongoVersion}
    - {instance_id: cmgo-proxy001, client_ips: 10, unsupported: Proxy}
    - {instance_id: cmgo-region01, client_ips: 10, unsupported: Region}
    - {instance_id: cmgo-noperm01, client_ips: 10, permission_denied: true}
    - {instance_id: cmgo-shanghai, region: ap-shanghai, client_ips: 10}
`,
      { instanceIds: [OK, ...Object.keys(unsupported), 'cmgo-noperm01', 'cmgo-missing1', 'cmgo-shanghai'] },
      { ownProcess: true },
    );
    m = await h.run();
  });
  afterAll(async () => h?.close());

  test('the working instance is complete and correct', async () => {
    expectEqualsTruth(m, OK, await truthOf(h, OK));
    expect(m.value('cloud_session_exporter_instance_success', { job_name: 'mongo', instance_id: OK })).toBe(1);
    expect(m.value('tencentcloud_mongodb_pages_fetched', { instance_id: OK })).toBe(2);
  });

  test('each unsupported code marks its instance unsupported: poll ok, query_supported 0, no per-IP or total series', () => {
    for (const [id, code] of Object.entries(unsupported)) {
      expect(m.value('cloud_session_exporter_instance_success', { job_name: 'mongo', instance_id: id })).toBe(1);
      expect(m.value('tencentcloud_mongodb_client_query_supported', { instance_id: id })).toBe(0);
      expect(m.value('tencentcloud_mongodb_pages_fetched', { instance_id: id })).toBe(0);
      expect(m.value('tencentcloud_mongodb_client_ips_folded_total', { instance_id: id })).toBe(0);
      expect(m.all('tencentcloud_mongodb_client_connections', { instance_id: id })).toEqual([]);
      expect(m.all('tencentcloud_mongodb_connections', { instance_id: id })).toEqual([]);
      expect(m.all('tencentcloud_mongodb_result_complete', { instance_id: id })).toEqual([]);
      expect(m.value('cloud_session_exporter_api_requests_total', { account: ACCOUNT, api: API, code })).toBe(1);
    }
    expect(m.value('tencentcloud_mongodb_client_query_supported', { instance_id: OK })).toBe(1);
  });

  test('PermissionDenied and NotFoundInstance (unknown ID, or an instance of another region) fail their instance only, without retry', async () => {
    expect(m.value('cloud_session_exporter_instance_success', { job_name: 'mongo', instance_id: 'cmgo-noperm01' })).toBe(0);
    expect(m.value('cloud_session_exporter_instance_success', { job_name: 'mongo', instance_id: 'cmgo-missing1' })).toBe(0);
    expect(m.value('cloud_session_exporter_instance_success', { job_name: 'mongo', instance_id: 'cmgo-shanghai' })).toBe(0);
    expect(m.value('cloud_session_exporter_api_requests_total', { account: ACCOUNT, api: API, code: 'InvalidParameter.PermissionDenied' })).toBe(1);
    expect(m.value('cloud_session_exporter_api_requests_total', { account: ACCOUNT, api: API, code: 'InvalidParameterValue.NotFoundInstance' })).toBe(2);
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'mongo' })).toBe(0);
    // Nothing but a throttled call (see the rate-limit tests for the 5/s window) is ever retried.
    const stats = (await h.emu.stats()).apis[API];
    const throttled = m.value('cloud_session_exporter_api_throttled_total', { account: ACCOUNT, api: API });
    expect(throttled).toBe(stats.throttled);
    expect(m.value('cloud_session_exporter_api_retries_total', { account: ACCOUNT, api: API })).toBe(stats.throttled);
    expect(stats.calls).toBe(2 + 3 + 3 + stats.throttled);
  });

  test('a second run changes nothing and logs "unsupported" only once per instance', async () => {
    const again = await h.run();
    for (const id of Object.keys(unsupported)) expect(again.value('tencentcloud_mongodb_client_query_supported', { instance_id: id })).toBe(0);
    expect(again.value('tencentcloud_mongodb_client_ips', { instance_id: OK })).toBe(1200);
    const warned = h.logs.filter((l) => l.includes('marking it unsupported'));
    expect(warned.length).toBe(3);
    expectNoSecrets(h);
  });
});

describe('throttling and retries', () => {
  const TWO = `
seed: 21
${SCENARIO_CREDENTIALS}
mongodb:
  instances:
    - {instance_id: ${BIG}, client_ips: 2345, internal_service_ratio: 0.2}
    - {instance_id: ${SMALL}, client_ips: 30}
`;

  test('the cloud allows only 2 calls/s (our limiter thinks 5): RequestLimitExceeded is retried, the result is exact', async () => {
    const h = await startHarness(`${TWO}\nrate_limits: {DescribeClientConnections: 2}\n`, { instanceIds: [BIG, SMALL] });
    try {
      const m = await h.run();
      expectEqualsTruth(m, BIG, await truthOf(h, BIG));
      expectEqualsTruth(m, SMALL, await truthOf(h, SMALL));
      const stats = (await h.emu.stats()).apis[API];
      expect(stats.throttled).toBeGreaterThan(0);
      expect(stats.ok).toBe(4);
      expect(m.value('cloud_session_exporter_api_throttled_total', { account: ACCOUNT, api: API })).toBe(stats.throttled);
      expect(m.value('cloud_session_exporter_api_requests_total', { account: ACCOUNT, api: API, code: 'RequestLimitExceeded' })).toBe(stats.throttled);
      expect(m.value('cloud_session_exporter_api_retries_total', { account: ACCOUNT, api: API })).toBe(stats.throttled);
      expect(m.value('cloud_session_exporter_api_requests_total', { account: ACCOUNT, api: API, code: 'OK' })).toBe(4);
      expectNoSecrets(h);
    } finally {
      await h.close();
    }
  });

  test('injected RequestLimitExceeded and InternalError are retried; the result is exact', async () => {
    const h = await startHarness(`${TWO}\nfaults:\n  DescribeClientConnections: {error_rates: {RequestLimitExceeded: 0.25, InternalError: 0.25}}\n`, { instanceIds: [BIG] });
    try {
      const m = await h.run();
      expectEqualsTruth(m, BIG, await truthOf(h, BIG));
      const stats = (await h.emu.stats()).apis[API];
      const injectedThrottles = stats.errors.RequestLimitExceeded ?? 0;
      const internal = stats.errors.InternalError ?? 0;
      expect(injectedThrottles + internal).toBeGreaterThan(0);
      expect(m.value('cloud_session_exporter_api_requests_total', { account: ACCOUNT, api: API, code: 'OK' })).toBe(3);
      expect(m.value('cloud_session_exporter_api_requests_total', { account: ACCOUNT, api: API, code: 'InternalError' }) ?? 0).toBe(internal);
      expect(m.value('cloud_session_exporter_api_throttled_total', { account: ACCOUNT, api: API })).toBe(injectedThrottles + stats.throttled);
      // Each throttling answer widens the margin in use (once per second) above the 100 ms default.
      expect(injectedThrottles, 'the seeded faults include a throttling answer').toBeGreaterThan(0);
      expect(m.value('cloud_session_exporter_ratelimit_margin_seconds', { account: ACCOUNT, api: API })).toBeGreaterThan(0.1);
      expect(m.value('cloud_session_exporter_api_retries_total', { account: ACCOUNT, api: API })).toBe(injectedThrottles + internal + stats.throttled);
    } finally {
      await h.close();
    }
  });

  test('timeouts and malformed bodies are retried as Timeout / MalformedResponse; the result is exact', async () => {
    const h = await startHarness(
      `${TWO}\nfaults:\n  DescribeClientConnections: {timeout_rate: 0.3, timeout_ms: 5000, malformed_rate: 0.3}\n`,
      { instanceIds: [BIG], requestTimeout: '400ms' },
    );
    try {
      const m = await h.run();
      expectEqualsTruth(m, BIG, await truthOf(h, BIG));
      const stats = (await h.emu.stats()).apis[API];
      expect(stats.timeouts + stats.malformed).toBeGreaterThan(0);
      expect(m.value('cloud_session_exporter_api_requests_total', { account: ACCOUNT, api: API, code: 'Timeout' }) ?? 0).toBe(stats.timeouts);
      expect(m.value('cloud_session_exporter_api_requests_total', { account: ACCOUNT, api: API, code: 'MalformedResponse' }) ?? 0).toBe(stats.malformed);
      expect(m.value('cloud_session_exporter_api_retries_total', { account: ACCOUNT, api: API })).toBe(stats.timeouts + stats.malformed);
    } finally {
      await h.close();
    }
  });

  test('a persistent InternalError fails the instance after 5 attempts and its last good values are kept', async () => {
    const h = await startHarness(TWO, { instanceIds: [SMALL] });
    try {
      const first = await h.run();
      const before = first.value('tencentcloud_mongodb_connections', { instance_id: SMALL });
      expect(before).toBeGreaterThan(0);
      h.emu.inProcess!.setFaults({ DescribeClientConnections: { error_rates: { InternalError: 1 } } });
      h.emu.inProcess!.resetStats();
      const m = await h.run();
      expect((await h.emu.stats()).apis[API].calls).toBe(5);
      expect(m.value('cloud_session_exporter_instance_success', { job_name: 'mongo', instance_id: SMALL })).toBe(0);
      expect(m.value('cloud_session_exporter_api_requests_total', { account: ACCOUNT, api: API, code: 'InternalError' })).toBe(5);
      expect(m.value('cloud_session_exporter_api_retries_total', { account: ACCOUNT, api: API })).toBe(4);
      expect(m.value('tencentcloud_mongodb_connections', { instance_id: SMALL })).toBe(before);
      expectNoSecrets(h);
    } finally {
      await h.close();
    }
  });
});

test('sanity: the harness credentials are what the emulator expects', () => {
  expect(SCENARIO_CREDENTIALS).toContain(SECRET_ID);
});
