// Test harness: the emulator (Tencent side) plus an exporter app with a tencentcloud_mongodb_connections job,
// talking over HTTP on 127.0.0.1 through the real Tencent SDK; metrics are read from the exposition text.
import YAML from 'yaml';
import { createApp, type App } from '../../../src/core/app';
import { parseConfig } from '../../../src/config/load';
import { JOB_TYPES } from '../../../src/apis';
import { createLogger } from '../../../src/util/log';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../../emulator/server';
import { parseScenario } from '../../../emulator/scenario';
import type { EmulatorStats } from '../../../emulator/core/stats';
import { emulatorProcess, truthOf, type Truth } from '../../helpers/harness';
import { parseExposition, type Scrape } from '../../helpers/exposition';

export const SECRET_ID = 'AKIDmongoTest0000000000000001';
export const SECRET_KEY = 'tcSecretKey-d0-not-leak-7f3a9c';
export const TOKEN = 'tcSessionToken-also-private-91be';
export const ACCOUNT = 'tc';
export const API = 'DescribeClientConnections';

/** Credentials block of an emulator scenario (YAML), matching the exporter config below. */
export const SCENARIO_CREDENTIALS = `
credentials:
  - account: ${ACCOUNT}
    provider: tencentcloud
    secret_id: ${SECRET_ID}
    secret_key: ${SECRET_KEY}
    token: ${TOKEN}
`;

export { parseExposition, type Scrape } from '../../helpers/exposition';

export interface JobOptions {
  instanceIds: string[];
  maxClientIps?: number;
  pageSize?: number;
  secretKey?: string;
  secretId?: string;
  token?: string | null;
  requestTimeout?: string;
  qps?: number;
  extraJobYaml?: string;
  region?: string;
  /** accounts[].rate_limit_margin, e.g. '100ms'. */
  rateLimitMargin?: string;
}

/** What the tests need of an emulator, in this process or in its own. */
export interface EmulatorHandle {
  url: string;
  truth(): Promise<Truth>;
  stats(): Promise<EmulatorStats>;
  close(): Promise<void>;
  /** Only for an in-process emulator (fault switching, stats reset). */
  inProcess?: Emulator;
}

export interface Harness {
  emu: EmulatorHandle;
  app: App;
  logs: string[];
  run(): Promise<Scrape>;
  metrics(): Promise<Scrape>;
  close(): Promise<void>;
}

export function exporterConfigYaml(endpoint: string, o: JobOptions): string {
  const token = o.token === null ? '' : `    token: \${TC_TOKEN}\n`;
  return `
accounts:
  - name: ${ACCOUNT}
    provider: tencentcloud
    secret_id: \${TC_ID}
    secret_key: \${TC_KEY}
${token}    request_timeout: ${o.requestTimeout ?? '5s'}
${o.rateLimitMargin ? `    rate_limit_margin: ${o.rateLimitMargin}\n` : ''}${o.qps ? `    qps: {DescribeClientConnections: ${o.qps}}\n` : ''}jobs:
  - name: mongo
    type: tencentcloud_mongodb_connections
    account: ${ACCOUNT}
    schedule: "0 0 * * * *"
    region: ${o.region ?? 'ap-guangzhou'}
    endpoint: ${endpoint}
    instance_ids: [${o.instanceIds.join(', ')}]
    max_client_ips: ${o.maxClientIps ?? 100000}
${o.pageSize ? `    page_size: ${o.pageSize}\n` : ''}    labels: {env: test}
${o.extraJobYaml ?? ''}`;
}

export interface HarnessOptions extends Partial<Omit<EmulatorOptions, 'scenario'>> {
  /**
   * Run the emulator in its own process (built dist/, as the demo does): needed wherever a test asserts the cloud's
   * 1-second windows, because an in-process emulator stamps arrivals late whenever the exporter's own work in the
   * same event loop delays it, which no real cloud would see.
   */
  ownProcess?: boolean;
}

async function emulatorFor(scenarioYaml: string, opts: HarnessOptions): Promise<EmulatorHandle> {
  if (opts.ownProcess) {
    const proc = await emulatorProcess(YAML.parse(scenarioYaml));
    return { url: proc.url, truth: () => proc.truth() as Promise<Truth>, stats: () => proc.stats() as unknown as Promise<EmulatorStats>, close: () => proc.close() };
  }
  const { ownProcess: _ignored, ...rest } = opts;
  const emu = await startEmulator({ scenario: parseScenario(scenarioYaml, 'test-scenario'), port: 0, ...rest });
  return { url: emu.url, truth: () => truthOf(emu), stats: async () => emu.stats(), close: () => emu.close(), inProcess: emu };
}

export async function startHarness(scenarioYaml: string, o: JobOptions, emuOpts: HarnessOptions = {}): Promise<Harness> {
  const emu = await emulatorFor(scenarioYaml, emuOpts);
  const logs: string[] = [];
  const config = parseConfig(exporterConfigYaml(emu.url, o), 'mongo-test.yml', {
    env: { TC_ID: o.secretId ?? SECRET_ID, TC_KEY: o.secretKey ?? SECRET_KEY, TC_TOKEN: o.token ?? TOKEN },
    jobTypes: JOB_TYPES,
  });
  const logger = createLogger({ level: 'debug', format: 'json', write: (line) => logs.push(line) });
  const app = createApp(config, { jobTypes: JOB_TYPES, logger, processMetrics: false });
  const metrics = async () => parseExposition(([...(await app.exposition())].join('')));
  return {
    emu,
    app,
    logs,
    metrics,
    async run() {
      await app.runAllNow();
      return metrics();
    },
    async close() {
      await app.stop(0);
      await emu.close();
    },
  };
}
