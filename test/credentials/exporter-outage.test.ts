// An identity endpoint down for 30 s while the held credential is still valid: the exporter rides it out.
import { describe, expect, test } from 'vitest';
import { appFromYaml, emulator, parseExposition } from '../helpers/harness';
import { exporterYaml, failures, scenario, setUp, sleep } from './exporter-fixtures';

describe('the exporter with refreshing credentials', () => {
  test('STS and instance metadata down for 30 s around a refresh: the held credentials carry every run', async () => {
    // 90 s credentials refresh with 30 s left (at 60 s); the endpoints are down from 50 s to 80 s, the credential
    // valid until 90 s: refreshes fail, are retried, and succeed once the endpoints are back.
    const TTL = 90;
    const emu = await emulator(scenario(TTL));
    const { dir, blocks } = setUp(emu, TTL);
    const some = { 'ali-ram-role': blocks['ali-ram-role']!, 'ali-ecs': blocks['ali-ecs']!, 'ten-assume': blocks['ten-assume']!, 'ten-cvm': blocks['ten-cvm']! };
    const t = appFromYaml(exporterYaml(emu, some), {}, {}, dir);
    t.app.start();
    await t.app.whenReady();
    const started = Date.now();
    await sleep(50_000 - (Date.now() - started));
    for (const endpoint of ['aliyun-sts', 'ecs-metadata', 'tencent-sts', 'cvm-metadata'] as const) emu.identity!.setMode(endpoint, 'unavailable');
    await sleep(30_000);
    for (const endpoint of ['aliyun-sts', 'ecs-metadata', 'tencent-sts', 'cvm-metadata'] as const) emu.identity!.setMode(endpoint, 'up');
    await sleep(15_000);

    const m = parseExposition(await t.scrape());
    const { failedRuns, refused } = await failures(t, emu);
    expect(failedRuns).toEqual({});
    expect(refused).toEqual({});
    for (const account of Object.keys(some)) {
      // The outage was seen (refreshes failed), and a refresh succeeded after it: the expiry is beyond the first credential's.
      expect(m.value('cloud_session_exporter_credentials_refreshes_total', { account, result: 'failure' }), account).toBeGreaterThan(0);
      expect(m.value('cloud_session_exporter_credentials_refreshes_total', { account, result: 'success' }), account).toBeGreaterThanOrEqual(2);
      expect(m.value('cloud_session_exporter_credentials_expiry_timestamp_seconds', { account })! * 1000, account).toBeGreaterThan(started + TTL * 1000);
    }
    // A failing refresh is logged once per state change, not per attempt.
    const warnings = t.logs.filter((l) => l.includes('credential refresh failed'));
    expect(warnings.length).toBe(Object.keys(some).length);
  }, 150_000);
});
