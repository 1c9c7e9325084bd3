// The emulator's embedded MQTT broker on its own: Signature sign-in (MQTT 3.1.1), per-instance isolation,
// SendMessage delivery, admin endpoints, and device status taken from real connections (`status_from_broker`).
import { mqttOf } from '../../emulator/apis/mqtt';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, test } from 'vitest';
import { ALIYUN, ALIYUN_ACCOUNT_YAML, appFromYaml, emulator, parseExposition, truthOf } from '../helpers/harness';
import { connectDevices, type DeviceClients } from '../../emulator/broker/devices';
import { signatureCredentials } from '../../emulator/broker/auth';
import { ScenarioError } from '../../emulator/core/scenario';
import { normalizeScenario } from '../../emulator/scenario';
import { ENV, INSTANCE, probeScenario, waitFor } from '../apis/aliyun-mqtt-probe/helpers';

const OTHER = 'post-cn-probe0002';
const clients: MqttClient[] = [];
let devices: DeviceClients | undefined;

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await devices?.close();
  devices = undefined;
});

/** Resolves with the client once connected, or the CONNACK refusal's return code. */
function connect(url: string, clientId: string, opts: mqtt.IClientOptions): Promise<MqttClient | number> {
  return new Promise((resolve) => {
    const c = mqtt.connect(url, { protocolVersion: 4, clientId, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    clients.push(c);
    c.once('connect', () => resolve(c));
    c.once('error', (err: Error & { code?: number }) => resolve(err.code ?? -1));
  });
}

function creds(instanceId: string, clientId: string, secret = ALIYUN.access_key_secret) {
  return signatureCredentials(ALIYUN.access_key_id, secret, instanceId, clientId);
}

describe('embedded MQTT broker', () => {
  test('Signature sign-in: right keys in (with and without a will), wrong secret, unknown instance or key refused, bad client ID rejected', async () => {
    const emu = await emulator(probeScenario());
    const url = mqttOf(emu).broker!.url;
    expect(url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    const id = 'GID_test@@@dev-a';
    expect(await connect(url, id, creds(INSTANCE, id))).not.toBeTypeOf('number');
    const withWill = 'GID_test@@@dev-b';
    const will = { topic: 'canary/will', payload: Buffer.from('gone'), qos: 1 as const, retain: false };
    expect(await connect(url, withWill, { ...creds(INSTANCE, withWill), will })).not.toBeTypeOf('number');
    expect(mqttOf(emu).broker!.connectedClients(INSTANCE)).toEqual([id, withWill]);

    expect(await connect(url, 'GID_test@@@dev-c', creds(INSTANCE, 'GID_test@@@dev-c', 'wrong-secret'))).toBe(4);
    // Signed for another client ID: the password does not match this one.
    expect(await connect(url, 'GID_test@@@dev-d', creds(INSTANCE, 'GID_test@@@dev-x'))).toBe(4);
    expect(await connect(url, 'GID_test@@@dev-e', creds('post-cn-unknown', 'GID_test@@@dev-e'))).toBe(4);
    expect(await connect(url, 'GID_test@@@dev-f', { username: 'dev', password: 'x' })).toBe(4);
    expect(await connect(url, 'no-group-id', creds(INSTANCE, 'no-group-id'))).toBe(2);
    expect(mqttOf(emu).broker!.stats().refused).toBe(5);
    expect(mqttOf(emu).broker!.connectedClients(INSTANCE)).toEqual([id, withWill]);
  });

  test('each instance is its own broker: SendMessage reaches subscribers of that instance only, as sent (QoS 1)', async () => {
    const emu = await emulator(probeScenario({ mqtt: { instances: [{ instance_id: INSTANCE }, { instance_id: OTHER }] } }));
    const url = mqttOf(emu).broker!.url;
    const a = (await connect(url, 'GID_a@@@1', creds(INSTANCE, 'GID_a@@@1'))) as MqttClient;
    const b = (await connect(url, 'GID_a@@@1', creds(OTHER, 'GID_a@@@1'))) as MqttClient;
    const got: Record<string, Array<{ payload: string; qos: number }>> = { a: [], b: [] };
    a.on('message', (_t, p, packet) => got.a.push({ payload: p.toString(), qos: packet.qos }));
    b.on('message', (_t, p, packet) => got.b.push({ payload: p.toString(), qos: packet.qos }));
    await a.subscribeAsync('shared/topic', { qos: 1 });
    await b.subscribeAsync('shared/topic', { qos: 1 });

    await mqttOf(emu).broker!.publish({ instanceId: INSTANCE, topic: 'shared/topic', payload: 'aGVsbG8=' });
    await waitFor('delivery to a', () => got.a.length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(got.a).toEqual([{ payload: 'aGVsbG8=', qos: 1 }]);
    expect(got.b).toEqual([]);
    // The same client ID on two instances are two sessions, both connected.
    expect(mqttOf(emu).broker!.isConnected(INSTANCE, 'GID_a@@@1') && mqttOf(emu).broker!.isConnected(OTHER, 'GID_a@@@1')).toBe(true);
  });

  test('admin endpoints: read the broker, change faults at runtime (validated), kill a connection', async () => {
    const emu = await emulator(probeScenario({ broker: { drop_rate: 0.25 } }));
    const base = `${emu.url}/_emulator/broker`;
    const info = (await (await fetch(base)).json()) as { url: string; faults: unknown };
    expect(info).toMatchObject({ url: mqttOf(emu).broker!.url, faults: { drop_rate: 0.25, delay_ms: { min: 0, max: 0 } } });

    const set = await fetch(`${base}/faults`, { method: 'POST', body: JSON.stringify({ delay_ms: { min: 300, max: 400 } }) });
    expect(await set.json()).toEqual({ drop_rate: 0.25, delay_ms: { min: 300, max: 400 } });
    const bad = await fetch(`${base}/faults`, { method: 'POST', body: JSON.stringify({ drop_rate: 2 }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/drop_rate/);
    expect(mqttOf(emu).broker!.faults().drop_rate).toBe(0.25);

    const id = 'GID_x@@@1';
    const c = (await connect(mqttOf(emu).broker!.url, id, creds(INSTANCE, id))) as MqttClient;
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    expect(await (await fetch(`${base}/clients/${INSTANCE}`)).json()).toEqual([id]);
    const kill = await fetch(`${base}/disconnect`, { method: 'POST', body: JSON.stringify({ instance_id: INSTANCE, client_id: id }) });
    expect(await kill.json()).toEqual({ disconnected: true });
    await closed;
    expect(mqttOf(emu).broker!.isConnected(INSTANCE, id)).toBe(false);
  });

  test('scenarios: status_from_broker needs a broker section; broker.devices are connected at start-up and show in the truth', async () => {
    expect(() => normalizeScenario({ credentials: [ALIYUN], mqtt: { instances: [{ instance_id: INSTANCE, status_from_broker: true }] } })).toThrow(ScenarioError);
    expect(() => normalizeScenario(probeScenario({ broker: { devices: [{ instance_id: 'nope', group_id: 'GID_a', count: 1 }] } }))).toThrow(/no MQTT instance "nope"/);
    const emu = await emulator(
      probeScenario({ broker: { devices: [{ instance_id: INSTANCE, group_id: 'GID_sensor', count: 2 }] } }, { status_from_broker: true, fleets: [{ group_id: 'GID_sensor', prefix: 'dev-', size: 3, digits: 1 }] }),
    );
    expect((await truthOf(emu)).mqtt[INSTANCE]).toEqual({ 'GID_sensor@@@dev-1': true, 'GID_sensor@@@dev-2': true, 'GID_sensor@@@dev-3': false });
  });
});

describe('status_from_broker: aliyun_mqtt_sessions sees real device connections', () => {
  test('3 connected devices are online, a 4th never connected is offline; one disconnects and goes offline', async () => {
    const emu = await emulator(probeScenario({}, { status_from_broker: true }));
    devices = await connectDevices({ url: mqttOf(emu).broker!.url, instanceId: INSTANCE, accessKeyId: ALIYUN.access_key_id, accessKeySecret: ALIYUN.access_key_secret, groupId: 'GID_sensor', count: 3 });
    expect(devices.clientIds).toEqual(['GID_sensor@@@dev-1', 'GID_sensor@@@dev-2', 'GID_sensor@@@dev-3']);
    const ids = [...devices.clientIds, 'GID_sensor@@@dev-4'];
    const t = appFromYaml(
      `
accounts:
${ALIYUN_ACCOUNT_YAML}jobs:
  - name: fleet
    type: aliyun_mqtt_sessions
    account: aliyun-test
    schedule: "0 0 1 1 *"
    region: cn-hangzhou
    endpoint: ${emu.url}
    instance_id: ${INSTANCE}
    client_ids: ${JSON.stringify(ids)}
`,
      ENV,
    );
    const online = (text: string, id: string) => parseExposition(text).value('aliyun_mqtt_client_online', { instance_id: INSTANCE, client_id: id });
    await t.app.runAllNow();
    let text = await t.scrape();
    expect(ids.map((id) => online(text, id))).toEqual([1, 1, 1, 0]);

    await devices.disconnect('GID_sensor@@@dev-2');
    await waitFor('the broker to see dev-2 leave', () => !mqttOf(emu).broker!.isConnected(INSTANCE, 'GID_sensor@@@dev-2'));
    await t.app.runAllNow();
    text = await t.scrape();
    expect(ids.map((id) => online(text, id))).toEqual([1, 0, 1, 0]);
    expect(parseExposition(text).value('aliyun_mqtt_clients', { instance_id: INSTANCE, group_id: 'GID_sensor', state: 'online' })).toBe(2);
  });
});
