// `npm run demo`: starts the cloud emulator with the demo scenario and the exporter on config/demo.yaml,
// waits until the first polls are done, and prints where to look. Ctrl-C stops both.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const emulatorAddress = process.env.DEMO_EMULATOR_LISTEN ?? '127.0.0.1:18080';
const exporterAddress = process.env.DEMO_EXPORTER_LISTEN ?? '127.0.0.1:10780';
const brokerAddress = process.env.DEMO_BROKER_LISTEN ?? '127.0.0.1:18883';
const once = process.argv.includes('--once');

// The demo scenario's credentials (config/scenarios/demo.yaml); real deployments take these from the environment.
const demoEnv = {
  ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI-demo-access-key',
  ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'demo-secret-change-me',
  TENCENTCLOUD_SECRET_ID: 'AKID-demo-secret-id',
  TENCENTCLOUD_SECRET_KEY: 'demo-tencent-key',
  DEMO_EMULATOR_URL: `http://${emulatorAddress}`,
  DEMO_BROKER_URL: `mqtt://${brokerAddress}`,
};

const children: ChildProcess[] = [];

function start(name: string, args: string[]): ChildProcess {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...demoEnv }, stdio: ['ignore', 'inherit', 'inherit'] });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`demo: ${name} exited (${signal ?? code}); stopping`);
      void stop(1);
    }
  });
  children.push(child);
  return child;
}

async function waitFor(url: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url} did not answer within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

let stopping = false;
async function stop(code: number): Promise<never> {
  stopping = true;
  // The exporter first: its in-flight polls finish against a live emulator instead of logging refused connections.
  for (const c of children.reverse()) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  }
  process.exit(code);
}

async function main(): Promise<void> {
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  start('emulator', ['dist/emulator/main.js', '--scenario', 'config/scenarios/demo.yaml', '--listen', emulatorAddress, '--broker-listen', brokerAddress]);
  await waitFor(`http://${emulatorAddress}/_emulator/stats`, 20_000);
  start('exporter', ['dist/src/main.js', '--config.file', 'config/demo.yaml', '--web.listen-address', exporterAddress]);
  await waitFor(`http://${exporterAddress}/-/ready`, 60_000);
  const text = await (await fetch(`http://${exporterAddress}/metrics`)).text();
  const interesting = text.split('\n').filter((l) => /^(aliyun_mqtt_clients|tencentcloud_mongodb_connections|aliyun_redis_sessions|aliyun_mqtt_probe_success|aliyun_mqtt_probe_api_duration_seconds|aliyun_mqtt_probe_received_total|cloud_session_exporter_job_success)[{ ]/.test(l));
  console.log(`\nThe exporter is polling the local cloud emulator.\n\n  Metrics:   http://${exporterAddress}/metrics\n  Emulator:  http://${emulatorAddress}/_emulator/truth (ground truth), /_emulator/stats\n  Broker:    mqtt://${brokerAddress} (the canary's subscription; faults: POST /_emulator/broker/faults)\n\nA few of the current values:\n  ${interesting.join('\n  ')}\n`);
  if (once) await stop(0);
  else console.log('Press Ctrl-C to stop.');
}

main().catch((err) => {
  console.error(`demo: ${(err as Error).message}`);
  void stop(1);
});
