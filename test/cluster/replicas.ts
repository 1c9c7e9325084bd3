// Exporter replicas as users run them (dist/src/main.js, each its own process) sharing a real redis-server, against
// the emulator in its own process: what the cluster tests start and look at.
import fs from 'node:fs';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { ALIYUN, emulatorProcess, tempDir, type EmulatorProcess } from '../helpers/harness';
import { parseExposition } from '../helpers/exposition';
import type { Scrape } from '../helpers/exposition';
import { startExporter, type ExporterProcess } from '../helpers/exporter-process';
import { startRedisServer, type RedisServer } from '../helpers/servers';

export const INSTANCE = 'post-cn-cluster01';
export const ENV = { AK: ALIYUN.access_key_id, SK: ALIYUN.access_key_secret };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An emulator with one MQTT instance of `sensors` + `gateways` devices, and the inventory file of all of them. */
export async function fleet(opts: { sensors: number; gateways: number; churnPerMinute?: number; latency?: { min_ms: number; max_ms: number } }): Promise<{ emu: EmulatorProcess; file: string; dir: string; ids: string[] }> {
  const churn = opts.churnPerMinute ?? 0;
  const emu = await emulatorProcess({
    seed: 11,
    credentials: [ALIYUN],
    ...(opts.latency ? { latency: opts.latency } : {}),
    mqtt: {
      instances: [
        {
          instance_id: INSTANCE,
          region: 'cn-hangzhou',
          fleets: [
            { group_id: 'GID_sensor', size: opts.sensors, online_ratio: 0.7, churn_per_minute: churn },
            { group_id: 'GID_gateway', size: opts.gateways, online_ratio: 0.4, churn_per_minute: churn },
          ],
        },
      ],
    },
  });
  const dir = tempDir();
  const ids = Object.keys((await emu.truth()).mqtt[INSTANCE]);
  const file = path.join(dir, 'devices.txt');
  fs.writeFileSync(file, ids.join('\n') + '\n');
  return { emu, file, dir, ids };
}

/** The exporter config: one MQTT job on the fleet, and the cluster block (`cluster` is its body, indented by 2). */
export function replicaConfig(o: { emuUrl: string; file: string; schedule: string; cluster: string; jobExtra?: string; accountExtra?: string }): string {
  return `accounts:
  - name: aliyun-test
    provider: aliyun
    access_key_id: \${AK}
    access_key_secret: \${SK}
${o.accountExtra ?? ''}jobs:
  - name: fleet
    type: aliyun_mqtt_sessions
    account: aliyun-test
    schedule: "${o.schedule}"
    region: cn-hangzhou
    endpoint: ${o.emuUrl}
    instance_id: ${INSTANCE}
    client_ids_file: ${o.file}
${o.jobExtra ?? ''}cluster:
${o.cluster}`;
}

export async function redis(): Promise<RedisServer> {
  const r = await startRedisServer();
  onTestFinished(async () => {
    if (r.process.signalCode === null && r.process.exitCode === null) r.process.kill('SIGCONT');
    await r.stop();
  });
  return r;
}

export interface Replica extends ExporterProcess {
  id: string;
  metrics(): Promise<Scrape>;
}

/** A replica, killed when the test ends (if the test did not stop it). */
export async function replica(id: string, yaml: string, flags: string[] = []): Promise<Replica> {
  const p = await startExporter(yaml, ENV, flags);
  onTestFinished(() => p.kill());
  return { ...p, id, metrics: async () => parseExposition(await p.scrape()) };
}

/** Scrapes every replica that is still running; a replica that is gone gives an empty scrape. */
export async function scrapeAll(rs: readonly Replica[]): Promise<Scrape[]> {
  return Promise.all(rs.map((r) => (r.child.exitCode === null && r.child.signalCode === null ? r.metrics() : parseExposition(''))));
}

/** Polls until `probe` holds; resolves with the time it took. */
export async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 250): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}
