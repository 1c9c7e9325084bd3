// ApsaraMQ for MQTT (onsmqtt 2020-04-20): QuerySessionByClientId, BatchQuerySessionByClientIds, SendMessage and
// ApplyToken.
import { randomBytes } from 'node:crypto';
import { ApiError, type AliyunApi, type AliyunCall } from '../../core/api';
import { createRng, hashInts, hashString } from '../../core/prng';
import { mqttError } from './errors';
import type { MqttInstanceState } from './fleet';
import { PartialAnswerer } from './partial-answers';
import { isValidResource, MAX_TOKEN_RESOURCES, MIN_TOKEN_VALIDITY_MS, tokenTypeOf, type TokenStore } from '../../broker/tokens';

export const ONSMQTT_VERSION = '2020-04-20';
const MAX_BATCH = 10;
const MAX_RECORDED_MESSAGES = 10_000;
// The documented limits of a field (the emulator's own statement of them, apart from the exporter's): a client ID and
// a topic at most 64 characters, a message at most 64 KB as sent.
const MAX_CLIENT_ID_CHARS = 64;
const MAX_TOPIC_CHARS = 64;
const MAX_PAYLOAD_BYTES = 64 * 1024;
/** The MQTT OpenAPI's own throttling answer (HTTP 403), not the gateway's Throttling.User. */
const THROTTLE_CODE = 'SystemOverFlow';

export interface SentMessage {
  instanceId: string;
  topic: string;
  payload: string;
  msgId: string;
  account: string;
  atMs: number;
}

/** Where an embedded broker can pick up published messages; a rejection makes SendMessage fail with SendMessageFailed. */
export type SendMessageHook = (m: { instanceId: string; topic: string; payload: string; msgId: string }) => void | Promise<void>;

const CLIENT_ID_LIST_RE = /^ClientIdList\.(\d+)$/;

function required(params: Map<string, string>, name: string): string {
  const v = params.get(name);
  if (v === undefined || v === '') throw new ApiError(`Missing${name}`, `${name} is mandatory for this action.`);
  return v;
}

function checkClientIdLength(id: string): void {
  if (id.length > MAX_CLIENT_ID_CHARS) throw mqttError('ParameterFieldCheckFailed', `ClientId is ${id.length} characters long; at most ${MAX_CLIENT_ID_CHARS} are allowed.`);
}

function clientIdList(params: Map<string, string>): { n: number; id: string }[] {
  const out: { n: number; id: string }[] = [];
  for (const [k, v] of params) {
    const m = CLIENT_ID_LIST_RE.exec(k);
    if (m !== null) out.push({ n: Number(m[1]), id: v });
  }
  return out.sort((a, b) => a.n - b.n);
}

export class MqttApis {
  private readonly instances = new Map<string, MqttInstanceState>();
  private readonly partial = new Map<string, PartialAnswerer>();
  private readonly sent: SentMessage[] = [];

  constructor(
    instances: MqttInstanceState[],
    seed: number,
    private readonly tokens: { store: TokenStore; maxValidityMs: number },
    private readonly onSendMessage?: SendMessageHook,
  ) {
    for (const i of instances) {
      this.instances.set(i.id, i);
      this.partial.set(i.id, new PartialAnswerer(i.config.partial_answers, createRng(hashInts(seed, hashString(`mqtt-partial/${i.id}`)))));
    }
  }

  instance(id: string): MqttInstanceState | undefined {
    return this.instances.get(id);
  }

  /** The instance's partial-answer settings and counts; undefined for an unknown instance. */
  partialAnswers(id: string): PartialAnswerer | undefined {
    return this.partial.get(id);
  }

  /** The most recent SendMessage calls, oldest first. */
  sentMessages(): SentMessage[] {
    return [...this.sent];
  }

  /** The instance a call names: unknown, another account's, or refused by policy are three documented answers. */
  private authorizedInstance(call: AliyunCall): { inst: MqttInstanceState; partial: PartialAnswerer } {
    const id = required(call.params, 'InstanceId');
    const inst = this.instances.get(id);
    if (inst === undefined) throw mqttError('MqttInstanceNotFound', `InstanceId: ${id}.`);
    if (inst.config.account !== undefined && inst.config.account !== call.account) throw mqttError('MqttOwnerCheckError');
    if (inst.config.permission_denied) throw mqttError('InstancePermissionCheckFailed');
    return { inst, partial: this.partial.get(id)! };
  }

  apis(): AliyunApi[] {
    return [
      {
        name: 'QuerySessionByClientId',
        version: ONSMQTT_VERSION,
        throttleCode: THROTTLE_CODE,
        handle: (call) => {
          const clientId = required(call.params, 'ClientId');
          checkClientIdLength(clientId);
          const { inst, partial } = this.authorizedInstance(call);
          if (partial.omits(clientId)) return { body: { RequestId: call.requestId } };
          return { body: { OnlineStatus: inst.isOnline(clientId, call.nowMs), RequestId: call.requestId } };
        },
      },
      {
        name: 'BatchQuerySessionByClientIds',
        version: ONSMQTT_VERSION,
        throttleCode: THROTTLE_CODE,
        batchSize: (params) => clientIdList(params).length,
        handle: (call) => {
          const list = clientIdList(call.params);
          if (list.length === 0) throw new ApiError('MissingClientIdList', 'ClientIdList is mandatory for this action.');
          const numbered = list.every((e, i) => e.n === i + 1);
          if (list.length > MAX_BATCH || !numbered) {
            throw new ApiError(
              'InvalidParameter.ClientIdList',
              `An error occurred while validating the parameter ClientIdList. At most ${MAX_BATCH} client IDs, numbered ClientIdList.1 to ClientIdList.${MAX_BATCH}, can be queried at a time.`,
            );
          }
          for (const e of list) checkClientIdLength(e.id);
          const { inst, partial } = this.authorizedInstance(call);
          if (!inst.config.batch_supported) throw mqttError('ApiNotSupport');
          const requested = list.map((e) => e.id);
          const answered = [...requested.filter((id) => !partial.omits(id)), ...partial.extras(requested)];
          return {
            body: {
              OnlineStatusList: answered.map((id) => ({ ClientId: id, OnlineStatus: inst.isOnline(id, call.nowMs) })),
              RequestId: call.requestId,
            },
          };
        },
      },
      {
        name: 'SendMessage',
        version: ONSMQTT_VERSION,
        throttleCode: THROTTLE_CODE,
        handle: async (call) => {
          const topic = required(call.params, 'MqttTopic');
          const payload = required(call.params, 'Payload');
          if (topic.length > MAX_TOPIC_CHARS) throw mqttError('ParameterFieldCheckFailed', `MqttTopic is ${topic.length} characters long; at most ${MAX_TOPIC_CHARS} are allowed.`);
          const bytes = Buffer.byteLength(payload, 'utf8');
          if (bytes > MAX_PAYLOAD_BYTES) throw mqttError('ParameterFieldCheckFailed', `Payload is ${bytes} bytes; at most ${MAX_PAYLOAD_BYTES} are allowed.`);
          const { inst } = this.authorizedInstance(call);
          const msgId = randomBytes(16).toString('hex').toUpperCase();
          this.sent.push({ instanceId: inst.id, topic, payload, msgId, account: call.account, atMs: call.nowMs });
          if (this.sent.length > MAX_RECORDED_MESSAGES) this.sent.splice(0, this.sent.length - MAX_RECORDED_MESSAGES);
          if (this.onSendMessage !== undefined) {
            try {
              await this.onSendMessage({ instanceId: inst.id, topic, payload, msgId });
            } catch {
              throw mqttError('SendMessageFailed');
            }
          }
          return { body: { MsgId: msgId, RequestId: call.requestId } };
        },
      },
      {
        name: 'ApplyToken',
        version: ONSMQTT_VERSION,
        throttleCode: THROTTLE_CODE,
        handle: (call) => {
          const resources = required(call.params, 'Resources').split(',');
          const actions = required(call.params, 'Actions');
          const expireText = required(call.params, 'ExpireTime');
          const type = tokenTypeOf(actions);
          if (type === undefined) throw mqttError('ParameterCheckFailed', `Actions must be R, W or R,W, not "${actions}".`);
          if (!/^\d{1,16}$/.test(expireText)) throw mqttError('ParameterCheckFailed', 'ExpireTime must be a timestamp in milliseconds.');
          const expireTime = Number(expireText);
          if (expireTime - call.nowMs < MIN_TOKEN_VALIDITY_MS) throw mqttError('ParameterCheckFailed', `ExpireTime must be at least ${MIN_TOKEN_VALIDITY_MS / 1000} seconds from now.`);
          if (resources.length > MAX_TOKEN_RESOURCES) throw mqttError('ParameterCheckFailed', `Resources names ${resources.length} topics; a token covers at most ${MAX_TOKEN_RESOURCES}.`);
          const bad = resources.find((r) => !isValidResource(r) || r.length > MAX_TOPIC_CHARS);
          if (bad !== undefined) throw mqttError('ParameterCheckFailed', `Resources: "${bad}" is not a topic (levels separated by /, + and # only as whole levels, # last, at most ${MAX_TOPIC_CHARS} characters).`);
          if (resources.some((r, i) => i > 0 && resources[i - 1]! >= r)) throw mqttError('ParameterCheckFailed', 'Resources must list distinct topics in alphabetical order.');
          const { inst } = this.authorizedInstance(call);
          // Beyond the longest validity the call still succeeds; the token lives that long (documented for 30 days).
          const expiresAt = Math.min(expireTime, call.nowMs + this.tokens.maxValidityMs);
          const { token } = this.tokens.store.issue({ instanceId: inst.id, accessKeyId: call.accessKeyId, resources, type, expiresAt });
          return { body: { RequestId: call.requestId, Token: token } };
        },
      },
    ];
  }
}
