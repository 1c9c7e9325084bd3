// aliyun_mqtt_probe against the emulator with the real pop-core and the emulator's embedded MQTT broker: success,
// latencies, drops, delays, a killed connection, wrong credentials, API-only mode and SendMessage errors.
import { mqttOf } from '../../../emulator/apis/mqtt';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { describe, expect, test } from 'vitest';
import { ALIYUN, appFromYaml, emulator, type TestApp } from '../../helpers/harness';
import type { Emulator } from '../../../emulator/server';
import { INSTANCE, TOPIC, ENV, LOST_CONNECTION, buckets, logged, metric, probeConfig, probeState, probeScenario, runProbe as run, subscribeTo, waitFor } from './helpers';

const CLIENT_ID = 'GID_probe@@@test-1';
const SUBSCRIBE = (emu: Emulator, extra: Record<string, string> = {}) => subscribeTo(emu, 'test-1', extra);
const RECONNECTED = 'probe subscriber reconnected';

/** The `err` object of the last "poll failed" log line (JSON logs). */
function lastFailure(app: TestApp): { type: string; reasons?: string[]; codes?: string[]; message: string } | undefined {
  const lines = app.logs.map((l) => JSON.parse(l) as { msg: string; err?: any }).filter((l) => l.msg.startsWith('poll failed'));
  return lines.at(-1)?.err;
}

describe('aliyun_mqtt_probe end to end', () => {
  test('a healthy run: success 1, SendMessage latency, one delivery observation, a Base64 payload naming the probe and its send time', async () => {
    const emu = await emulator(probeScenario({ latency: { min_ms: 5, max_ms: 10 } }));
    const t = appFromYaml(probeConfig({ endpoint: emu.url, subscribe: SUBSCRIBE(emu) }), ENV);
    const before = Date.now();
    const text = await run(t);

    expect(metric(text, 'aliyun_mqtt_probe_success', { env: 'test' })).toBe(1);
    // Labels in the contract's order, static labels last.
    expect(text).toContain(`aliyun_mqtt_probe_success{region="cn-hangzhou",instance_id="${INSTANCE}",topic="${TOPIC}",env="test"} 1\n`);
    expect(metric(text, 'aliyun_mqtt_probe_api_duration_seconds')).toBeGreaterThanOrEqual(0.005);
    expect(metric(text, 'aliyun_mqtt_probe_api_request_duration_seconds_count')).toBe(1);
    expect(metric(text, 'aliyun_mqtt_probe_delivery_duration_seconds_sum')).toBeGreaterThan(0);
    expect(probeState(text)).toEqual({ success: 1, sent: 1, received: 1, lost: 0, delivered: 1, connected: 1 });
    expect(metric(text, 'aliyun_mqtt_probe_errors_total', { code: 'SubscriberDisconnected' })).toBe(0);
    expect(mqttOf(emu).broker!.connectedClients(INSTANCE)).toEqual([CLIENT_ID]);

    const [sent] = mqttOf(emu).sentMessages();
    expect(sent).toMatchObject({ instanceId: INSTANCE, topic: TOPIC, account: ALIYUN.account });
    expect(sent.payload).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    const body = JSON.parse(Buffer.from(sent.payload, 'base64').toString('utf8')) as { probe_id: string; sent_at: string };
    expect(body.probe_id).toMatch(/^cse-[0-9a-f]{10}-1$/);
    expect(Date.parse(body.sent_at)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(body.sent_at)).toBeLessThanOrEqual(Date.now());

    // The subscriber is kept between runs: a second run reuses the connection.
    const text2 = await run(t);
    expect(metric(text2, 'aliyun_mqtt_probe_received_total')).toBe(2);
    expect(metric(text2, 'aliyun_mqtt_probe_success')).toBe(1);
    expect(mqttOf(emu).broker!.stats().connections).toBe(1);

    // The exposition lints clean with Prometheus' own checker (Debian's promtool, where installed).
    if (fs.existsSync('/usr/bin/promtool')) {
      const res = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: text2, encoding: 'utf8' });
      expect(`${res.stdout}${res.stderr}`.trim()).toBe('');
      expect(res.status).toBe(0);
    }

    // Stopping the exporter ends the subscriber's MQTT connection.
    await t.app.stop(0);
    await waitFor('the subscriber to disconnect', () => mqttOf(emu).broker!.connectedClients(INSTANCE).length === 0, 3000);
  });

  test('a GID- group signs in, and the largest payload the config accepts is sent, accepted by the cloud and delivered', async () => {
    const emu = await emulator(probeScenario());
    // The largest filler validateProbeConfig accepts (config.test.ts): 64 KB once rendered at worst and Base64-encoded.
    const payload = `{{probe_id}} {{sent_at}} ${'x'.repeat(49152 - 66)}`;
    const t = appFromYaml(probeConfig({ endpoint: emu.url, subscribe: SUBSCRIBE(emu, { group_id: 'GID-probe' }), extra: `    payload: "${payload}"\n` }), ENV);
    const text = await run(t);
    expect(probeState(text)).toEqual({ success: 1, sent: 1, received: 1, lost: 0, delivered: 1, connected: 1 });
    expect(mqttOf(emu).broker!.connectedClients(INSTANCE)).toEqual(['GID-probe@@@test-1']);
    const [sent] = mqttOf(emu).sentMessages();
    expect(sent.payload.length).toBeGreaterThan(65_000);
    expect(sent.payload.length).toBeLessThanOrEqual(64 * 1024);
  });

  test('injected drops: every probe lost, success 0, then success again once drops stop', async () => {
    const emu = await emulator(probeScenario());
    const t = appFromYaml(probeConfig({ endpoint: emu.url, subscribe: SUBSCRIBE(emu), timeout: '1s' }), ENV);
    expect(metric(await run(t), 'aliyun_mqtt_probe_success')).toBe(1);

    mqttOf(emu).broker!.setFaults({ drop_rate: 1 });
    await run(t);
    const text = await run(t);
    expect(probeState(text)).toEqual({ success: 0, sent: 3, received: 1, lost: 2, delivered: 1, connected: 1 });
    expect(mqttOf(emu).broker!.stats().dropped).toBe(2);
    // The log says why: lost, which probe, where and how long it was waited for.
    expect(lastFailure(t)).toEqual({
      type: 'ProbeFailed',
      reasons: ['lost'],
      codes: [],
      message: expect.stringMatching(/^probe failed: cse-[0-9a-f]{10}-3, published with SendMessage, was not received on canary\/probe within 1s$/),
    });

    mqttOf(emu).broker!.setFaults({ drop_rate: 0 });
    const after = await run(t);
    expect(metric(after, 'aliyun_mqtt_probe_success')).toBe(1);
    expect(metric(after, 'aliyun_mqtt_probe_lost_total')).toBe(2);
  });

  test('injected delay of 300-400 ms shows in the delivery histogram buckets; a probe arriving after its timeout stays lost', async () => {
    const emu = await emulator(probeScenario({ broker: { delay_ms: { min: 300, max: 400 } } }));
    const t = appFromYaml(probeConfig({ endpoint: emu.url, subscribe: SUBSCRIBE(emu), timeout: '2s' }), ENV);
    await run(t);
    await run(t);
    const text = await run(t);
    expect(metric(text, 'aliyun_mqtt_probe_success')).toBe(1);
    const b = buckets(text, 'aliyun_mqtt_probe_delivery_duration_seconds');
    // Never below the injected 300 ms; the upper buckets leave room for a loaded machine.
    expect(b.get('0.1')).toBe(0);
    expect(b.get('0.25')).toBe(0);
    expect(b.get('1')).toBe(3);
    expect(b.get('+Inf')).toBe(3);
    const sum = metric(text, 'aliyun_mqtt_probe_delivery_duration_seconds_sum')!;
    expect(sum).toBeGreaterThanOrEqual(0.9);
    expect(sum).toBeLessThan(3);
    // SendMessage itself does not wait for the delivery: the delay is the broker's.
    expect(metric(text, 'aliyun_mqtt_probe_api_request_duration_seconds_sum')!).toBeLessThan(sum - 0.6);

    // Longer than the timeout: lost, and its late arrival is not counted as received afterwards.
    mqttOf(emu).broker!.setFaults({ delay_ms: { min: 2500, max: 2500 } });
    const late = await run(t);
    expect(metric(late, 'aliyun_mqtt_probe_success')).toBe(0);
    expect(metric(late, 'aliyun_mqtt_probe_lost_total')).toBe(1);
    await new Promise((r) => setTimeout(r, 800));
    mqttOf(emu).broker!.setFaults({ delay_ms: 0 });
    const next = await run(t);
    expect(metric(next, 'aliyun_mqtt_probe_received_total')).toBe(4);
    expect(metric(next, 'aliyun_mqtt_probe_lost_total')).toBe(1);
    expect(metric(next, 'aliyun_mqtt_probe_delivery_duration_seconds_count')).toBe(4);
  });

  test('a killed connection is a failed probe (SubscriberDisconnected), recovered on a later run; so is a broker restart', async () => {
    const emu = await emulator(probeScenario());
    const t = appFromYaml(probeConfig({ endpoint: emu.url, subscribe: SUBSCRIBE(emu), timeout: '1s' }), ENV);
    expect(metric(await run(t), 'aliyun_mqtt_probe_success')).toBe(1);

    expect(mqttOf(emu).broker!.disconnectClient(INSTANCE, CLIENT_ID)).toBe(true);
    // The exporter has seen the drop (reconnecting takes ~1 s of backoff): the next probe finds the subscriber down.
    await waitFor('the exporter to see the drop', () => logged(t, LOST_CONNECTION) === 1);
    const failed = await run(t);
    expect(metric(failed, 'aliyun_mqtt_probe_success')).toBe(0);
    expect(metric(failed, 'aliyun_mqtt_probe_errors_total', { code: 'SubscriberDisconnected' })).toBe(1);
    expect(metric(failed, 'aliyun_mqtt_probe_lost_total')).toBe(1);
    expect(lastFailure(t)).toMatchObject({ reasons: ['subscriber_not_connected', 'lost'], codes: ['SubscriberDisconnected'] });
    expect(lastFailure(t)!.message).toMatch(/^probe failed: the MQTT subscriber was not connected when the probe was sent \(SubscriberDisconnected\); cse-\S+, published with SendMessage, was not received on canary\/probe within 1s$/);

    // Reconnects after ~1 s of backoff; no crash, no restart needed.
    await waitFor('the subscriber to reconnect', () => mqttOf(emu).broker!.isConnected(INSTANCE, CLIENT_ID));
    const recovered = await run(t);
    expect(metric(recovered, 'aliyun_mqtt_probe_success')).toBe(1);
    expect(metric(recovered, 'aliyun_mqtt_probe_subscriber_connected')).toBe(1);
    expect(metric(recovered, 'aliyun_mqtt_probe_errors_total', { code: 'SubscriberDisconnected' })).toBe(1);

    await mqttOf(emu).broker!.restart();
    const afterRestart = await run(t);
    expect(metric(afterRestart, 'aliyun_mqtt_probe_success')).toBe(0);
    expect(metric(afterRestart, 'aliyun_mqtt_probe_errors_total', { code: 'SubscriberDisconnected' })).toBe(2);
    await waitFor('the subscriber to reconnect after the restart', () => mqttOf(emu).broker!.isConnected(INSTANCE, CLIENT_ID));
    expect(metric(await run(t), 'aliyun_mqtt_probe_success')).toBe(1);
  });

  test('a drop healed between two probes is counted but fails neither; a drop while a probe is on its way fails that probe', async () => {
    const emu = await emulator(probeScenario({ broker: { delay_ms: { min: 700, max: 700 } } }));
    const t = appFromYaml(probeConfig({ endpoint: emu.url, subscribe: SUBSCRIBE(emu), timeout: '3s' }), ENV);
    expect(probeState(await run(t))).toMatchObject({ success: 1, received: 1 });

    // Between two probes: dropped, reconnected (~1 s backoff) before the next one runs.
    expect(mqttOf(emu).broker!.disconnectClient(INSTANCE, CLIENT_ID)).toBe(true);
    await waitFor('the subscriber to reconnect', () => logged(t, RECONNECTED) === 1);
    const healed = await run(t);
    expect(probeState(healed)).toMatchObject({ success: 1, received: 2, lost: 0 });
    expect(metric(healed, 'aliyun_mqtt_probe_errors_total', { code: 'SubscriberDisconnected' })).toBe(1);
    expect(lastFailure(t)).toBeUndefined();

    // While the probe is on its way (published, held 700 ms by the broker): that probe fails, whatever arrives.
    const sent = mqttOf(emu).sentMessages().length;
    const running = run(t);
    await waitFor('the probe to be published', () => mqttOf(emu).sentMessages().length > sent);
    expect(mqttOf(emu).broker!.disconnectClient(INSTANCE, CLIENT_ID)).toBe(true);
    const dropped = await running;
    expect(metric(dropped, 'aliyun_mqtt_probe_success')).toBe(0);
    expect(metric(dropped, 'aliyun_mqtt_probe_errors_total', { code: 'SubscriberDisconnected' })).toBe(2);
    expect(lastFailure(t)).toMatchObject({ type: 'ProbeFailed', codes: ['SubscriberDisconnected'] });
    expect(lastFailure(t)!.reasons![0]).toBe('subscriber_dropped');
    expect(lastFailure(t)!.message).toContain("the MQTT subscriber's connection dropped while the probe was on its way (SubscriberDisconnected)");

    // Counted once: the next probe, on the re-established connection, succeeds without counting the drop again.
    await waitFor('the subscriber to reconnect', () => logged(t, RECONNECTED) === 2);
    const next = await run(t);
    expect(metric(next, 'aliyun_mqtt_probe_success')).toBe(1);
    expect(metric(next, 'aliyun_mqtt_probe_errors_total', { code: 'SubscriberDisconnected' })).toBe(2);
  });

  test('wrong credentials: the broker refuses the subscriber (bad username or password) and the probe reports SubscriberAuthFailed', async () => {
    const emu = await emulator(probeScenario());
    const t = appFromYaml(
      probeConfig({ endpoint: emu.url, subscribe: SUBSCRIBE(emu, { access_key_id: ALIYUN.access_key_id, access_key_secret: 'not-the-secret' }), timeout: '1s' }),
      ENV,
    );
    const text = await run(t);
    expect(metric(text, 'aliyun_mqtt_probe_success')).toBe(0);
    expect(metric(text, 'aliyun_mqtt_probe_errors_total', { code: 'SubscriberAuthFailed' })).toBe(1);
    expect(metric(text, 'aliyun_mqtt_probe_subscriber_connected')).toBe(0);
    // SendMessage still works with the account's keys: the API part is measured and the probe counted lost.
    expect(metric(text, 'aliyun_mqtt_probe_sent_total')).toBe(1);
    expect(metric(text, 'aliyun_mqtt_probe_lost_total')).toBe(1);
    expect(mqttOf(emu).broker!.stats().refused).toBeGreaterThanOrEqual(1);
    expect(mqttOf(emu).broker!.connectedClients(INSTANCE)).toEqual([]);
    // The secret never reaches the logs.
    expect(t.logs.join('\n')).not.toContain('not-the-secret');
    expect(lastFailure(t)).toMatchObject({ reasons: ['subscriber_not_connected', 'lost'], codes: ['SubscriberAuthFailed'] });
  });
});

describe('aliyun_mqtt_probe API-only mode', () => {
  test('success when SendMessage succeeds; no delivery series; SendMessage errors are counted by code and never retried', async () => {
    const emu = await emulator(probeScenario({ broker: undefined }));
    const t = appFromYaml(probeConfig({ endpoint: emu.url }), ENV);
    const text = await run(t);
    expect(metric(text, 'aliyun_mqtt_probe_success')).toBe(1);
    expect(metric(text, 'aliyun_mqtt_probe_sent_total')).toBe(1);
    expect(metric(text, 'aliyun_mqtt_probe_api_duration_seconds')).toBeGreaterThan(0);
    expect(text).not.toContain('aliyun_mqtt_probe_delivery_duration_seconds');
    expect(text).not.toContain('aliyun_mqtt_probe_lost_total');
    expect(text).not.toContain('aliyun_mqtt_probe_subscriber_connected');

    emu.setFaults({ SendMessage: { error_rates: { SystemOverFlow: 1 } } });
    emu.resetStats();
    const failed = await run(t);
    expect(metric(failed, 'aliyun_mqtt_probe_success')).toBe(0);
    expect(metric(failed, 'aliyun_mqtt_probe_errors_total', { code: 'SystemOverFlow' })).toBe(1);
    expect(metric(failed, 'aliyun_mqtt_probe_sent_total')).toBe(1);
    expect(metric(failed, 'aliyun_mqtt_probe_api_request_duration_seconds_count')).toBe(2);
    // One billed message per run at most: no retry.
    expect(emu.stats().apis.SendMessage?.calls).toBe(1);
  });
});
