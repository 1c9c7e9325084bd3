// `npm run demo`: starts the cloud emulator with the demo scenario and the exporter on config/demo.yaml, waits until
// the first polls are done, and prints where to look. Ctrl-C stops both.
//
// Each address comes from its variable or a default. A default port that another process holds is replaced by one the
// OS picks; a port set through a variable is not (the demo stops, naming the port and the variable). Every URL the demo
// uses or prints is the one its own child reported listening on, so it never shows another process's data.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';

const root = path.resolve(__dirname, '..', '..');
const once = process.argv.includes('--once');

interface Listener {
  what: string;
  variable: string;
  defaultAddress: string;
}
const EMULATOR: Listener = { what: 'the emulator', variable: 'DEMO_EMULATOR_LISTEN', defaultAddress: '127.0.0.1:18080' };
const BROKER: Listener = { what: "the emulator's MQTT broker", variable: 'DEMO_BROKER_LISTEN', defaultAddress: '127.0.0.1:18883' };
const EXPORTER: Listener = { what: 'the exporter', variable: 'DEMO_EXPORTER_LISTEN', defaultAddress: '127.0.0.1:10780' };

// The demo scenario's credentials (config/scenarios/demo.yaml); real deployments take these from the environment.
const demoCredentials = {
  ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI-demo-access-key',
  ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'demo-secret-change-me',
  TENCENTCLOUD_SECRET_ID: 'AKID-demo-secret-id',
  TENCENTCLOUD_SECRET_KEY: 'demo-tencent-key',
};

class DemoError extends Error {}

function splitAddress(value: string, variable: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  if (m === null || Number(m[3]) > 65535) throw new DemoError(`${variable} must be HOST:PORT, got "${value}"`);
  return { host: m[1] ?? (m[2] as string), port: Number(m[3]) };
}

const joinAddress = (host: string, port: number): string => `${host.includes(':') ? `[${host}]` : host}:${port}`;

/** True when another socket listens on the address: binding it fails with EADDRINUSE. */
function inUse(host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(true) : reject(err)));
    probe.listen({ host: host === '' ? undefined : host, port, exclusive: true }, () => probe.close(() => resolve(false)));
  });
}

/** The address to pass to a child: the user's (refused when taken), or the default (port 0 when taken). */
async function chooseAddress(l: Listener, notes: string[]): Promise<string> {
  const explicit = process.env[l.variable];
  const { host, port } = splitAddress(explicit ?? l.defaultAddress, l.variable);
  if (port === 0) return joinAddress(host, 0);
  let taken: boolean;
  try {
    taken = await inUse(host, port);
  } catch (err) {
    throw new DemoError(`${l.what} cannot listen on ${joinAddress(host, port)} (${(err as Error).message}); set ${l.variable} to another HOST:PORT`);
  }
  if (!taken) return joinAddress(host, port);
  if (explicit !== undefined) {
    throw new DemoError(`${joinAddress(host, port)}, set by ${l.variable}, is in use by another process; set ${l.variable} to a free HOST:PORT (port 0 lets the system pick one)`);
  }
  notes.push(`port ${port} was in use by another process, so ${l.what} listens on a free port (${l.variable}=HOST:PORT chooses one)`);
  return joinAddress(host, 0);
}

/** A URL for an address a child reported: wildcard hosts are reached through the loopback address. */
function urlOf(scheme: string, address: string): string {
  const m = /^(?:\[([^\]]+)\]|(.*)):(\d+)$/.exec(address);
  if (m === null) throw new DemoError(`cannot read the address "${address}"`);
  const host = m[1] ?? (m[2] as string);
  const reachable = host === '' || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `${scheme}://${joinAddress(reachable, Number(m[3]))}`;
}

interface Child {
  /** The first group of the first output line matching `re`; rejects if the child exits first. */
  report(re: RegExp, what: string): Promise<string>;
}

const children: ChildProcess[] = [];

function start(name: string, args: string[], env: Record<string, string>): Child {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const watchers: Array<{ re: RegExp; resolve(v: string): void; reject(e: Error): void; what: string }> = [];
  // The children's output goes on to the terminal as it would unpiped; the demo only reads what they report.
  const follow = (stream: NodeJS.ReadableStream, to: NodeJS.WritableStream) =>
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      to.write(`${line}\n`);
      for (const w of [...watchers]) {
        const m = w.re.exec(line);
        if (m === null) continue;
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(m[1] as string);
      }
    });
  follow(child.stdout!, process.stdout);
  follow(child.stderr!, process.stderr);
  child.on('exit', (code, signal) => {
    const waiting = watchers.splice(0);
    // While the demo waits for a report, its error says what happened; otherwise this is the news.
    for (const w of waiting) w.reject(new DemoError(`${name} exited (${signal ?? code}) before reporting ${w.what}`));
    if (!stopping && waiting.length === 0) {
      console.error(`demo: ${name} exited (${signal ?? code}); stopping`);
      void stop(1);
    }
  });
  children.push(child);
  return {
    report: (re, what) => new Promise((resolve, reject) => watchers.push({ re, resolve, reject, what })),
  };
}

async function waitFor(url: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not answering yet
    }
    if (Date.now() > until) throw new DemoError(`${url} did not answer within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  // The exporter first: its in-flight polls finish against a live emulator instead of logging refused connections.
  for (const c of [...children].reverse()) {
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
  const notes: string[] = [];
  // All three are checked before anything starts, so a taken port the user chose stops the demo at once.
  const emulatorListen = await chooseAddress(EMULATOR, notes);
  const brokerListen = await chooseAddress(BROKER, notes);
  const exporterListen = await chooseAddress(EXPORTER, notes);

  const emulator = start('emulator', ['dist/emulator/main.js', '--scenario', 'config/scenarios/demo.yaml', '--listen', emulatorListen, '--broker-listen', brokerListen], {});
  // Both watched from the start: the two lines may arrive in one chunk.
  const [emulatorUrl, brokerUrl] = await Promise.all([
    emulator.report(/^cloud-session-emulator listening on (http:\/\/\S+)/, 'its address'),
    emulator.report(/^cloud-session-emulator MQTT broker on (mqtt:\/\/\S+)/, "its broker's address"),
  ]);

  // config/demo.yaml reads the emulator's and the broker's URLs from these variables.
  const exporter = start('exporter', ['dist/src/main.js', '--config.file', 'config/demo.yaml', '--web.listen-address', exporterListen], {
    ...demoCredentials,
    DEMO_EMULATOR_URL: emulatorUrl,
    DEMO_BROKER_URL: brokerUrl,
  });
  const exporterUrl = urlOf('http', await exporter.report(/\bmsg=listening address=(\S+)/, 'its address'));
  await waitFor(`${exporterUrl}/-/ready`, 60_000);
  const text = await (await fetch(`${exporterUrl}/metrics`)).text();
  const interesting = text.split('\n').filter((l) => /^(aliyun_mqtt_clients|tencentcloud_mongodb_connections|aliyun_redis_sessions|aliyun_mqtt_probe_success|aliyun_mqtt_probe_api_duration_seconds|aliyun_mqtt_probe_received_total|cloud_session_exporter_job_success)[{ ]/.test(l));
  console.log(`
The exporter is polling the local cloud emulator.

  Status:    ${exporterUrl}/ (every job, API quota and credential at a glance)
  Metrics:   ${exporterUrl}/metrics
  Emulator:  ${emulatorUrl}/_emulator/truth (ground truth), ${emulatorUrl}/_emulator/stats
  Broker:    ${brokerUrl} (the canary's subscription; faults: POST ${emulatorUrl}/_emulator/broker/faults)
${notes.map((n) => `\n  Note: ${n}.\n`).join('')}
A few of the current values:
  ${interesting.join('\n  ')}
`);
  if (once) await stop(0);
  else console.log('Press Ctrl-C to stop.');
}

main().catch((err) => {
  console.error(`demo: ${err instanceof DemoError ? err.message : (err as Error).stack}`);
  void stop(1);
});
