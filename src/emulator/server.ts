// Starts the cloud emulator: one HTTP server answering the Alibaba and Tencent APIs plus the admin endpoints.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADMIN_PREFIX, handleAdmin, type AdminOps } from './admin-api';
import { AliyunGateway } from './aliyun-gateway';
import { AliyunVerifier, parsePopParams } from './aliyun-signature';
import { DEFAULT_QPS } from './api-types';
import type { GatewayEnv } from './call-flow';
import { DasRedisApis } from './das-redis-api';
import { FaultInjector } from './faults';
import { BodyTooLargeError, readBody, sendJson, splitUrl } from './http-util';
import { MongoApis } from './mongodb-api';
import { MongoInstanceState } from './mongodb-clients';
import { MqttApis, type SendMessageHook } from './mqtt-api';
import { MqttInstanceState } from './mqtt-fleet';
import { MqttBroker } from './mqtt-broker';
import { BROKER_ADMIN_PREFIX, handleBrokerAdmin } from './mqtt-broker-admin';
import { BrokerBackedMqttInstance } from './mqtt-broker-presence';
import { NonceStore } from './nonce-store';
import { createRng } from './prng';
import { RateLimiterRegistry } from './rate-window';
import { RedisInstanceState } from './redis-sessions';
import {
  normalizeScenario,
  parseFaults,
  type AliyunCredential,
  type Scenario,
  type ScenarioInput,
  type TencentCredential,
} from './scenario';
import { StatsRecorder } from './stats';
import { TencentGateway } from './tencent-gateway';
import { TencentVerifier } from './tencent-signature';
import { Timers } from './timers';
import { collectTruth } from './truth';

export interface EmulatorOptions {
  /** A parsed scenario; a plain object is validated and completed with defaults. */
  scenario: Scenario | ScenarioInput;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Milliseconds clock used for signatures, rate windows, churn and stats; injectable for tests. */
  now?: () => number;
  /** Called for every accepted SendMessage; a rejected promise answers SendMessageFailed. */
  onSendMessage?: SendMessageHook;
}

/** The admin operations (also served under /_emulator/), plus the server's address and lifecycle. */
export interface Emulator extends AdminOps {
  /** e.g. http://127.0.0.1:18080 */
  readonly url: string;
  readonly port: number;
  readonly scenario: Scenario;
  close(): Promise<void>;
  /** The embedded MQTT broker, when the scenario has a `broker:` section; SendMessage publishes to it. */
  readonly broker?: MqttBroker;
}

// Both SDKs keep connections alive; a server that closes idle sockets first makes clients hit ECONNRESET.
const KEEP_ALIVE_TIMEOUT_MS = 120_000;

export async function startEmulator(opts: EmulatorOptions): Promise<Emulator> {
  const scenario = normalizeScenario(opts.scenario, 'scenario');
  const now = opts.now ?? Date.now;
  const rng = createRng(scenario.seed);

  const aliyunCreds = scenario.credentials.filter((c): c is AliyunCredential => c.provider === 'aliyun');
  const b = scenario.broker;
  const broker = b && (await MqttBroker.start({ host: b.host, port: b.port, credentials: aliyunCreds, instances: scenario.mqtt.instances, faults: { drop_rate: b.drop_rate, delay_ms: b.delay_ms }, devices: b.devices }));
  const mqttInstances = scenario.mqtt.instances.map((c) =>
    broker && c.status_from_broker ? new BrokerBackedMqttInstance(c, scenario.seed, broker) : new MqttInstanceState(c, scenario.seed),
  );
  const mongoInstances = scenario.mongodb.instances.map((c) => new MongoInstanceState(c, scenario.seed));
  const redisInstances = scenario.redis.instances.map((c) => new RedisInstanceState(c, scenario.seed));
  const onSendMessage: SendMessageHook | undefined = broker
    ? async (m) => {
        await broker.publish(m);
        await opts.onSendMessage?.(m);
      }
    : opts.onSendMessage;
  const mqtt = new MqttApis(mqttInstances, onSendMessage);
  const mongodb = new MongoApis(mongoInstances);
  const das = new DasRedisApis(redisInstances);

  const env: GatewayEnv = {
    now,
    stats: new StatsRecorder(now),
    limiters: new RateLimiterRegistry({ ...DEFAULT_QPS, ...scenario.rate_limits }),
    faults: new FaultInjector(scenario.latency, scenario.faults, rng),
    timers: new Timers(),
  };
  const aliyunCredentials = scenario.credentials.filter((c): c is AliyunCredential => c.provider === 'aliyun');
  const tencentCredentials = scenario.credentials.filter((c): c is TencentCredential => c.provider === 'tencentcloud');
  const aliyun = new AliyunGateway([...mqtt.apis(), ...das.apis()], new AliyunVerifier(aliyunCredentials, new NonceStore()), env);
  const tencent = new TencentGateway(mongodb.apis(), new TencentVerifier(tencentCredentials), env);

  const ops: AdminOps = {
    truth: () => collectTruth(now(), mqttInstances, mongoInstances, redisInstances),
    stats: () => env.stats.snapshot(),
    resetStats: () => env.stats.reset(),
    faults: () => env.faults.current(),
    setFaults: (faults) => env.faults.replace(parseFaults(faults, 'faults')),
    setOnline: (instanceId, clientId, online) => {
      const inst = mqtt.instance(instanceId);
      if (inst === undefined) throw new Error(`no MQTT instance "${instanceId}" in the scenario`);
      inst.setOnline(clientId, online);
    },
    sentMessages: () => mqtt.sentMessages(),
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { path, rawQuery } = splitUrl(req.url);
    const body = await readBody(req);
    if (path === BROKER_ADMIN_PREFIX || path.startsWith(`${BROKER_ADMIN_PREFIX}/`)) return handleBrokerAdmin(broker, req, res, path, body);
    if (path.startsWith(ADMIN_PREFIX)) return handleAdmin(ops, req, res, path, body);
    const authorization = req.headers.authorization;
    if (req.headers['x-tc-action'] !== undefined || (typeof authorization === 'string' && authorization.startsWith('TC3-'))) {
      return tencent.handle(req, res, path, rawQuery, body);
    }
    const params = parsePopParams(rawQuery, body, req.headers['content-type']);
    if (params.values.has('SecretId')) return tencent.rejectLegacy(req, res, params.values.get('Action'));
    return aliyun.handle(req, res, params);
  };

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (err instanceof BodyTooLargeError) return sendJson(res, 413, { error: err.message });
      process.stderr.write(`cloud-session-emulator: internal error on ${req.method} ${req.url}: ${(err as Error).stack}\n`);
      sendJson(res, 500, { Code: 'InternalError', Message: 'emulator internal error' });
    });
  });
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closed: Promise<void> | undefined;
  return {
    url: `http://${hostForUrl}:${address.port}`,
    port: address.port,
    scenario,
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        env.timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(() => broker?.close());
      return closed;
    },
    ...ops,
    broker,
  };
}
