// ApsaraMQ for MQTT (onsmqtt 2020-04-20): QuerySessionByClientId, BatchQuerySessionByClientIds and SendMessage.
import { randomBytes } from 'node:crypto';
import { ApiError, type AliyunApi, type AliyunCall } from '../../core/api';
import type { MqttInstanceState } from './fleet';

export const ONSMQTT_VERSION = '2020-04-20';
const MAX_BATCH = 10;
const MAX_RECORDED_MESSAGES = 10_000;

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
  private readonly sent: SentMessage[] = [];

  constructor(
    instances: MqttInstanceState[],
    private readonly onSendMessage?: SendMessageHook,
  ) {
    for (const i of instances) this.instances.set(i.id, i);
  }

  instance(id: string): MqttInstanceState | undefined {
    return this.instances.get(id);
  }

  /** The most recent SendMessage calls, oldest first. */
  sentMessages(): SentMessage[] {
    return [...this.sent];
  }

  private authorizedInstance(call: AliyunCall): MqttInstanceState {
    const id = required(call.params, 'InstanceId');
    const inst = this.instances.get(id);
    if (inst === undefined || (inst.config.account !== undefined && inst.config.account !== call.account)) {
      throw new ApiError(
        'InstancePermissionCheckFailed',
        'An error occurred while validating the permissions of the instance. Please verify the account that created the instance and its permissions settings.',
      );
    }
    return inst;
  }

  apis(): AliyunApi[] {
    return [
      {
        name: 'QuerySessionByClientId',
        version: ONSMQTT_VERSION,
        handle: (call) => {
          const clientId = required(call.params, 'ClientId');
          const inst = this.authorizedInstance(call);
          return { body: { OnlineStatus: inst.isOnline(clientId, call.nowMs), RequestId: call.requestId } };
        },
      },
      {
        name: 'BatchQuerySessionByClientIds',
        version: ONSMQTT_VERSION,
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
          const inst = this.authorizedInstance(call);
          if (!inst.config.batch_supported) throw new ApiError('ApiNotSupport', 'The specified API is not supported.', 404);
          return {
            body: {
              OnlineStatusList: list.map((e) => ({ ClientId: e.id, OnlineStatus: inst.isOnline(e.id, call.nowMs) })),
              RequestId: call.requestId,
            },
          };
        },
      },
      {
        name: 'SendMessage',
        version: ONSMQTT_VERSION,
        handle: async (call) => {
          const topic = required(call.params, 'MqttTopic');
          const payload = required(call.params, 'Payload');
          const inst = this.authorizedInstance(call);
          const msgId = randomBytes(16).toString('hex').toUpperCase();
          this.sent.push({ instanceId: inst.id, topic, payload, msgId, account: call.account, atMs: call.nowMs });
          if (this.sent.length > MAX_RECORDED_MESSAGES) this.sent.splice(0, this.sent.length - MAX_RECORDED_MESSAGES);
          if (this.onSendMessage !== undefined) {
            try {
              await this.onSendMessage({ instanceId: inst.id, topic, payload, msgId });
            } catch {
              throw new ApiError('SendMessageFailed', 'A storage exception occurred while sending the message. Please try again.', 417);
            }
          }
          return { body: { MsgId: msgId, RequestId: call.requestId } };
        },
      },
    ];
  }
}
