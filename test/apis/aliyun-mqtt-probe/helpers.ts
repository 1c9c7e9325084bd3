// Shared pieces of the SendMessage canary tests: the scenario, the exporter config, waiting and scrape lookups.
import { mqttOf } from '../../../emulator/apis/mqtt';
import type { Emulator } from '../../../emulator/server';
import { ALIYUN, ALIYUN_ACCOUNT_YAML, parseExposition, seriesOf, type TestApp } from '../../helpers/harness';

export const INSTANCE = 'post-cn-probe0001';
export const TOPIC = 'canary/probe';
const PROBE = { region: 'cn-hangzhou', instance_id: INSTANCE, topic: TOPIC };
export const ENV = { AK: ALIYUN.access_key_id, SK: ALIYUN.access_key_secret };

export function probeScenario(extra: Record<string, unknown> = {}, instance: Record<string, unknown> = {}) {
  return {
    seed: 3,
    credentials: [ALIYUN],
    mqtt: { instances: [{ instance_id: INSTANCE, region: 'cn-hangzhou', ...instance }] },
    broker: {},
    ...extra,
  };
}

export interface ProbeJobOptions {
  endpoint: string;
  /** The `subscribe:` block's body (indented by the caller's convention: plain `key: value` lines); none = API-only. */
  subscribe?: Record<string, string>;
  timeout?: string;
  extra?: string;
}

export function probeConfig(o: ProbeJobOptions): string {
  const sub = o.subscribe
    ? `    subscribe:\n${Object.entries(o.subscribe)
        .map(([k, v]) => `      ${k}: ${JSON.stringify(v)}\n`)
        .join('')}`
    : '';
  return `
accounts:
${ALIYUN_ACCOUNT_YAML}jobs:
  - name: canary
    type: aliyun_mqtt_probe
    account: aliyun-test
    schedule: "0 0 1 1 *"
    timeout: ${o.timeout ?? '3s'}
    region: cn-hangzhou
    endpoint: ${o.endpoint}
    instance_id: ${INSTANCE}
    topic: ${TOPIC}
    labels: {env: test}
${sub}${o.extra ?? ''}`;
}

export function metric(text: string, name: string, extra: Record<string, string> = {}): number | undefined {
  return parseExposition(text).value(name, { ...PROBE, ...extra });
}

/** Cumulative bucket counts of a histogram, by `le`. */
export function buckets(text: string, name: string): Map<string, number> {
  return new Map(seriesOf(parseExposition(text), `${name}_bucket`, PROBE).map(([l, v]) => [l.le, v]));
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The canary's verdict and counters in one object, to compare against the expected state at once. */
export function probeState(text: string): Record<'success' | 'sent' | 'received' | 'lost' | 'delivered' | 'connected', number | undefined> {
  return {
    success: metric(text, 'aliyun_mqtt_probe_success'),
    sent: metric(text, 'aliyun_mqtt_probe_sent_total'),
    received: metric(text, 'aliyun_mqtt_probe_received_total'),
    lost: metric(text, 'aliyun_mqtt_probe_lost_total'),
    delivered: metric(text, 'aliyun_mqtt_probe_delivery_duration_seconds_count'),
    connected: metric(text, 'aliyun_mqtt_probe_subscriber_connected'),
  };
}

/** The `subscribe:` block of probeConfig for the emulator's broker: client ID `GID_probe@@@<deviceId>`. */
export function subscribeTo(emu: Emulator, deviceId: string, extra: Record<string, string> = {}): Record<string, string> {
  return { url: mqttOf(emu).broker!.url, group_id: 'GID_probe', device_id: deviceId, ...extra };
}

/** Runs the canary job once, then scrapes. */
export async function runProbe(app: TestApp): Promise<string> {
  await app.app.runner('canary')!.trigger();
  return app.scrape();
}

/** Log lines so far whose message is `msg`. */
export function logged(app: TestApp, msg: string): number {
  return app.logs.filter((l) => (JSON.parse(l) as { msg: string }).msg === msg).length;
}

export const LOST_CONNECTION = 'probe subscriber lost its MQTT connection; reconnecting';
