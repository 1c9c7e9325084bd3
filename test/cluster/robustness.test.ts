// A replica as an operator meets it: the Redis password (from password_file or the URL) never in logs, metrics,
// --config.check or errors, a wrong one only degrades; SIGTERM with Redis hanging exits within the grace period;
// a reload cannot change the cluster block.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { runExporter } from '../helpers/exporter-process';
import { startRedisServer } from '../helpers/servers';
import { ENV, fleet, redis, replica, replicaConfig, until } from './replicas';

const PASSWORD = 'redis-Pa55word-never-shown-7c1f';

/** redis-server with a password, in memory only, on a free port. */
async function redisWithPassword(): Promise<{ port: number; stop(): void }> {
  const r = await startRedisServer({ args: ['--requirepass', PASSWORD] });
  return { port: r.port, stop: () => r.process.kill('SIGKILL') };
}

describe('cluster robustness', () => {
  test('the Redis password, from password_file or the URL, is never shown; a wrong one degrades the replica and is not shown either', async () => {
    const { emu, file, dir } = await fleet({ sensors: 50, gateways: 50 });
    const r = await redisWithPassword();
    try {
      const pwFile = path.join(dir, 'redis-password');
      fs.writeFileSync(pwFile, `${PASSWORD}\n`);
      const good = await replica('good', replicaConfig({ emuUrl: emu.url, file, schedule: '*/5 * * * * *', cluster: `  redis: {url: "redis://127.0.0.1:${r.port}/0", password_file: ${pwFile}}\n  replica_id: good\n` }), ['--log.level=debug']);
      const inUrl = await replica('url', replicaConfig({ emuUrl: emu.url, file, schedule: '*/5 * * * * *', cluster: `  redis: {url: "redis://:${PASSWORD}@127.0.0.1:${r.port}/0"}\n  replica_id: url\n` }), ['--log.level=debug']);
      const wrong = await replica('wrong', replicaConfig({ emuUrl: emu.url, file, schedule: '*/5 * * * * *', cluster: `  redis: {url: "redis://:${PASSWORD}-wrong@127.0.0.1:${r.port}/0"}\n  replica_id: wrong\n` }), ['--log.level=debug']);
      await until('the good replicas joined, the wrong one is degraded', async () => {
        const [g, u, w] = await Promise.all([good.metrics(), inUrl.metrics(), wrong.metrics()]);
        return g.value('cloud_session_exporter_cluster_replicas') === 2 && u.value('cloud_session_exporter_cluster_degraded') === 0 && w.value('cloud_session_exporter_cluster_degraded') === 1;
      }, 15_000);
      const check = await runExporter([`--config.file=${wrong.configFile}`, '--config.check'], ENV);
      expect(check.code).toBe(0);
      expect(check.out).toMatch(/cluster: Redis redis:\/\/127\.0\.0\.1:\d+\/0, password from the URL, key prefix cse, replica wrong/);
      for (const p of [good, inUrl, wrong]) {
        const scrape = await p.scrape();
        const ready = await p.get('/-/ready');
        const landing = await p.get('/');
        await p.terminate();
        for (const text of [p.output(), scrape, ready.body, landing.body, check.out, check.err]) expect(text).not.toContain(PASSWORD.slice(0, 12));
      }
      expect(wrong.output()).toMatch(/Redis cannot be reached/);
    } finally {
      r.stop();
    }
  }, 60_000);

  test('SIGTERM while Redis hangs: the replica exits 0 within the grace period plus a second', async () => {
    const { emu, file } = await fleet({ sensors: 50, gateways: 50 });
    const r = await redis();
    const p = await replica('a', replicaConfig({ emuUrl: emu.url, file, schedule: '*/2 * * * * *', cluster: `  redis: {url: "redis://127.0.0.1:${r.port}/0"}\n  replica_id: a\n` }), ['--web.shutdown-grace-period=2s']);
    await until('leading', async () => (await p.metrics()).value('cloud_session_exporter_cluster_leader', { job_name: 'fleet' }) === 1, 10_000);
    r.process.kill('SIGSTOP');
    await new Promise((res) => setTimeout(res, 1500));
    const { code, ms } = await p.terminate();
    r.process.kill('SIGCONT');
    expect(code).toBe(0);
    expect(ms).toBeLessThan(3000);
  }, 30_000);

  test('a reload that changes the cluster block is refused; the running configuration stays', async () => {
    const { emu, file } = await fleet({ sensors: 50, gateways: 50 });
    const r = await redis();
    const yaml = (prefix: string) => replicaConfig({ emuUrl: emu.url, file, schedule: '*/5 * * * * *', cluster: `  redis: {url: "redis://127.0.0.1:${r.port}/0", key_prefix: ${prefix}}\n  replica_id: a\n` });
    const p = await replica('a', yaml('one'));
    fs.writeFileSync(p.configFile, yaml('two'));
    const res = await fetch(`${p.url}/-/reload`, { method: 'POST' });
    expect(res.status).toBe(500);
    expect(await res.text()).toMatch(/cluster: the block changed; it takes effect at a restart/);
    expect((await p.metrics()).value('cloud_session_exporter_config_last_reload_successful')).toBe(0);
  }, 30_000);
});
