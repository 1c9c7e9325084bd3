// Failover: the leader killed with SIGKILL → another replica polls within lease + one schedule interval, the others
// serve the fleet throughout (no gap), the counters go on from the published bases; a graceful stop hands the lease
// over at once. No 1-second window over the quota at any handover.
import { describe, expect, test } from 'vitest';
import { fleet, redis, replica, replicaConfig, scrapeAll, until, type Replica } from './replicas';
import type { Scrape } from '../helpers/exposition';

const LEASE_MS = 3000;
const INTERVAL_MS = 4000;
const DEVICES = 600;

const leaderOf = (m: Scrape) => m.value('cloud_session_exporter_cluster_leader', { job_name: 'fleet' }) === 1;
const calls = (m: Scrape) => m.sum('cloud_session_exporter_api_requests_total', { code: 'OK' });
const transitions = (m: Scrape) => m.sum('aliyun_mqtt_client_transitions_total');

describe('cluster HA failover', () => {
  test(`SIGKILL the leader: another polls within lease + interval (${LEASE_MS} + ${INTERVAL_MS} ms), no gap, counters go on; SIGTERM hands over at once`, async () => {
    // Devices change state all the time, so transitions are counted on every run.
    const { emu, file } = await fleet({ sensors: 400, gateways: 200, churnPerMinute: 0.5 });
    const r = await redis();
    const yaml = (id: string) =>
      replicaConfig({ emuUrl: emu.url, file, schedule: '*/4 * * * * *', cluster: `  redis: {url: "redis://127.0.0.1:${r.port}/0", key_prefix: fo}\n  replica_id: ${id}\n  lease: ${LEASE_MS / 1000}s\n` });
    const replicas = await Promise.all(['r0', 'r1', 'r2'].map((id) => replica(id, yaml(id))));
    await until('one leader, every replica serving the fleet, transitions counted', async () => {
      const ms = await scrapeAll(replicas);
      return ms.filter(leaderOf).length === 1 && ms.every((m) => m.all('aliyun_mqtt_client_online').length === DEVICES && transitions(m) > 0);
    }, 30_000);
    let ms = await scrapeAll(replicas);
    const leader = replicas[ms.findIndex(leaderOf)];
    const survivors = replicas.filter((p) => p !== leader);
    const callsBefore = await Promise.all(survivors.map(async (p) => calls(await p.metrics())));
    expect(callsBefore, 'followers make no calls').toEqual([0, 0]);
    const transitionsBefore = transitions(ms[replicas.indexOf(survivors[0])]);

    leader.kill();
    const killedAt = Date.now();
    let next: Replica | undefined;
    while (!next) {
      expect(Date.now() - killedAt, 'a new leader polls within lease + interval (+1 s for this test to see it)').toBeLessThan(LEASE_MS + INTERVAL_MS + 1000);
      const now = await scrapeAll(survivors);
      for (const m of now) expect(m.all('aliyun_mqtt_client_online'), 'the fleet is served throughout').toHaveLength(DEVICES);
      const i = now.findIndex((m, k) => leaderOf(m) && calls(m) > callsBefore[k]);
      if (i >= 0) next = survivors[i];
      else await new Promise((res) => setTimeout(res, 100));
    }
    const failoverMs = Date.now() - killedAt;
    const other = survivors.find((p) => p !== next)!;
    // The new leader's run published, and adopted by the other survivor: the counters went on, not from 0.
    await until('the new leader published a run', async () => transitions(await other.metrics()) > transitionsBefore, 10_000);
    ms = await scrapeAll(survivors);
    expect(ms.map(leaderOf).filter(Boolean)).toHaveLength(1);

    const stopping = next.terminate();
    const handoverMs = await until('the last replica leads', async () => leaderOf(await other.metrics()), 5000, 50);
    const exit = await stopping;
    console.log(`failover after SIGKILL: ${failoverMs} ms (lease ${LEASE_MS} + interval ${INTERVAL_MS}); graceful handover ${handoverMs} ms after SIGTERM, exit ${exit.code} in ${exit.ms} ms`);
    expect(exit.code).toBe(0);
    expect(handoverMs, 'SIGTERM releases the lease at once').toBeLessThan(1500);
    const stats = (await emu.stats()).apis.BatchQuerySessionByClientIds;
    expect(stats.busiest_window).toBeLessThanOrEqual(100);
    expect(stats.throttled).toBe(0);
  }, 90_000);
});
