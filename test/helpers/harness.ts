// Test harness: an emulator, an app built from YAML, captured logs, and a parsed scrape.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { createApp, type App, type AppDeps } from '../../src/core/app';
import { parseConfig, loadConfigFile } from '../../src/config/load';
import { JOB_TYPES } from '../../src/apis';
import { createLogger } from '../../src/util/log';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../emulator/server';
import type { ClientConnection } from '../../emulator/apis/mongodb/clients';
import type { MongoInstanceConfig } from '../../emulator/apis/mongodb/scenario';
import type { SendMessageHook } from '../../emulator/apis/mqtt/handlers';
import type { MqttInstanceConfig } from '../../emulator/apis/mqtt/scenario';
import type { RedisInstanceConfig } from '../../emulator/apis/redis/scenario';
import type { BrokerScenario } from '../../emulator/broker/scenario';
import type { Scenario } from '../../emulator/core/scenario';
import type { DasData } from '../../emulator/apis/redis/sessions';

export const ALIYUN = { account: 'aliyun-test', provider: 'aliyun' as const, access_key_id: 'LTAI-test-key-id', access_key_secret: 'test-secret-0123456789' };
export const TENCENT = { account: 'tencent-test', provider: 'tencentcloud' as const, secret_id: 'AKID-test-secret-id', secret_key: 'tencent-test-key-0123' };

/** The `accounts:` entry of ALIYUN in exporter YAML, keys from ${AK} / ${SK} (pass ENV-style {AK, SK} to appFromYaml). */
export const ALIYUN_ACCOUNT_YAML = `  - name: ${ALIYUN.account}
    provider: aliyun
    access_key_id: \${AK}
    access_key_secret: \${SK}
`;

/**
 * Emulators and apps started inside a test are closed when it ends, pass or fail (the app before the emulator:
 * vitest runs these hooks last registered first). Started in beforeAll, they are the suite's to close.
 */
function closeWhenTestEnds(close: () => Promise<void>): void {
  try {
    onTestFinished(close);
  } catch {
    // Not inside a test.
  }
}

export async function emulator(scenario: EmulatorOptions['scenario'], opts: Omit<EmulatorOptions, 'scenario'> = {}): Promise<Emulator> {
  const emu = await startEmulator({ scenario, port: 0, ...opts });
  closeWhenTestEnds(() => emu.close());
  return emu;
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'cse-test-'));
}

export interface TestApp {
  app: App;
  logs: string[];
  configFile: string;
  scrape(): Promise<string>;
}

/** Writes the YAML to a temp file (so relative paths and reloads work) and builds an app on it. */
export function appFromYaml(yaml: string, env: Record<string, string> = {}, deps: Partial<Omit<AppDeps, 'jobTypes'>> = {}, dir = tempDir()): TestApp {
  const logs: string[] = [];
  const configFile = path.join(dir, 'config.yml');
  fs.writeFileSync(configFile, yaml);
  const load = () => loadConfigFile(configFile, { env, jobTypes: JOB_TYPES });
  const logger = createLogger({ level: 'debug', format: 'json', write: (line) => void logs.push(line) });
  const app = createApp(parseConfig(yaml, configFile, { env, jobTypes: JOB_TYPES }), { jobTypes: JOB_TYPES, logger, processMetrics: false, loadConfig: load, ...deps });
  closeWhenTestEnds(() => app.stop(0));
  return { app, logs, configFile, scrape: () => scrapeApp(app) };
}

export async function scrapeApp(app: App): Promise<string> {
  return [...(await app.exposition())].join('');
}

export { parseExposition, seriesOf } from './exposition';


/** A validated scenario with every product's keys typed (what tests build and inspect). */
export type TestScenario = Scenario & {
  mqtt: { instances: MqttInstanceConfig[] };
  mongodb: { instances: MongoInstanceConfig[] };
  redis: { instances: RedisInstanceConfig[] };
  broker?: BrokerScenario;
};

/** The argument of the MQTT product's onSendMessage hook. */
export type SentMessageEvent = Parameters<SendMessageHook>[0];

/** The emulator's ground truth, per product (their truth keys), typed for tests. */
export interface Truth {
  /** instance → client ID → online. */
  mqtt: Record<string, Record<string, boolean>>;
  mongodb: Record<string, { TotalCount: number; Clients: ClientConnection[] }>;
  /** The DAS Data object GetRedisAllSession would answer; `error` if a real Redis could not be read. */
  redis: Record<string, DasData | { error: string }>;
}

/** An in-process emulator's truth, typed. */
export async function truthOf(emu: { truth(): Promise<Record<string, unknown>> }): Promise<Truth> {
  return (await emu.truth()) as unknown as Truth;
}

export interface EmulatorProcess {
  url: string;
  truth(): Promise<Truth>;
  stats(): Promise<{ apis: Record<string, { calls: number; ok: number; throttled: number; largest_batch: number; busiest_window: number; busiest_window_with_throttled: number }> }>;
  close(): Promise<void>;
}

/**
 * The emulator in its own process (built dist/), as in the demo and benchmarks: rate-window measurements then
 * see network-like timing instead of the test process's event-loop pauses, which no real cloud would see.
 */
export async function emulatorProcess(scenario: unknown): Promise<EmulatorProcess> {
  const { spawn } = await import('node:child_process');
  const YAML = await import('yaml');
  const dir = tempDir();
  const file = path.join(dir, 'scenario.yaml');
  fs.writeFileSync(file, YAML.stringify(scenario));
  const main = path.resolve(__dirname, '../../dist/emulator/main.js');
  if (!fs.existsSync(main)) throw new Error(`${main} is missing: run npm run build first (npm test does)`);
  const child = spawn(process.execPath, [main, '--scenario', file, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`emulator exited with ${code}: ${out}`)));
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const get = async (p: string): Promise<any> => (await fetch(`${url}${p}`)).json();
  const close = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  closeWhenTestEnds(close);
  return { url, truth: () => get('/_emulator/truth'), stats: () => get('/_emulator/stats'), close };
}
