// `npm run demo` is the first command a newcomer runs: the emulator (with its MQTT broker) and the exporter on
// config/demo.yaml, every job type including the end-to-end canary. Run as built: on ports given through its variables,
// on its default ports while other servers hold them, and with a port given through a variable that is taken.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { expect, test } from 'vitest';
import { freePort } from '../helpers/servers';
import { findSecretLeaks } from '../helpers/secrets';

const ROOT = path.join(__dirname, '../..');
const SCRIPT = path.join(ROOT, 'dist/scripts/demo.js');
const DEFAULTS = { DEMO_EMULATOR_LISTEN: 18080, DEMO_BROKER_LISTEN: 18883, DEMO_EXPORTER_LISTEN: 10780 };
const VARIABLES = Object.keys(DEFAULTS);
/** The demo scenario's keys (config/scenarios/demo.yaml), which scripts/demo.ts passes to the exporter. */
const DEMO_KEYS = { aliyun_id: 'LTAI-demo-access-key', aliyun_secret: 'demo-secret-change-me', tencent_id: 'AKID-demo-secret-id', tencent_key: 'demo-tencent-key' };

function startDemo(env: Record<string, string>, args: string[] = []): { child: ChildProcess; output(): string; exit: Promise<number | null> } {
  if (!fs.existsSync(SCRIPT)) throw new Error(`${SCRIPT} is missing: run npm run build first (npm test does)`);
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !VARIABLES.includes(k)));
  const child = spawn(process.execPath, [SCRIPT, ...args], { cwd: ROOT, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, output: () => out, exit };
}

/** A server answering 200 with other content on every path (metrics, readiness, emulator stats), counting requests. */
function impostor(port: number): Promise<{ server: http.Server; requests: string[] } | undefined> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    res.end('impostor_metric{source="another process"} 42\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(undefined) : reject(err)));
    server.listen(port, '127.0.0.1', () => resolve({ server, requests }));
  });
}

test('npm run demo --once: every demo job succeeds, the canary receives its probe, and both processes stop', async () => {
  const [emu, exp, broker] = [await freePort(), await freePort(), await freePort()];
  const demo = startDemo({ DEMO_EMULATOR_LISTEN: `127.0.0.1:${emu}`, DEMO_EXPORTER_LISTEN: `127.0.0.1:${exp}`, DEMO_BROKER_LISTEN: `127.0.0.1:${broker}` }, ['--once']);
  const code = await demo.exit;
  const out = demo.output();
  expect(code, out).toBe(0);
  for (const job of ['fleet-hangzhou', 'fleet-shanghai', 'mongodb', 'redis', 'canary']) {
    expect(out, job).toContain(`cloud_session_exporter_job_success{job_name="${job}"} 1`);
  }
  expect(out).toMatch(/aliyun_mqtt_probe_success\{[^}]*instance_id="post-cn-demo0001"[^}]*\} 1/);
  expect(out).toMatch(/aliyun_mqtt_probe_received_total\{[^}]*\} [1-9]/);
  expect(out).toMatch(/aliyun_mqtt_clients\{[^}]*state="online"[^}]*\} [1-9]\d*/);
  expect(out).toContain(`MQTT broker on mqtt://127.0.0.1:${broker}`);
  expect(out).toContain(`Metrics:   http://127.0.0.1:${exp}/metrics`);
  expect(out).toContain(`Status:    http://127.0.0.1:${exp}/ `);
  expect(out).not.toMatch(/level=error/);
}, 90_000);

test("with its default ports held by other servers, the demo listens elsewhere, says so, and its printed URLs serve its own emulator's data", async () => {
  // A port some other process already holds is just as taken: the demo must avoid it all the same.
  const impostors = await Promise.all(Object.values(DEFAULTS).map((port) => impostor(port)));
  try {
    for (const port of Object.values(DEFAULTS)) {
      expect(await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.ok, () => false), `something answers on ${port}`).toBe(true);
    }
    for (const imp of impostors) imp?.requests.splice(0);
    const demo = startDemo({});
    const until = Date.now() + 90_000;
    while (!demo.output().includes('Press Ctrl-C to stop.')) {
      if (demo.child.exitCode !== null) throw new Error(`the demo exited with ${demo.child.exitCode}: ${demo.output()}`);
      if (Date.now() > until) throw new Error(`the demo did not become ready: ${demo.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const out = demo.output();
    const metricsUrl = /Metrics: +(http:\/\/\S+\/metrics)/.exec(out)![1]!;
    const truthUrl = /Emulator: +(http:\/\/\S+\/_emulator\/truth)/.exec(out)![1]!;
    const brokerUrl = /Broker: +(mqtt:\/\/\S+)/.exec(out)![1]!;
    const ports = [metricsUrl, truthUrl, brokerUrl].map((u) => Number(new URL(u).port));
    for (const port of ports) expect(Object.values(DEFAULTS), out).not.toContain(port);
    for (const [variable, port] of Object.entries(DEFAULTS)) {
      expect(out).toMatch(new RegExp(`Note: port ${port} was in use by another process, so .* listens on a free port \\(${variable}=HOST:PORT chooses one\\)`));
    }

    // The printed /metrics is the demo's exporter polling the demo's emulator: its instances, its jobs, no impostor.
    const metrics = await (await fetch(metricsUrl)).text();
    expect(metrics).not.toContain('impostor_metric');
    expect(metrics).toMatch(/^aliyun_mqtt_clients\{[^}]*instance_id="post-cn-demo0001"[^}]*state="online"[^}]*\} [1-9]/m);
    expect(metrics).toMatch(/^tencentcloud_mongodb_connections\{[^}]*instance_id="cmgo-demo0001"/m);
    for (const job of ['fleet-hangzhou', 'fleet-shanghai', 'mongodb', 'redis', 'canary']) expect(metrics, job).toContain(`cloud_session_exporter_job_success{job_name="${job}"} 1`);
    expect(metrics).toContain('aliyun_mqtt_probe_success{region="cn-hangzhou",instance_id="post-cn-demo0001",topic="canary/probe",env="demo"} 1');
    // The printed emulator is the demo scenario's, and the one the exporter polled.
    const truth = (await (await fetch(truthUrl)).json()) as { mqtt: Record<string, Record<string, boolean>> };
    expect(Object.keys(truth.mqtt).sort()).toEqual(['post-cn-demo0001', 'post-cn-demo0002']);
    const stats = (await (await fetch(truthUrl.replace(/truth$/, 'stats'))).json()) as { apis: Record<string, { ok: number }> };
    for (const api of ['BatchQuerySessionByClientIds', 'DescribeClientConnections', 'GetRedisAllSession', 'SendMessage']) expect(stats.apis[api]?.ok, api).toBeGreaterThan(0);

    // The printed status page: every job run and succeeded, each job type's figures, every API's quota bar, both
    // accounts' credentials, and none of the demo's keys.
    const statusUrl = /Status: +(http:\/\/\S+\/)/.exec(out)![1]!;
    expect(new URL(statusUrl).port).toBe(new URL(metricsUrl).port);
    const page = await (await fetch(statusUrl)).text();
    for (const job of ['fleet-hangzhou', 'fleet-shanghai', 'mongodb', 'redis', 'canary']) {
      expect(page, job).toMatch(new RegExp(`<tr id="row-${job}" data-job="${job}">.*?<td><span class="ok">ok</span></td><td class="last-success"><time`));
    }
    for (const label of ['devices', 'online', 'invalid inventory entries', 'quota bound', 'last delivery latency', 'lost', 'connections', 'sessions']) expect(page, label).toContain(`>${label}<`);
    expect(page.match(/<meter /g)).toHaveLength(4);
    expect(page.match(/<td><span class="ok">ok<\/span><\/td><td><span class="none">does not expire/g)).toHaveLength(2);
    expect(findSecretLeaks(page, DEMO_KEYS)).toEqual([]);

    // A port another process holds cannot be watched; at least one of the default ports must be (the test's own).
    expect(impostors.some(Boolean)).toBe(true);
    for (const imp of impostors) if (imp) expect(imp.requests, 'the demo never asks the servers on its default ports').toEqual([]);
    demo.child.kill('SIGINT');
    expect(await demo.exit, demo.output()).toBe(0);
  } finally {
    await Promise.all(impostors.map((imp) => imp && new Promise((r) => imp.server.close(r))));
  }
}, 120_000);

test('a port given through its variable that another process holds stops the demo before it starts anything, naming the port and the variable', async () => {
  const port = await freePort();
  const holder = (await impostor(port))!;
  try {
    const demo = startDemo({ DEMO_EXPORTER_LISTEN: `127.0.0.1:${port}`, DEMO_EMULATOR_LISTEN: '127.0.0.1:0', DEMO_BROKER_LISTEN: '127.0.0.1:0' });
    expect(await demo.exit).toBe(1);
    expect(demo.output()).toContain(`demo: 127.0.0.1:${port}, set by DEMO_EXPORTER_LISTEN, is in use by another process; set DEMO_EXPORTER_LISTEN to a free HOST:PORT`);
    expect(demo.output()).not.toContain('cloud-session-emulator listening');
    expect(holder.requests).toEqual([]);
  } finally {
    await new Promise((r) => holder.server.close(r));
  }
}, 30_000);
