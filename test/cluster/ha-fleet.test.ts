// High availability without duplicate calls: three exporter processes share one 100 QPS quota and one Redis; the
// leader polls the 20,000-device fleet once and every replica serves all of it, equal to the emulator's truth.
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { fleet, INSTANCE, redis, replica, replicaConfig, scrapeAll, until } from './replicas';

describe('cluster HA: 3 replicas, one quota', () => {
  test('a 20,000-device fleet at 100 QPS: 2,000 calls in total (not 6,000), no window over 100, 0 throttled, every replica serving the truth', async () => {
    const { emu, file } = await fleet({ sensors: 14_000, gateways: 6_000, latency: { min_ms: 20, max_ms: 60 } });
    const r = await redis();
    const cluster = (id: string) => `  redis: {url: "redis://127.0.0.1:${r.port}/0", key_prefix: ha}\n  replica_id: ${id}\n`;
    // One run at start-up (the schedule's next tick is a year away): the leader's.
    const yaml = (id: string) => replicaConfig({ emuUrl: emu.url, file, schedule: '0 0 1 1 *', cluster: cluster(id), jobExtra: '    timeout: 60s\n' });
    const replicas = await Promise.all(['r0', 'r1', 'r2'].map((id) => replica(id, yaml(id))));
    const started = Date.now();
    await until('every replica serves 20,000 devices', async () => (await scrapeAll(replicas)).every((m) => m.all('aliyun_mqtt_client_online').length === 20_000), 90_000, 500);
    const elapsed = Date.now() - started;
    const stats = (await emu.stats()).apis.BatchQuerySessionByClientIds;
    const truth = (await emu.truth()).mqtt[INSTANCE];
    const scrapes = await scrapeAll(replicas);
    console.log(`HA: 20,000 devices served by 3 replicas after ${elapsed} ms; emulator ${JSON.stringify(stats)}`);

    expect(stats.calls, 'one cycle of 2,000 calls, by the leader alone').toBe(2000);
    expect(stats.busiest_window).toBeLessThanOrEqual(100);
    expect(stats.throttled).toBe(0);
    expect(scrapes.map((m) => m.value('cloud_session_exporter_cluster_leader', { job_name: 'fleet' })).sort()).toEqual([0, 0, 1]);
    expect(scrapes.reduce((n, m) => n + m.sum('cloud_session_exporter_api_requests_total', { api: 'BatchQuerySessionByClientIds' }), 0)).toBe(2000);
    for (const m of scrapes) {
      for (const s of m.all('aliyun_mqtt_client_online')) expect(s.value, s.labels.client_id).toBe(truth[s.labels.client_id] ? 1 : 0);
      const on = Object.entries(truth).filter(([id, v]) => v && id.startsWith('GID_sensor@@@')).length;
      expect(m.value('aliyun_mqtt_clients', { group_id: 'GID_sensor', state: 'online' })).toBe(on);
      expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(1);
      expect(m.value('cloud_session_exporter_cluster_degraded')).toBe(0);
      expect(m.value('cloud_session_exporter_cluster_replicas')).toBe(3);
      // 20,000 status bits and the counters (2.5 KB), and the devices' history deflated (18 B a device raw; little
      // after a first poll): well under a byte a device, not the 18.
      expect(m.value('cloud_session_exporter_cluster_published_bytes', { job_name: 'fleet' })).toBeLessThan(20_000);
    }
    // An HA follower's whole scrape (cluster families, the adopted run) lints clean.
    const follower = replicas[scrapes.findIndex((m) => m.value('cloud_session_exporter_cluster_leader', { job_name: 'fleet' }) === 0)];
    const lint = spawnSync(process.env.PROMTOOL ?? 'promtool', ['check', 'metrics'], { input: await follower.scrape(), encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(`${lint.stdout}${lint.stderr}`.trim(), 'promtool check metrics').toBe('');
    // The same bytes on every replica (the exporter's own metrics aside).
    const deviceLines = await Promise.all(replicas.map(async (p) => (await p.scrape()).split('\n').filter((l) => l.startsWith('aliyun_mqtt_')).join('\n')));
    expect(deviceLines[1]).toBe(deviceLines[0]);
    expect(deviceLines[2]).toBe(deviceLines[0]);
    for (const p of replicas) {
      const { code, ms } = await p.terminate();
      expect(code).toBe(0);
      expect(ms).toBeLessThan(16_000);
    }
  }, 150_000);
});
