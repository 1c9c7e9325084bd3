// sharding: auto — the live replicas split the fleet by client ID (rendezvous hashing); each serves only its part;
// one leaving hands its devices to the others, one joining takes its part after the grace (the lease), and only the
// devices it takes move.
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { fleet, redis, replica, replicaConfig, scrapeAll, until, type Replica } from './replicas';
import type { Scrape } from '../helpers/exposition';

const DEVICES = 1200;
const devicesOf = (m: Scrape) => new Set(m.all('aliyun_mqtt_client_online').map((s) => s.labels.client_id));

/** Every device served by exactly one of the replicas, and each replica's shard as it reports it. */
async function partition(rs: Replica[]): Promise<{ sets: Array<Set<string>>; ok: boolean; scrapes: Scrape[] }> {
  const scrapes = await scrapeAll(rs);
  const sets = scrapes.map(devicesOf);
  const all = sets.flatMap((s) => [...s]);
  const ok = all.length === DEVICES && new Set(all).size === DEVICES && sets.every((s) => s.size > 0);
  return { sets, ok, scrapes };
}

describe('cluster sharding: auto', () => {
  test('3 replicas split the fleet; one leaves, its devices go to the others; one joins, it takes a part after the grace and nothing else moves', async () => {
    const { emu, file } = await fleet({ sensors: 800, gateways: 400 });
    const r = await redis();
    const yaml = (id: string) => replicaConfig({ emuUrl: emu.url, file, schedule: '*/3 * * * * *', cluster: `  redis: {url: "redis://127.0.0.1:${r.port}/0", key_prefix: auto}\n  replica_id: ${id}\n  lease: 2s\n  sharding: auto\n` });
    const rs = await Promise.all(['a', 'b', 'c'].map((id) => replica(id, yaml(id))));
    await until('3 disjoint shards covering the fleet', async () => {
      const p = await partition(rs);
      return p.ok && p.scrapes.every((m) => m.value('cloud_session_exporter_total_shards') === 3);
    }, 30_000);
    let p = await partition(rs);
    expect(p.scrapes.map((m) => m.one('cloud_session_exporter_shard_ordinal')!.labels.shard_ordinal).sort()).toEqual(['0', '1', '2']);
    for (const [i, m] of p.scrapes.entries()) {
      expect(m.value('cloud_session_exporter_shard_inventory_size', { job_name: 'fleet' })).toBe(p.sets[i].size);
      // Per-group counts are the shard's: they add up over the replicas.
      expect(m.sum('aliyun_mqtt_clients')).toBe(p.sets[i].size);
      expect(m.all('cloud_session_exporter_cluster_leader')).toHaveLength(0);
    }

    // A sharded replica's whole scrape, cluster and shard families included, lints clean.
    const lint = spawnSync(process.env.PROMTOOL ?? 'promtool', ['check', 'metrics'], { input: await rs[0].scrape(), encoding: 'utf8' });
    expect(`${lint.stdout}${lint.stderr}`.trim(), 'promtool check metrics').toBe('');
    expect(lint.status).toBe(0);

    // c stops gracefully: a and b take its devices over at once (at their next run).
    const [a, b, c] = rs;
    const before = p.sets;
    expect((await c.terminate()).code).toBe(0);
    await until('2 shards covering the fleet', async () => (await partition([a, b])).ok, 15_000);
    p = await partition([a, b]);
    expect(p.scrapes.map((m) => m.value('cloud_session_exporter_total_shards'))).toEqual([2, 2]);
    // Rendezvous hashing: a and b kept every device they had.
    for (const i of [0, 1]) for (const id of before[i]) expect(p.sets[i].has(id), id).toBe(true);

    // d joins: after its grace it takes about a third, from a and b only.
    const two = p.sets;
    const d = await replica('d', yaml('d'));
    await until('3 shards again', async () => {
      const q = await partition([a, b, d]);
      return q.ok && q.scrapes.every((m) => m.value('cloud_session_exporter_total_shards') === 3);
    }, 20_000);
    p = await partition([a, b, d]);
    for (const i of [0, 1]) for (const id of p.sets[i]) expect(two[i].has(id), `${id} stayed where it was`).toBe(true);
    expect(p.sets[2].size).toBeGreaterThan(DEVICES / 5);
    const stats = (await emu.stats()).apis.BatchQuerySessionByClientIds;
    expect(stats.busiest_window).toBeLessThanOrEqual(100);
    expect(stats.throttled).toBe(0);
  }, 90_000);
});
