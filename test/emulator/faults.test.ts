import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../emulator/server';
import { emulator } from '../helpers/harness';
import type { EmulatorStats } from '../../emulator/core/stats';
import { adminGet, adminPost, dasClient, mongoClientByIp, mqttClient, popError, tencentError, testScenario } from './helpers';

const INSTANCE = 'post-cn-test0001';
const batch = { InstanceId: INSTANCE, ClientIdList: ['GID_sensor@@@dev-000001'] };

describe('fault injection', () => {
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator({ scenario: testScenario() });
  });
  afterAll(async () => emu.close());

  it('injects an outage at runtime through POST /_emulator/faults, and lifts it', async () => {
    const set = await adminPost(emu.url, 'faults', { BatchQuerySessionByClientIds: { error_rates: { InternalError: 1 } } });
    expect(set.status).toBe(200);
    const err = await popError(mqttClient(emu.url).request('BatchQuerySessionByClientIds', batch));
    expect(err.code).toBe('InternalError');
    expect(err.entry.response.statusCode).toBe(417);
    await mqttClient(emu.url).request('QuerySessionByClientId', { InstanceId: INSTANCE, ClientId: 'x' });
    await adminPost(emu.url, 'faults', {});
    await mqttClient(emu.url).request('BatchQuerySessionByClientIds', batch);
    const stats = await adminGet<EmulatorStats>(emu.url, 'stats');
    expect(stats.apis.BatchQuerySessionByClientIds?.errors.InternalError).toBe(1);
  });

  it('refuses an invalid fault configuration with the path of the problem', async () => {
    const bad = await adminPost<{ error: string }>(emu.url, 'faults', { BatchQuerySessionByClientIds: { error_rate: { InternalError: 1 } } });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toContain('BatchQuerySessionByClientIds.error_rate: unknown key');
    expect(() => emu.setFaults({ NoSuchApi: {} })).toThrow(/NoSuchApi/);
  });

  it('holds a timed-out call past the client timeout, then drops it', async () => {
    emu.setFaults({ QuerySessionByClientId: { timeout_rate: 1, timeout_ms: 1500 } });
    const err = await popError(mqttClient(emu.url).request('QuerySessionByClientId', { InstanceId: INSTANCE, ClientId: 'x' }, { timeout: 300 }));
    expect(err.name).toBe('RequestTimeoutError');
    emu.setFaults({});
  });

  it('answers malformed bodies at HTTP 200', async () => {
    emu.setFaults({ QuerySessionByClientId: { malformed_rate: 1 } });
    const errors = await Promise.all(
      Array.from({ length: 6 }, () => popError(mqttClient(emu.url).request('QuerySessionByClientId', { InstanceId: INSTANCE, ClientId: 'x' }))),
    );
    for (const e of errors) expect(e.name).toBe('SyntaxError');
    expect(emu.stats().apis.QuerySessionByClientId?.malformed).toBe(6);
    emu.setFaults({});
  });

  it('wraps injected Tencent errors in the HTTP 200 envelope and DAS numeric codes in a business failure', async () => {
    emu.setFaults({
      DescribeClientConnections: { error_rates: { InternalError: 1 } },
      GetRedisAllSession: { error_rates: { '-1001': 1 } },
    });
    const t = await tencentError(mongoClientByIp(emu.port).DescribeClientConnections({ InstanceId: 'cmgo-small0001' }));
    expect(t.code).toBe('InternalError');
    const d = await popError(dasClient(emu.url).request('GetRedisAllSession', { InstanceId: 'r-test0001' }));
    expect(d.code).toBe('-1001');
    expect(d.entry.response.statusCode).toBe(200);
    emu.setFaults({});
  });
});

describe('latency', () => {
  it('delays answers by the configured range, per API', async () => {
    const emu = await emulator(
      testScenario((s) => {
        s.latency = { min_ms: 0, max_ms: 0, per_api: { QuerySessionByClientId: { min_ms: 150, max_ms: 200 } } };
      }),
    );
    const t0 = Date.now();
    await mqttClient(emu.url).request('QuerySessionByClientId', { InstanceId: INSTANCE, ClientId: 'x' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
  });
});
