// Emulated ApsaraMQ for MQTT (onsmqtt 2020-04-20): the session queries and SendMessage over simulated fleets (or the
// embedded broker's real connections), the `mqtt:` and `broker:` scenario keys, and its admin routes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MqttBroker } from '../../broker/broker';
import { BROKER_ADMIN_PREFIX, handleBrokerAdmin } from '../../broker/admin';
import type { EmulatedProduct, ProductRuntime } from '../../core/api';
import { sendJson } from '../../core/http-util';
import { BrokerBackedMqttInstance } from './broker-presence';
import { MqttInstanceState } from './fleet';
import { MqttApis, ONSMQTT_VERSION, type SendMessageHook, type SentMessage } from './handlers';
import { checkMqttScenario, MQTT_SCENARIO, mqttSections } from './scenario';

/** What the MQTT product offers beyond the common runtime (tests reach it through mqttOf()). */
export interface MqttRuntime extends ProductRuntime {
  /** The embedded broker, when the scenario has a `broker:` section; SendMessage publishes to it. */
  readonly broker?: MqttBroker;
  /** The most recent SendMessage calls, oldest first. */
  sentMessages(): SentMessage[];
  /** Pins a device's status until the emulator stops. */
  setOnline(instanceId: string, clientId: string, online: boolean): void;
}

const MQTT_TRUTH_KEY = 'mqtt';

export const mqttProduct: EmulatedProduct = {
  provider: 'aliyun',
  truthKey: MQTT_TRUTH_KEY,
  apis: [
    { name: 'QuerySessionByClientId', version: ONSMQTT_VERSION, qps: 500 },
    { name: 'BatchQuerySessionByClientIds', version: ONSMQTT_VERSION, qps: 100 },
    { name: 'SendMessage', version: ONSMQTT_VERSION, qps: 1000 },
  ],
  scenario: MQTT_SCENARIO,
  errors: {
  SendMessageFailed: { status: 417, message: 'A storage exception occurred while sending the message. Please try again.' },
  ApiNotSupport: { status: 404, message: 'The specified API is not supported.' },
  CheckAccountInfoFailed: { status: 400, message: 'An error occurred while checking the account information by the STS token.' },
  InstancePermissionCheckFailed: {
    status: 400,
    message: 'An error occurred while validating the permissions of the instance. Please verify the account that created the instance and its permissions settings.',
  },
  ParameterCheckFailed: { status: 400, message: 'An error occurred while validating the parameters. The parameters may be missing or invalid.' },
  PermissionCheckFailed: {
    status: 400,
    message: 'An error occurred while validating the resource permissions. Please check the account that created the instance, topic, and GroupId, and check their permission settings.',
  },
  },
  check: checkMqttScenario,
  async start({ scenario, credentials, hooks }): Promise<MqttRuntime> {
    const { mqtt, broker: b } = mqttSections(scenario);
    const broker = b && (await MqttBroker.start({ host: b.host, port: b.port, credentials: credentials.aliyun, instances: mqtt.instances, faults: { drop_rate: b.drop_rate, delay_ms: b.delay_ms }, devices: b.devices }));
    const instances = mqtt.instances.map((c) => (broker && c.status_from_broker ? new BrokerBackedMqttInstance(c, scenario.seed, broker) : new MqttInstanceState(c, scenario.seed)));
    const hook = hooks.onSendMessage as SendMessageHook | undefined;
    const onSendMessage: SendMessageHook | undefined = broker
      ? async (m) => {
          await broker.publish(m);
          await hook?.(m);
        }
      : hook;
    const apis = new MqttApis(instances, onSendMessage);
    const setOnline = (instanceId: string, clientId: string, online: boolean) => {
      const inst = apis.instance(instanceId);
      if (inst === undefined) throw new Error(`no MQTT instance "${instanceId}" in the scenario`);
      inst.setOnline(clientId, online);
    };
    return {
      aliyun: apis.apis(),
      broker,
      sentMessages: () => apis.sentMessages(),
      setOnline,
      truth: (nowMs) => Object.fromEntries(instances.map((i) => [i.id, i.truth(nowMs)])),
      admin: (req, res, path, body) => admin(req, res, path, body, broker, apis, setOnline),
      close: async () => broker?.close(),
    };
  },
};

/** The MQTT runtime of an emulator (its typed extras: broker, sent messages, pinned devices). */
export function mqttOf(emu: { runtime(truthKey: string): ProductRuntime | undefined }): MqttRuntime {
  return emu.runtime(MQTT_TRUTH_KEY) as MqttRuntime;
}

/**
 * GET  /_emulator/messages                          recent SendMessage calls
 * POST /_emulator/mqtt/<instance>/<client>          {"online": true|false}: pin a device's status
 * ...  /_emulator/broker[/...]                      the embedded broker (broker/admin.ts)
 */
async function admin(req: IncomingMessage, res: ServerResponse, path: string, body: Buffer, broker: MqttBroker | undefined, apis: MqttApis, setOnline: MqttRuntime['setOnline']): Promise<boolean> {
  if (path === BROKER_ADMIN_PREFIX || path.startsWith(`${BROKER_ADMIN_PREFIX}/`)) {
    await handleBrokerAdmin(broker, req, res, path, body);
    return true;
  }
  if (req.method === 'GET' && path === '/_emulator/messages') {
    sendJson(res, 200, apis.sentMessages());
    return true;
  }
  const flip = /^\/_emulator\/mqtt\/([^/]+)\/([^/]+)$/.exec(path);
  if (req.method !== 'POST' || flip === null) return false;
  const parsed = (body.length === 0 ? undefined : JSON.parse(body.toString('utf8'))) as { online?: unknown } | undefined;
  if (typeof parsed?.online !== 'boolean') sendJson(res, 400, { error: 'body must be {"online": true|false}' });
  else {
    try {
      setOnline(decodeURIComponent(flip[1] as string), decodeURIComponent(flip[2] as string), parsed.online);
      sendJson(res, 200, { ok: true });
    } catch (err) {
      sendJson(res, 400, { error: (err as Error).message });
    }
  }
  return true;
}
