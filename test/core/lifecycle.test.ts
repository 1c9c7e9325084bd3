// Staleness, reload, HTTP endpoints and shutdown of the whole exporter.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { ALIYUN, appFromYaml, emulator, emulatorProcess, parseExposition, seriesOf, tempDir } from '../helpers/harness';

const INSTANCE = 'post-cn-life0001';
const ENV = { AK: ALIYUN.access_key_id, SK: ALIYUN.access_key_secret };
const SCENARIO = { credentials: [ALIYUN], mqtt: { instances: [{ instance_id: INSTANCE, fleets: [{ group_id: 'GID_sensor', size: 8, online_ratio: 0.5 }] }] } };
const IDS = Array.from({ length: 8 }, (_, i) => `GID_sensor@@@dev-${String(i + 1).padStart(6, '0')}`);

function yaml(url: string, jobs = 1, extra = ''): string {
  const jobText = Array.from({ length: jobs }, (_, i) => `
  - name: fleet${i || ''}
    type: aliyun_mqtt_sessions
    account: aliyun-test
    schedule: "0 0 1 1 *"
    timeout: 5s
    stale_after: 60s
    region: cn-hangzhou
    endpoint: ${url}
    instance_id: ${INSTANCE}
    client_ids: ${JSON.stringify(IDS)}${i ? `\n    labels: {copy: "${i}"}` : ''}${extra}`).join('');
  return `accounts:\n  - {name: aliyun-test, provider: aliyun, access_key_id: "\${AK}", access_key_secret: "\${SK}"}\njobs:${jobText}\n`;
}


describe('exporter lifecycle', () => {
  test('a failed poll keeps the last good values until stale_after, then drops them', async () => {
    const emu = await emulator(SCENARIO);
    let clock = Date.now();
    const t = appFromYaml(yaml(emu.url), ENV, { now: () => clock });
    await t.app.runAllNow();
    emu.setFaults({ BatchQuerySessionByClientIds: { error_rates: { ParameterCheckFailed: 1 } } });
    clock += 30_000;
    await t.app.runAllNow();
    let m = parseExposition(await t.scrape());
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(0);
    expect(seriesOf(m, 'aliyun_mqtt_client_online')).toHaveLength(8);
    expect(m.value('cloud_session_exporter_job_stale', { job_name: 'fleet' })).toBe(0);
    clock += 31_000;
    m = parseExposition(await t.scrape());
    expect(seriesOf(m, 'aliyun_mqtt_client_online')).toHaveLength(0);
    expect(seriesOf(m, 'aliyun_mqtt_clients')).toHaveLength(0);
    expect(m.value('cloud_session_exporter_job_stale', { job_name: 'fleet' })).toBe(1);
    emu.setFaults({});
    await t.app.runAllNow();
    m = parseExposition(await t.scrape());
    expect(seriesOf(m, 'aliyun_mqtt_client_online')).toHaveLength(8);
    expect(m.value('cloud_session_exporter_job_stale', { job_name: 'fleet' })).toBe(0);
  });

  test('reload adds jobs without dropping good data; a bad file keeps the old config and sets the reload metric to 0', async () => {
    const emu = await emulator(SCENARIO);
    const t = appFromYaml(yaml(emu.url), ENV);
    await t.app.runAllNow();
    fs.writeFileSync(t.configFile, yaml(emu.url, 2));
    expect(await t.app.reload()).toEqual({ ok: true });
    await t.app.runner('fleet1')!.trigger();
    let m = parseExposition(await t.scrape());
    expect(m.value('cloud_session_exporter_config_last_reload_successful')).toBe(1);
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(1);
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet1' })).toBe(1);
    fs.writeFileSync(t.configFile, yaml(emu.url).replace('region: cn-hangzhou', 'region: cn-hangzhou\n    bogus: 1'));
    const bad = await t.app.reload();
    expect(bad.ok).toBe(false);
    expect(bad.error).toMatch(/jobs\[0\]\.bogus \(line \d+\): unknown key "bogus"/);
    m = parseExposition(await t.scrape());
    expect(m.value('cloud_session_exporter_config_last_reload_successful')).toBe(0);
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet1' })).toBe(1);
    // Both jobs poll the same devices; the static label keeps their series apart.
    expect(seriesOf(m, 'aliyun_mqtt_client_online')).toHaveLength(16);
    expect(seriesOf(m, 'aliyun_mqtt_client_online', { copy: '1' })).toHaveLength(8);
    fs.writeFileSync(t.configFile, yaml(emu.url));
    expect((await t.app.reload()).ok).toBe(true);
    m = parseExposition(await t.scrape());
    expect(seriesOf(m, 'cloud_session_exporter_job_success', { job_name: 'fleet1' })).toHaveLength(0);
    expect(seriesOf(m, 'aliyun_mqtt_client_online')).toHaveLength(8);
  });

  test('HTTP: landing page, health, readiness, metrics with gzip, reload, 404', async () => {
    const emu = await emulator({ ...SCENARIO, latency: { min_ms: 300, max_ms: 300 } });
    const t = appFromYaml(yaml(emu.url), ENV);
    const addr = await t.app.listen('127.0.0.1:0');
    const base = `http://127.0.0.1:${addr.port}`;
    t.app.start();
    expect((await fetch(`${base}/-/ready`)).status).toBe(503);
    await t.app.whenReady();
    expect((await fetch(`${base}/-/ready`)).status).toBe(200);
    expect((await fetch(`${base}/-/healthy`)).status).toBe(200);
    expect(await (await fetch(`${base}/`)).text()).toContain('href="/metrics"');
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    const plain = await (await fetch(`${base}/metrics`, { headers: { 'accept-encoding': 'identity' } })).text();
    expect(plain).toContain('aliyun_mqtt_client_online{');
    const raw = await new Promise<Buffer>((resolve, reject) => {
      import('node:http').then(({ get }) =>
        get(`${base}/metrics`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
          expect(res.headers['content-encoding']).toBe('gzip');
          expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
          const parts: Buffer[] = [];
          res.on('data', (d) => parts.push(d)).on('end', () => resolve(Buffer.concat(parts))).on('error', reject);
        }),
      );
    });
    const unzipped = zlib.gunzipSync(raw).toString();
    expect(unzipped.split('\n').filter((l) => l.startsWith('aliyun_'))).toEqual(plain.split('\n').filter((l) => l.startsWith('aliyun_')));
    expect((await fetch(`${base}/-/reload`)).status).toBe(405);
    expect((await fetch(`${base}/-/reload`, { method: 'POST' })).status).toBe(200);
  });

  test('the real process exits 0 on SIGTERM after letting the in-flight poll finish', async () => {
    const proc = await emulatorProcess({ ...SCENARIO, latency: { min_ms: 1500, max_ms: 1500 } });
    const dir = tempDir();
    const file = path.join(dir, 'config.yml');
    fs.writeFileSync(file, yaml(proc.url));
    const child = spawn(process.execPath, [path.resolve(__dirname, '../../dist/src/main.js'), `--config.file=${file}`, '--web.listen-address=127.0.0.1:0', '--log.format=json'], {
      env: { ...process.env, ...ENV },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let logs = '';
    child.stderr!.on('data', (d) => (logs += d));
    try {
      const deadline = Date.now() + 10_000;
      while (!logs.includes('"listening"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(logs).toContain('"listening"');
      await new Promise((r) => setTimeout(r, 300));
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(0);
      expect(logs).toContain('shutting down');
      expect(logs).not.toContain(ALIYUN.access_key_secret);
      const stats = await proc.stats();
      expect(stats.apis.BatchQuerySessionByClientIds.ok).toBe(1);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await proc.close();
    }
  });

  test('bad flags and a bad config file give clear errors and a non-zero exit', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; err: string; out: string }>((resolve) => {
        const c = spawn(process.execPath, [path.resolve(__dirname, '../../dist/src/main.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let err = '';
        let out = '';
        c.stderr!.on('data', (d) => (err += d));
        c.stdout!.on('data', (d) => (out += d));
        c.once('exit', (code) => resolve({ code, err, out }));
      });
    expect(await run(['--nope'])).toMatchObject({ code: 2, err: expect.stringContaining('unknown flag --nope') });
    const dir = tempDir();
    const file = path.join(dir, 'bad.yml');
    fs.writeFileSync(file, yaml('http://127.0.0.1:1').replace('"${SK}"', '"${MISSING_SECRET_VAR}"'));
    const check = await run([`--config.file=${file}`, '--config.check']);
    expect(check.code).toBe(1);
    expect(check.err).toMatch(/environment variable MISSING_SECRET_VAR is not set/);
  });
});
