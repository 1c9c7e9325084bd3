// `npm run demo` is the first command a newcomer runs: the emulator (with its MQTT broker) and the exporter on
// config/demo.yaml, every job type including the end-to-end canary. Run it once, on free ports, as built.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { freePort } from '../helpers/servers';

const ROOT = path.join(__dirname, '../..');

test('npm run demo --once: every demo job succeeds, the canary receives its probe, and both processes stop', async () => {
  const script = path.join(ROOT, 'dist/scripts/demo.js');
  if (!fs.existsSync(script)) throw new Error(`${script} is missing: run npm run build first (npm test does)`);
  const [emu, exp, broker] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(process.execPath, [script, '--once'], {
    cwd: ROOT,
    env: { ...process.env, DEMO_EMULATOR_LISTEN: `127.0.0.1:${emu}`, DEMO_EXPORTER_LISTEN: `127.0.0.1:${exp}`, DEMO_BROKER_LISTEN: `127.0.0.1:${broker}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  expect(code, out).toBe(0);
  for (const job of ['fleet-hangzhou', 'fleet-shanghai', 'mongodb', 'redis', 'canary']) {
    expect(out, job).toContain(`cloud_session_exporter_job_success{job_name="${job}"} 1`);
  }
  expect(out).toMatch(/aliyun_mqtt_probe_success\{[^}]*instance_id="post-cn-demo0001"[^}]*\} 1/);
  expect(out).toMatch(/aliyun_mqtt_probe_received_total\{[^}]*\} [1-9]/);
  expect(out).toMatch(/aliyun_mqtt_clients\{[^}]*state="online"[^}]*\} [1-9]\d*/);
  expect(out).toContain(`MQTT broker on mqtt://127.0.0.1:${broker}`);
  expect(out).not.toMatch(/level=error/);
}, 90_000);
