// Instance lists in a cluster (in-process apps, a real redis-server, the emulator): sharded by instance ID, each
// replica polls and serves only its instances (their success series too); in HA the next leader counts on from the
// counters the last one published.
import { describe, expect, test } from 'vitest';
import { appFromYaml, emulator, parseExposition, TENCENT, type TestApp } from '../helpers/harness';
import { startRedisServer } from '../helpers/servers';

const ENV = { TID: TENCENT.secret_id, TKEY: TENCENT.secret_key };
const INSTANCES = ['cmgo-a', 'cmgo-b', 'cmgo-c', 'cmgo-d', 'cmgo-e', 'cmgo-f'];

function yaml(url: string, cluster: string, extra = ''): string {
  return `accounts:
  - {name: tc, provider: tencentcloud, secret_id: "\${TID}", secret_key: "\${TKEY}"}
jobs:
  - name: mongo
    type: tencentcloud_mongodb_connections
    account: tc
    schedule: "0 0 1 1 *"
    region: ap-guangzhou
    endpoint: ${url}
    instance_ids: [${INSTANCES.join(', ')}]
${extra}cluster:
${cluster}`;
}

async function stack(clients: number) {
  const redis = await startRedisServer();
  const emu = await emulator({ credentials: [TENCENT], mongodb: { instances: INSTANCES.map((instance_id) => ({ instance_id, region: 'ap-guangzhou', client_ips: clients })) } });
  return { redis, emu, close: () => redis.stop() };
}

const start = async (t: TestApp) => {
  t.app.start();
  await t.app.whenReady();
};

describe('instance lists in a cluster', () => {
  test('static shards: each replica polls and serves its instances only, together all of them', async () => {
    const s = await stack(3);
    try {
      const apps = [0, 1].map((shard) => appFromYaml(yaml(s.emu.url, `  redis: {url: "redis://127.0.0.1:${s.redis.port}/0"}\n  replica_id: r${shard}\n  sharding: {total_shards: 2, shard: ${shard}}\n`), ENV));
      await Promise.all(apps.map(start));
      const ms = await Promise.all(apps.map(async (t) => parseExposition(await t.scrape())));
      const served = ms.map((m) => m.all('tencentcloud_mongodb_client_ips').map((x) => x.labels.instance_id).sort());
      expect(served.flat().sort()).toEqual(INSTANCES);
      ms.forEach((m, i) => {
        expect(served[i].length).toBeGreaterThan(0);
        // The instance series follow the shard: no success series for another replica's instances.
        expect(m.all('cloud_session_exporter_instance_success').map((x) => x.labels.instance_id).sort()).toEqual(served[i]);
        expect(m.value('cloud_session_exporter_shard_inventory_size', { job_name: 'mongo' })).toBe(served[i].length);
        expect(m.value('cloud_session_exporter_job_success', { job_name: 'mongo' })).toBe(1);
        expect(m.value('cloud_session_exporter_shard_ordinal', { shard_ordinal: String(i) })).toBe(i);
        expect(m.value('cloud_session_exporter_total_shards')).toBe(2);
      });
      const stats = s.emu.stats().apis.DescribeClientConnections;
      expect(stats.calls, 'each instance polled once').toBe(INSTANCES.length);
      await Promise.all(apps.map((t) => t.app.stop(0)));
    } finally {
      await s.close();
    }
  });

  test('HA: the follower serves the leader\'s families byte for byte, and counts on from its counters when it leads', async () => {
    // 5 client IPs and max_client_ips 2: every poll folds 3 IPs, so tencentcloud_mongodb_client_ips_folded_total grows by 3 a run.
    const s = await stack(5);
    try {
      const cluster = (id: string) => `  redis: {url: "redis://127.0.0.1:${s.redis.port}/0"}\n  replica_id: ${id}\n  lease: 2s\n`;
      const leader = appFromYaml(yaml(s.emu.url, cluster('a'), '    max_client_ips: 2\n'), ENV);
      await start(leader);
      await leader.app.runAllNow();
      const follower = appFromYaml(yaml(s.emu.url, cluster('b'), '    max_client_ips: 2\n'), ENV);
      await start(follower);
      const lines = async (t: TestApp) => (await t.scrape()).split('\n').filter((l) => l.startsWith('tencentcloud_'));
      const m0 = parseExposition(await follower.scrape());
      expect(m0.value('cloud_session_exporter_cluster_leader', { job_name: 'mongo' })).toBe(0);
      expect(await lines(follower)).toEqual(await lines(leader));
      expect(m0.value('tencentcloud_mongodb_client_ips_folded_total', { instance_id: 'cmgo-a' })).toBe(6);
      // The leader stops: the follower takes the lease at once and, on its next run, counts from 6.
      await leader.app.stop(0);
      await expect.poll(async () => parseExposition(await follower.scrape()).value('cloud_session_exporter_cluster_leader', { job_name: 'mongo' }), { timeout: 5000 }).toBe(1);
      await follower.app.runAllNow();
      expect(parseExposition(await follower.scrape()).value('tencentcloud_mongodb_client_ips_folded_total', { instance_id: 'cmgo-a' })).toBe(9);
      await follower.app.stop(0);
    } finally {
      await s.close();
    }
  });
});
