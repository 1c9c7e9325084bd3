#!/usr/bin/env node
// The `cloud-session-emulator` command: serves a scenario file until SIGTERM or SIGINT.
import { mqttOf } from './apis/mqtt';
import type { BrokerScenario } from './broker/scenario';
import { ScenarioError } from './core/scenario';
import { loadScenario } from './scenario';
import { startEmulator } from './server';

const USAGE = `usage: cloud-session-emulator --scenario FILE [--listen HOST:PORT] [--broker-listen HOST:PORT]

  --scenario FILE             scenario YAML (see emulator/README.md)
  --listen HOST:PORT          address to serve on (default 127.0.0.1:18080; port 0 picks a free one)
  --broker-listen HOST:PORT   the embedded MQTT broker's address, overriding the scenario's broker.host/port
                              (the scenario must have a \`broker:\` section)`;

export function parseListen(value: string, flag = '--listen'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port > 65535) throw new Error(`${flag} must be HOST:PORT, got "${value}"`);
  return { host: m[1] ?? (m[2] === '' ? '127.0.0.1' : (m[2] as string)), port };
}

export function parseArgs(argv: string[]): { scenario: string; listen: string; brokerListen?: string } | 'help' {
  let scenario: string | undefined;
  let listen = '127.0.0.1:18080';
  let brokerListen: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--help' || flag === '-h') return 'help';
    else if (flag === '--scenario') scenario = value();
    else if (flag === '--listen') listen = value();
    else if (flag === '--broker-listen') brokerListen = value();
    else throw new Error(`unknown argument "${arg}"`);
  }
  if (scenario === undefined) throw new Error('--scenario is required');
  return brokerListen === undefined ? { scenario, listen } : { scenario, listen, brokerListen };
}

async function main(): Promise<void> {
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`cloud-session-emulator: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (args === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  try {
    const { host, port } = parseListen(args.listen);
    const scenario = loadScenario(args.scenario);
    if (args.brokerListen !== undefined) {
      const broker = scenario.broker as BrokerScenario | undefined;
      if (broker === undefined) throw new Error(`--broker-listen: the scenario ${args.scenario} has no \`broker:\` section`);
      const b = parseListen(args.brokerListen, '--broker-listen');
      scenario.broker = { ...broker, host: b.host, port: b.port };
    }
    const emulator = await startEmulator({ scenario, host, port });
    process.stdout.write(`cloud-session-emulator listening on ${emulator.url} (scenario ${args.scenario})\n`);
    const broker = mqttOf(emulator).broker;
    if (broker) process.stdout.write(`cloud-session-emulator MQTT broker on ${broker.url}\n`);
    const stop = (): void => {
      void emulator.close().then(() => process.exit(0));
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  } catch (err) {
    const message = err instanceof ScenarioError ? err.message : `${(err as Error).message}`;
    process.stderr.write(`cloud-session-emulator: ${message}\n`);
    process.exit(1);
  }
}

if (require.main === module) void main();
