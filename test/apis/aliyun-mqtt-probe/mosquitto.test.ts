// The probe's subscriber against a broker not written in JavaScript: our own Mosquitto on a free port with password
// auth (the ApsaraMQ Signature username/password pair registered with mosquitto_passwd). SendMessage calls reach the
// emulator; its onSendMessage hook republishes them to Mosquitto with mqtt.js, as the cloud would deliver them.
import { mqttOf } from '../../../emulator/apis/mqtt';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { canConnect, freePort } from '../../helpers/servers';
import { ALIYUN, appFromYaml, emulator, tempDir, type SentMessageEvent, type TestApp } from '../../helpers/harness';
import { signatureCredentials } from '../../../emulator/broker/auth';
import type { Emulator } from '../../../emulator/server';
import { ENV, INSTANCE, TOPIC, metric, probeConfig, probeState, probeScenario, waitFor } from './helpers';

const MOSQUITTO = '/usr/sbin/mosquitto';
const CLIENT_ID = 'GID_probe@@@mosq-1';
const PUBLISHER = { username: 'cloud-publisher', password: 'publisher-pass-123' };

let dir: string;
let port: number;
let mosquitto: ChildProcess | undefined;
/** Mosquitto logs to stderr: it drops root privileges and could not write a log file in our temp dir. */
let mosquittoLog = '';
let publisher: MqttClient | undefined;
let emu: Emulator | undefined;
let t: TestApp | undefined;

beforeAll(async () => {
  dir = tempDir();
  fs.chmodSync(dir, 0o755);
  port = await freePort();
  const passwd = path.join(dir, 'passwd');
  const signature = signatureCredentials(ALIYUN.access_key_id, ALIYUN.access_key_secret, INSTANCE, CLIENT_ID);
  for (const [user, pass] of [[signature.username, signature.password], [PUBLISHER.username, PUBLISHER.password]]) {
    const r = spawnSync('/usr/bin/mosquitto_passwd', ['-b', ...(fs.existsSync(passwd) ? [] : ['-c']), passwd, user, pass], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mosquitto_passwd failed: ${r.stderr}`);
  }
  fs.chmodSync(passwd, 0o644);
  const conf = path.join(dir, 'mosquitto.conf');
  fs.writeFileSync(
    conf,
    [`listener ${port} 127.0.0.1`, 'allow_anonymous false', `password_file ${passwd}`, 'persistence false', 'log_dest stderr', 'log_type all', ''].join('\n'),
  );
  fs.chmodSync(conf, 0o644);
  mosquitto = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  mosquitto.stderr!.on('data', (d: Buffer) => (mosquittoLog += d.toString()));
  await waitFor(`mosquitto on port ${port}`, () => canConnect(port));

  publisher = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, clientId: 'cloud-side', ...PUBLISHER, reconnectPeriod: 0 });
  emu = await emulator(probeScenario({ broker: undefined }), {
    onSendMessage: async (m: SentMessageEvent) => {
      await publisher!.publishAsync(m.topic, m.payload, { qos: 1 });
    },
  });
  // One exporter for the file's tests, which follow on from each other (the second counts on the first's probes).
  t = appFromYaml(probeConfig({ endpoint: emu.url, subscribe: { url: `mqtt://127.0.0.1:${port}`, group_id: 'GID_probe', device_id: 'mosq-1' } }), ENV);
});

afterAll(async () => {
  await t?.app.stop(0);
  await emu?.close();
  await publisher?.endAsync(true);
  if (mosquitto && mosquitto.exitCode === null) {
    const exited = new Promise((r) => mosquitto!.once('exit', r));
    mosquitto.kill('SIGTERM');
    await exited;
  }
});

describe('probe subscriber against a real Mosquitto', () => {
  test('connects with MQTT 3.1.1 and Signature credentials, receives the probe through Mosquitto and matches it', async () => {
    await t!.app.runner('canary')!.trigger();
    await t!.app.runner('canary')!.trigger();
    const text = await t!.scrape();
    expect(probeState(text)).toEqual({ success: 1, sent: 2, received: 2, lost: 0, delivered: 2, connected: 1 });

    // Mosquitto's own log: the client's protocol (p2 = MQTT 3.1.1), its ID and username, and a QoS 1 subscription.
    const log = mosquittoLog;
    expect(log).toMatch(new RegExp(`New client connected from 127\\.0\\.0\\.1:\\d+ as ${CLIENT_ID} \\(p2, c1, k60, u'Signature\\|${ALIYUN.access_key_id}\\|${INSTANCE}'\\)`));
    expect(log).toContain(`${CLIENT_ID} 1 ${TOPIC}`);
  });

  test('a message not from this probe (or a late duplicate) is ignored; a wrong secret is refused by Mosquitto', async () => {
    await publisher!.publishAsync(TOPIC, Buffer.from('{"probe_id":"cse-0000000000-1"}').toString('base64'), { qos: 1 });
    await publisher!.publishAsync(TOPIC, 'not base64 at all', { qos: 1 });
    // The first probe again, long after it was matched: a redelivery must not count twice.
    await publisher!.publishAsync(TOPIC, mqttOf(emu!).sentMessages()[0].payload, { qos: 1 });
    await new Promise((r) => setTimeout(r, 200));
    await t!.app.runner('canary')!.trigger();
    const text = await t!.scrape();
    expect(probeState(text)).toEqual({ success: 1, sent: 3, received: 3, lost: 0, delivered: 3, connected: 1 });

    const bad = appFromYaml(
      probeConfig({
        endpoint: emu!.url,
        subscribe: { url: `mqtt://127.0.0.1:${port}`, group_id: 'GID_probe', device_id: 'mosq-1', access_key_id: ALIYUN.access_key_id, access_key_secret: 'wrong-secret' },
        timeout: '1s',
      }),
      ENV,
    );
    await bad.app.runner('canary')!.trigger();
    const badText = await bad.scrape();
    expect(metric(badText, 'aliyun_mqtt_probe_success')).toBe(0);
    expect(metric(badText, 'aliyun_mqtt_probe_errors_total', { code: 'SubscriberAuthFailed' })).toBe(1);
  });
});
