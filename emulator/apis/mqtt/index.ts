// Emulated ApsaraMQ for MQTT (onsmqtt 2020-04-20): the session queries and SendMessage over simulated fleets (or the
// embedded broker's real connections), ApplyToken with the tokens its broker checks, the `mqtt:` and `broker:`
// scenario keys, and its admin routes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MqttBroker } from '../../broker/broker';
import { TokenStore } from '../../broker/tokens';
import { BROKER_ADMIN_PREFIX, handleBrokerAdmin } from '../../broker/admin';
import type { EmulatedProduct, ProductRuntime } from '../../core/api';
import { sendJson } from '../../core/http-util';
import { describeZodIssues } from '../../core/scenario';
import { BrokerBackedMqttInstance } from './broker-presence';
import { MqttInstanceState } from './fleet';
import { MQTT_ERRORS } from './errors';
import { MqttApis, ONSMQTT_VERSION, type SendMessageHook, type SentMessage } from './handlers';
import type { PartialAnswerer } from './partial-answers';
import { checkMqttScenario, MQTT_SCENARIO, mqttSections, PartialAnswersSchema, type PartialAnswers } from './scenario';

/** What the MQTT product offers beyond the common runtime (tests reach it through mqttOf()). */
export interface MqttRuntime extends ProductRuntime {
  /** The embedded broker, when the scenario has a `broker:` section; SendMessage publishes to it. */
  readonly broker?: MqttBroker;
  /** The most recent SendMessage calls, oldest first. */
  sentMessages(): SentMessage[];
  /** Pins a device's status until the emulator stops. */
  setOnline(instanceId: string, clientId: string, online: boolean): void;
  /** Replaces an instance's `partial_answers` (keys left out take their defaults). */
  setPartialAnswers(instanceId: string, partial: Partial<PartialAnswers>): void;
  /** An instance's `partial_answers`, and how many IDs its answers left out and added so far. */
  partialAnswers(instanceId: string): ReturnType<PartialAnswerer['state']>;
  /** Tokens ApplyToken issued. */
  readonly tokens: TokenStore;
  /** Revokes every token of an instance; connections holding one are told and closed (broker.revokeTokens). */
  revokeTokens(instanceId: string): number;
}

const MQTT_TRUTH_KEY = 'mqtt';

export const mqttProduct: EmulatedProduct = {
  provider: 'aliyun',
  truthKey: MQTT_TRUTH_KEY,
  // "Outbound QPS of a single IP address. If this limit is exceeded, the IP address is blocked" (QPS limits page).
  sourceIpQps: 300,
  apis: [
    { name: 'QuerySessionByClientId', version: ONSMQTT_VERSION, qps: 500 },
    { name: 'BatchQuerySessionByClientIds', version: ONSMQTT_VERSION, qps: 100 },
    { name: 'SendMessage', version: ONSMQTT_VERSION, qps: 1000 },
    { name: 'ApplyToken', version: ONSMQTT_VERSION, qps: 100 },
  ],
  scenario: MQTT_SCENARIO,
  errors: MQTT_ERRORS,
  check: checkMqttScenario,
  async start({ scenario, credentials, hooks, now }): Promise<MqttRuntime> {
    const { mqtt, broker: b } = mqttSections(scenario);
    const tokens = new TokenStore(now);
    const broker =
      b &&
      (await MqttBroker.start({ host: b.host, port: b.port, credentials: credentials.aliyun, instances: mqtt.instances, tokens, faults: { drop_rate: b.drop_rate, delay_ms: b.delay_ms }, devices: b.devices, now }));
    const instances = mqtt.instances.map((c) => (broker && c.status_from_broker ? new BrokerBackedMqttInstance(c, scenario.seed, broker) : new MqttInstanceState(c, scenario.seed)));
    const hook = hooks.onSendMessage as SendMessageHook | undefined;
    const onSendMessage: SendMessageHook | undefined = broker
      ? async (m) => {
          await broker.publish(m);
          await hook?.(m);
        }
      : hook;
    const apis = new MqttApis(instances, scenario.seed, { store: tokens, maxValidityMs: mqtt.token_max_validity * 1000 }, onSendMessage);
    const setOnline = (instanceId: string, clientId: string, online: boolean) => {
      const inst = apis.instance(instanceId);
      if (inst === undefined) throw new Error(`no MQTT instance "${instanceId}" in the scenario`);
      inst.setOnline(clientId, online);
    };
    const partialOf = (instanceId: string): PartialAnswerer => {
      const p = apis.partialAnswers(instanceId);
      if (p === undefined) throw new Error(`no MQTT instance "${instanceId}" in the scenario`);
      return p;
    };
    const setPartialAnswers = (instanceId: string, partial: unknown) => {
      const parsed = PartialAnswersSchema.safeParse(partial);
      if (!parsed.success) throw new Error(describeZodIssues(parsed.error).join('; '));
      partialOf(instanceId).replace(parsed.data);
    };
    const partialAnswers = (instanceId: string) => partialOf(instanceId).state();
    return {
      aliyun: apis.apis(),
      broker,
      sentMessages: () => apis.sentMessages(),
      setOnline,
      setPartialAnswers,
      partialAnswers,
      tokens,
      revokeTokens: (instanceId) => broker?.revokeTokens(instanceId) ?? tokens.revokeInstance(instanceId),
      truth: (nowMs) => Object.fromEntries(instances.map((i) => [i.id, i.truth(nowMs)])),
      admin: (req, res, path, body) => admin(req, res, path, body, broker, apis, { setOnline, setPartialAnswers, partialAnswers }),
      close: async () => broker?.close(),
    };
  },
};

/** The MQTT runtime of an emulator (its typed extras: broker, sent messages, pinned devices). */
export function mqttOf(emu: { runtime(truthKey: string): ProductRuntime | undefined }): MqttRuntime {
  return emu.runtime(MQTT_TRUTH_KEY) as MqttRuntime;
}

/**
 * GET  /_emulator/messages                            recent SendMessage calls
 * GET  /_emulator/mqtt/<instance>/partial_answers     the instance's partial_answers and the IDs left out and added
 * POST /_emulator/mqtt/<instance>/partial_answers     replace them (a client ID always holds "@@@": no clash below)
 * POST /_emulator/mqtt/<instance>/<client>            {"online": true|false}: pin a device's status
 * ...  /_emulator/broker[/...]                        the embedded broker (broker/admin.ts)
 */
async function admin(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  body: Buffer,
  broker: MqttBroker | undefined,
  apis: MqttApis,
  ops: Pick<MqttRuntime, 'setOnline' | 'setPartialAnswers' | 'partialAnswers'>,
): Promise<boolean> {
  if (path === BROKER_ADMIN_PREFIX || path.startsWith(`${BROKER_ADMIN_PREFIX}/`)) {
    await handleBrokerAdmin(broker, req, res, path, body);
    return true;
  }
  if (req.method === 'GET' && path === '/_emulator/messages') {
    sendJson(res, 200, apis.sentMessages());
    return true;
  }
  const partial = /^\/_emulator\/mqtt\/([^/]+)\/partial_answers$/.exec(path);
  if (partial !== null && (req.method === 'GET' || req.method === 'POST')) {
    const instanceId = decodeURIComponent(partial[1] as string);
    try {
      if (req.method === 'POST') ops.setPartialAnswers(instanceId, body.length === 0 ? {} : JSON.parse(body.toString('utf8')));
      sendJson(res, 200, ops.partialAnswers(instanceId));
    } catch (err) {
      sendJson(res, 400, { error: (err as Error).message });
    }
    return true;
  }
  const flip = /^\/_emulator\/mqtt\/([^/]+)\/([^/]+)$/.exec(path);
  if (req.method !== 'POST' || flip === null) return false;
  const parsed = (body.length === 0 ? undefined : JSON.parse(body.toString('utf8'))) as { online?: unknown } | undefined;
  if (typeof parsed?.online !== 'boolean') sendJson(res, 400, { error: 'body must be {"online": true|false}' });
  else {
    try {
      ops.setOnline(decodeURIComponent(flip[1] as string), decodeURIComponent(flip[2] as string), parsed.online);
      sendJson(res, 200, { ok: true });
    } catch (err) {
      sendJson(res, 400, { error: (err as Error).message });
    }
  }
  return true;
}
