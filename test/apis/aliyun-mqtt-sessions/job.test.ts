// aliyun_mqtt_sessions against the emulator with the real pop-core: exact values, rate windows, faults.
import { mqttOf } from '../../../emulator/apis/mqtt';
import fs from 'node:fs';
import { describe, expect, test } from 'vitest';
import { ALIYUN, appFromYaml, emulator, parseExposition, seriesOf, tempDir, truthOf } from '../../helpers/harness';
import { INSTANCE, ENV, config, inventoryFile, pollWholeFleet, scenario } from './fixtures';



describe('aliyun_mqtt_sessions', () => {
  test('status changes between polls are counted as transitions; removed devices disappear', async () => {
    const emu = await emulator(scenario({}, { size: 20 }));
    const dir = tempDir();
    const { file, truth } = await inventoryFile(emu, dir);
    const t = appFromYaml(config(emu.url, { file }), ENV, {}, dir);
    await t.app.runAllNow();
    const ids = Object.keys(truth).filter((id) => id.startsWith('GID_sensor'));
    const flipped = ids.slice(0, 3);
    for (const id of flipped) mqttOf(emu).setOnline(INSTANCE, id, !truth[id]);
    const wentOnline = flipped.filter((id) => !truth[id]).length;
    fs.writeFileSync(file, Object.keys(truth).filter((id) => id !== ids[10]).join('\n'));
    await t.app.runAllNow();
    const m = parseExposition(await t.scrape());
    expect(m.value('aliyun_mqtt_client_transitions_total', { group_id: 'GID_sensor', to: 'online' })).toBe(wentOnline);
    expect(m.value('aliyun_mqtt_client_transitions_total', { group_id: 'GID_sensor', to: 'offline' })).toBe(3 - wentOnline);
    expect(m.value('aliyun_mqtt_client_online', { client_id: flipped[0] })).toBe(truth[flipped[0]] ? 0 : 1);
    expect(seriesOf(m, 'aliyun_mqtt_client_online', { client_id: ids[10] })).toHaveLength(0);
    expect(seriesOf(m, 'aliyun_mqtt_client_online')).toHaveLength(39);
  });

  test('bad inventory lines are skipped, counted and logged once; good ones are polled', async () => {
    const emu = await emulator(scenario({}, { size: 5 }));
    const dir = tempDir();
    const bad = ['no-separator', 'XID_bad@@@dev', `GID_sensor@@@${'x'.repeat(80)}`, 'GID_sensor@@@bad/char', 'GID_sensor@@@'];
    const { file } = await inventoryFile(emu, dir, [...bad, 'GID_sensor@@@dev-000001 # duplicate with a comment']);
    const t = appFromYaml(config(emu.url, { file }), ENV, {}, dir);
    await t.app.runAllNow();
    await t.app.runAllNow();
    const m = parseExposition(await t.scrape());
    expect(m.value('cloud_session_exporter_inventory_invalid_entries', { job_name: 'fleet' })).toBe(5);
    expect(m.value('cloud_session_exporter_inventory_entries', { job_name: 'fleet' })).toBe(10);
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(1);
    const warnings = t.logs.filter((l) => l.includes('skipping invalid client ID'));
    expect(warnings).toHaveLength(5);
    expect(warnings.some((l) => l.includes('devices.txt:'))).toBe(true);
  });

  test('a wrong secret is rejected by signature check, not retried, and never logged', async () => {
    const emu = await emulator(scenario({}, { size: 5 }));
    const t = appFromYaml(config(emu.url, { ids: ['GID_sensor@@@dev-000001'] }), { AK: ALIYUN.access_key_id, SK: 'wrong-secret-value-xyz' });
    await t.app.runAllNow();
    const text = await t.scrape();
    const m = parseExposition(text);
    expect(m.value('cloud_session_exporter_api_requests_total', { code: 'SignatureDoesNotMatch' })).toBe(1);
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(0);
    expect(m.value('cloud_session_exporter_instance_success', { instance_id: INSTANCE })).toBe(0);
    expect(emu.stats().apis.BatchQuerySessionByClientIds.signature_failures).toEqual({ SignatureDoesNotMatch: 1 });
    const all = t.logs.join('') + text;
    expect(all).toContain('SignatureDoesNotMatch');
    for (const secret of ['wrong-secret-value-xyz', ALIYUN.access_key_id, 'Signature=']) expect(all).not.toContain(secret);
  });

  test('an STS security token never appears in logs, metrics or the reload response', async () => {
    const emu = await emulator({ ...scenario({}, { size: 5 }), credentials: [{ ...ALIYUN, security_token: 'STS.expected-token' }] });
    const yaml = config(emu.url, { ids: ['GID_sensor@@@dev-000001'] }).replace('access_key_secret: ${SK}', 'access_key_secret: ${SK}\n    security_token: STS.leaky-token-123');
    const t = appFromYaml(yaml, ENV);
    await t.app.runAllNow();
    const reload = await t.app.reload();
    const all = t.logs.join('') + (await t.scrape()) + JSON.stringify(reload);
    expect(all).toMatch(/InvalidSecurityToken|SecurityToken|CheckAccountInfoFailed|InvalidAccessKeyId|Mismatch/i);
    expect(all).not.toContain('STS.leaky-token-123');
    expect(all).not.toContain(ALIYUN.access_key_secret);
  });

  test.each([
    ['MqttInstanceNotFound', 'an unknown instance', { instance_id: 'post-cn-nope' }],
    ['MqttOwnerCheckError', "another account's instance", { account: 'someone-else' }],
    ['InstancePermissionCheckFailed', 'an instance a policy refuses', { permission_denied: true }],
  ])('%s (%s) is final for the instance: the run sends no other call about it and retries none', async (code, _what, instance) => {
    const s = { ...scenario({}, { size: 100 }), credentials: [ALIYUN, { account: 'someone-else', provider: 'aliyun', access_key_id: 'LTAI-else', access_key_secret: 'else-secret-0123' }] };
    Object.assign(s.mqtt.instances[0], instance);
    const emu = await emulator(s);
    // 200 devices (20 batches) of the configured instance, whatever the emulator's instance is called.
    const ids = Object.keys((await truthOf(emu)).mqtt[s.mqtt.instances[0].instance_id]);
    const t = appFromYaml(config(emu.url, { ids }), ENV);
    await t.app.runAllNow();
    const m = parseExposition(await t.scrape());
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(0);
    expect(m.value('cloud_session_exporter_api_requests_total', { code })).toBe(1);
    expect(m.value('cloud_session_exporter_api_retries_total', { api: 'BatchQuerySessionByClientIds' })).toBe(0);
    expect(emu.stats().apis.BatchQuerySessionByClientIds.errors).toEqual({ [code]: 1 });
  });

  test('ParameterFieldCheckFailed is final for its call only: not retried, the other calls of the run are sent', async () => {
    const emu = await emulator(scenario({ faults: { BatchQuerySessionByClientIds: { error_rates: { ParameterFieldCheckFailed: 1 } } } }, { size: 15 }));
    const { m } = await pollWholeFleet(emu);
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(0);
    expect(m.value('cloud_session_exporter_api_requests_total', { code: 'ParameterFieldCheckFailed' })).toBe(3);
    expect(m.value('cloud_session_exporter_api_retries_total', { api: 'BatchQuerySessionByClientIds' })).toBe(0);
    expect(emu.stats().apis.BatchQuerySessionByClientIds.calls).toBe(3);
  });

  test.each(['Throttling', 'Throttling.User'])('the gateway throttling %s (HTTP 400) is retried, counted as throttled, and the result is still exact', async (code) => {
    const emu = await emulator(scenario({ faults: { BatchQuerySessionByClientIds: { error_rates: { [code]: 0.3 } } } }, { size: 100 }));
    const { truth, m } = await pollWholeFleet(emu);
    const throttled = emu.stats().apis.BatchQuerySessionByClientIds.errors[code];
    expect(throttled).toBeGreaterThan(0);
    expect(m.value('cloud_session_exporter_api_requests_total', { api: 'BatchQuerySessionByClientIds', code })).toBe(throttled);
    expect(m.value('cloud_session_exporter_api_throttled_total', { api: 'BatchQuerySessionByClientIds' })).toBe(throttled);
    expect(m.value('cloud_session_exporter_api_retries_total', { api: 'BatchQuerySessionByClientIds' })).toBe(throttled);
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(1);
    expect(seriesOf(m, 'aliyun_mqtt_client_online')).toHaveLength(Object.keys(truth).length);
    for (const [labels, value] of seriesOf(m, 'aliyun_mqtt_client_online')) expect(value).toBe(truth[labels.client_id] ? 1 : 0);
  });

  test('throttling by the cloud is retried with backoff and the result is still exact', async () => {
    const emu = await emulator(scenario({ rate_limits: { BatchQuerySessionByClientIds: 40 } }, { size: 300 }));
    const { truth, m } = await pollWholeFleet(emu);
    expect(m.value('cloud_session_exporter_api_throttled_total', { api: 'BatchQuerySessionByClientIds' })).toBeGreaterThan(0);
    expect(m.value('cloud_session_exporter_api_retries_total', { api: 'BatchQuerySessionByClientIds' })).toBeGreaterThan(0);
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(1);
    expect(seriesOf(m, 'aliyun_mqtt_client_online')).toHaveLength(Object.keys(truth).length);
    for (const [labels, value] of seriesOf(m, 'aliyun_mqtt_client_online')) expect(value).toBe(truth[labels.client_id] ? 1 : 0);
  });

  test('timeouts and malformed bodies are retried; the result is still exact', async () => {
    const emu = await emulator(
      // 4% per fault over 200 calls: each kind appears (P(none) = 0.96^200 ~ 0.03%), and a chunk failing all 5
      // attempts is rare (200 x 0.12^5 ~ 0.005%), so the test checks recovery instead of rolling dice.
      scenario({ faults: { BatchQuerySessionByClientIds: { timeout_rate: 0.04, timeout_ms: 2000, malformed_rate: 0.04, error_rates: { InternalError: 0.04 } } } }, { size: 1000 }),
    );
    const { t, truth, m } = await pollWholeFleet(emu, { yaml: (c) => c.replace('access_key_secret: ${SK}', 'access_key_secret: ${SK}\n    request_timeout: 1s') });
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' }), (await t.scrape()).split('\n').filter((l) => /api_(requests|retries)_total\{/.test(l)).join('\n')).toBe(1);
    expect(m.value('cloud_session_exporter_api_requests_total', { code: 'Timeout' })).toBeGreaterThan(0);
    expect(m.value('cloud_session_exporter_api_requests_total', { code: 'MalformedResponse' })).toBeGreaterThan(0);
    expect(m.value('cloud_session_exporter_api_requests_total', { code: 'InternalError' })).toBeGreaterThan(0);
    expect(seriesOf(m, 'aliyun_mqtt_client_online')).toHaveLength(Object.keys(truth).length);
    for (const [labels, value] of seriesOf(m, 'aliyun_mqtt_client_online')) expect(value).toBe(truth[labels.client_id] ? 1 : 0);
  });

  test('a cloud that only sends malformed bodies fails the run without crashing and keeps the last good values', async () => {
    const emu = await emulator(scenario({}, { size: 5 }));
    const t = appFromYaml(config(emu.url, { ids: ['GID_sensor@@@dev-000001'] }).replace('timeout: 60s', 'timeout: 3s'), ENV);
    await t.app.runAllNow();
    emu.setFaults({ BatchQuerySessionByClientIds: { malformed_rate: 1 } });
    await t.app.runAllNow();
    const m = parseExposition(await t.scrape());
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(0);
    expect(m.value('cloud_session_exporter_api_requests_total', { code: 'MalformedResponse' })).toBeGreaterThan(0);
    expect(seriesOf(m, 'aliyun_mqtt_client_online')).toHaveLength(1);
  });

  test('without the Batch API the job falls back to QuerySessionByClientId', async () => {
    const s = scenario({}, { size: 15 });
    (s.mqtt.instances[0] as Record<string, unknown>).batch_supported = false;
    const emu = await emulator(s);
    const { truth, m } = await pollWholeFleet(emu);
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(1);
    expect(emu.stats().apis.QuerySessionByClientId.calls).toBe(30);
    expect(seriesOf(m, 'aliyun_mqtt_client_online')).toHaveLength(Object.keys(truth).length);
    for (const [labels, value] of seriesOf(m, 'aliyun_mqtt_client_online')) expect(value).toBe(truth[labels.client_id] ? 1 : 0);
  });

  test('per_client_series: false keeps only per-group counts', async () => {
    const emu = await emulator(scenario({}, { size: 10 }));
    const { m } = await pollWholeFleet(emu, { jobExtra: '    per_client_series: false\n' });
    expect(seriesOf(m, 'aliyun_mqtt_client_online')).toHaveLength(0);
    expect(seriesOf(m, 'aliyun_mqtt_clients')).toHaveLength(4);
  });
});
