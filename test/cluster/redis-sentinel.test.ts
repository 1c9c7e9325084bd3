// Redis Sentinel as operators run it for a Redis that survives its primary: the replicas ask a sentinel for the
// primary; the primary hangs, the sentinel promotes the standby, and the replicas follow it without a restart; then a
// planned failover to a new node.
import Redis from 'ioredis';
import { describe, expect, onTestFinished, test } from 'vitest';
import type { Scrape } from '../helpers/exposition';
import { runExporter } from '../helpers/exporter-process';
import { startRedisServer, startSentinel, type RedisServer } from '../helpers/servers';
import { ENV, fleet, replica, replicaConfig, scrapeAll, until } from './replicas';

const GROUP = 'cse-primary';
const JOB = { job_name: 'fleet' };

async function started(s: Promise<RedisServer>): Promise<RedisServer> {
  const r = await s;
  onTestFinished(() => r.stop());
  return r;
}

function client(port: number): Redis {
  const c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
  onTestFinished(() => c.disconnect());
  return c;
}

const leaders = (ms: Scrape[]) => ms.reduce((n, m) => n + (m.value('cloud_session_exporter_cluster_leader', JOB) ?? 0), 0);
const lastSuccess = (ms: Scrape[]) => Math.max(...ms.map((m) => m.value('cloud_session_exporter_job_last_success_timestamp_seconds', JOB) ?? 0));
/** Both replicas' membership entries (Redis TIME in ms) written to `c` after `t` (seconds). */
async function registeredSince(c: Redis, t: number): Promise<boolean> {
  const scores = (await c.zrange('cse:replicas', 0, -1, 'WITHSCORES')).filter((_, i) => i % 2 === 1).map(Number);
  return scores.length === 2 && scores.every((ms) => ms > t * 1000);
}
const sharing = (ms: Scrape[]) => ms.every((m) => m.value('cloud_session_exporter_cluster_degraded') === 0 && m.value('cloud_session_exporter_cluster_replicas') === 2);

describe('cluster on Redis Sentinel', () => {
  test('two replicas through a sentinel: the primary hangs, the standby promoted, both follow it without a restart: one leader, polls go on, no window over 100', async () => {
    const { emu, file, dir } = await fleet({ sensors: 300, gateways: 200 });
    // The primary is stopped (SIGSTOP), not killed, and stays so until the sentinel is gone: a port it freed could go
    // to another test's Redis, which the sentinel would then make a replica of this one.
    const primary = await startRedisServer();
    onTestFinished(() => void primary.process.kill('SIGKILL'));
    const standby = await started(startRedisServer({ args: ['--replicaof', '127.0.0.1', String(primary.port)] }));
    const standbyClient = client(standby.port);
    // The sentinel finds the standby in the primary's INFO, which it reads at start and then every 10 s.
    await until('the standby replicates', async () => /master_link_status:up/.test(await standbyClient.info('replication')), 10_000, 100);
    const sentinel = await started(startSentinel({ dir, name: GROUP, primaryPort: primary.port, downAfterMs: 1000 }));
    const ask = client(sentinel.port);
    await until('the sentinel knows the standby', async () => ((await ask.call('SENTINEL', 'REPLICAS', GROUP)) as unknown[]).length === 1, 15_000);

    const yaml = (id: string) =>
      replicaConfig({ emuUrl: emu.url, file, schedule: '*/2 * * * * *', cluster: `  redis:\n    url: redis://${GROUP}/0\n    sentinels: ["127.0.0.1:${sentinel.port}"]\n  replica_id: ${id}\n` });
    const replicas = [await replica('a', yaml('a'), ['--log.level=debug']), await replica('b', yaml('b'), ['--log.level=debug'])];
    await until('both share the quota through the primary, one leads and polls', async () => {
      const ms = await scrapeAll(replicas);
      return sharing(ms) && leaders(ms) === 1 && lastSuccess(ms) > 0;
    }, 20_000);
    const check = await runExporter([`--config.file=${replicas[0].configFile}`, '--config.check'], ENV);
    expect(check.out).toContain(`cluster: Redis redis://${GROUP}/0, primary of master group ${GROUP} from sentinels 127.0.0.1:${sentinel.port}, key prefix cse, replica a`);

    const hungAt = Date.now() / 1000;
    primary.process.kill('SIGSTOP');
    const promoted = await until('the sentinel promoted the standby', async () => ((await ask.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', GROUP)) as string[])[1] === String(standby.port), 30_000);
    const followed = await until('both registered on the promoted standby, sharing the quota, one leader polling again', async () => {
      const ms = await scrapeAll(replicas);
      return (await registeredSince(standbyClient, hungAt + promoted / 1000)) && sharing(ms) && leaders(ms) === 1 && lastSuccess(ms) > hungAt + promoted / 1000;
    }, 30_000).catch(async (err: Error) => {
      const ms = await scrapeAll(replicas);
      const state = ms.map((m, i) => `${replicas[i].id}: degraded ${m.value('cloud_session_exporter_cluster_degraded')}, replicas ${m.value('cloud_session_exporter_cluster_replicas')}, leader ${m.value('cloud_session_exporter_cluster_leader', JOB)}, last success ${m.value('cloud_session_exporter_job_last_success_timestamp_seconds', JOB)}`);
      throw new Error(`${err.message} (stopped at ${hungAt}); ${state.join('; ')}; logs:\n${replicas.map((r) => r.output().split('\n').slice(-15).join('\n')).join('\n---\n')}`);
    });
    console.log(`sentinel failover: standby promoted ${promoted} ms after the primary hung; both replicas sharing the quota on it and a poll done ${followed} ms later`);

    expect(await standbyClient.call('ROLE').then((r) => (r as string[])[0])).toBe('master');

    // A planned failover (maintenance): a new node as a replica, then SENTINEL FAILOVER. The former primary is
    // demoted, not killed: the sentinel closes its clients' connections then (CLIENT KILL), and the replicas ask it
    // again.
    const back = await started(startRedisServer({ args: ['--replicaof', '127.0.0.1', String(standby.port)] }));
    const backClient = client(back.port);
    await until('the new node replicates the primary', async () => /master_link_status:up/.test(await backClient.info('replication')), 10_000, 100);
    await until('the sentinel sees it as a healthy replica', async () => {
      const rs = (await ask.call('SENTINEL', 'REPLICAS', GROUP)) as string[][];
      return rs.some((r) => r[r.indexOf('port') + 1] === String(back.port) && r[r.indexOf('flags') + 1] === 'slave');
    }, 30_000, 200);
    await until('SENTINEL FAILOVER accepted', async () => (await ask.call('SENTINEL', 'FAILOVER', GROUP).then(() => true, () => false)), 15_000, 500);
    const switched = await until('the new node is the primary', async () => ((await ask.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', GROUP)) as string[])[1] === String(back.port), 30_000);
    // The sentinel demotes the former primary when it next reads its INFO; until then it still takes writes.
    const demoted = await until('the sentinel demoted the former primary', async () => ((await standbyClient.call('ROLE')) as string[])[0] === 'slave', 30_000, 100);
    const demotedAt = Date.now() / 1000;
    const rejoined = await until('both follow the planned failover: registered on the new primary, one leader polling', async () => {
      const ms = await scrapeAll(replicas);
      return (await registeredSince(backClient, demotedAt)) && sharing(ms) && leaders(ms) === 1 && lastSuccess(ms) > demotedAt;
    }, 30_000);
    console.log(`planned failover: primary switched ${switched} ms after SENTINEL FAILOVER, the former one demoted ${demoted} ms later; both replicas registered and sharing the quota on the new one, a poll done, ${rejoined} ms after that`);

    const stats = (await emu.stats()).apis.BatchQuerySessionByClientIds;
    expect(stats.busiest_window).toBeLessThanOrEqual(100);
    expect(stats.throttled).toBe(0);
    for (const p of replicas) {
      expect(p.child.exitCode, 'no restart').toBeNull();
      expect((await p.terminate()).code).toBe(0);
    }
    await sentinel.stop();
    primary.process.kill('SIGKILL');
  }, 120_000);
});
