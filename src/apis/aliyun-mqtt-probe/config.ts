// aliyun_mqtt_probe's configuration keys, its API, and what a probe message may hold.
import { z } from 'zod';
import type { CommonJobConfig } from '../../config/schema';
import { DEVICE_ID_PATTERN, deviceIdRoom, GROUP_ID_PATTERN, MAX_CLIENT_ID_LENGTH, MAX_TOPIC_LENGTH, MAX_MESSAGE_BYTES, mqttInstanceShape } from '../aliyun-mqtt/product';

export const SEND_API = 'SendMessage';
/** Probe timeout when the config sets none (capped by the schedule interval). */
export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;
export const API_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const DELIVERY_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30];
const DEFAULT_PAYLOAD = '{"probe":"cloud-session-exporter","probe_id":"{{probe_id}}","sent_at":"{{sent_at}}"}';
export const PLACEHOLDERS = ['probe_id', 'sent_at', 'sent_at_ms', 'seq', 'job', 'instance_id', 'topic', 'hostname'] as const;
export const PLACEHOLDER_RE = /\{\{\s*([A-Za-z_]+)\s*\}\}/g;

const mqttUrl = z
  .string()
  .url('must be a URL such as mqtts://post-cn-xxx.mqtt.aliyuncs.com:8883')
  .refine((u) => /^(mqtts?|tcp|ssl|tls|wss?):\/\//.test(u), { message: 'must start with mqtt://, mqtts://, tcp://, ssl://, ws:// or wss://' });

const subscribeShape = z
  .object({
    /** Default: mqtts://<instance_id>.mqtt.aliyuncs.com:8883 (the instance's public TLS endpoint). */
    url: mqttUrl.optional(),
    group_id: z.string().regex(GROUP_ID_PATTERN, 'a group ID such as GID_probe or GID-probe (GID_ or GID-, then letters, digits, - or _, 7-64 characters)'),
    /** The device part of the client ID `<group_id>@@@<device_id>`; give each exporter replica its own. */
    device_id: z.string().regex(DEVICE_ID_PATTERN, 'letters, digits and _ . : -').optional(),
    /** Credentials for the MQTT connection; default: the job's account. */
    access_key_id: z.string().min(1).optional(),
    access_key_secret: z.string().min(1).optional(),
  })
  .strict();

export const shape = {
  ...mqttInstanceShape,
  /** A parent topic, optionally with sub-topics: `canary` or `canary/probe`. */
  topic: z
    .string()
    .max(MAX_TOPIC_LENGTH, `at most ${MAX_TOPIC_LENGTH} characters, sub-topics included (ApsaraMQ's limit)`)
    .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_.-]+)*$/, 'a parent topic, optionally with sub-topics, e.g. canary/probe (no wildcards, no leading or trailing /)'),
  /** Text sent (Base64-encoded) as the message; placeholders {{probe_id}}, {{sent_at}}, ... */
  payload: z.string().min(1).max(MAX_MESSAGE_BYTES).default(DEFAULT_PAYLOAD),
  subscribe: subscribeShape.optional(),
};

export type MqttProbeConfig = CommonJobConfig & z.infer<z.ZodObject<typeof shape>>;


/** The most UTF-8 bytes each placeholder can become (job, instance and topic are known from the config). */
function placeholderMaxBytes(cfg: MqttProbeConfig): Record<(typeof PLACEHOLDERS)[number], number> {
  const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
  return { probe_id: 40, sent_at: 24, sent_at_ms: 16, seq: 16, job: bytes(cfg.name), instance_id: bytes(cfg.instance_id), topic: bytes(cfg.topic), hostname: 255 };
}

/** Problems of the payload template and the subscriber's client ID (checked once every key is valid). */
export function validateProbeConfig(cfg: MqttProbeConfig): Array<[Array<string | number>, string]> {
  const problems: Array<[Array<string | number>, string]> = [];
  const used = new Set<string>();
  const max = placeholderMaxBytes(cfg);
  // The most bytes the rendered payload can have: each placeholder replaced by its longest value.
  let longest = Buffer.byteLength(cfg.payload, 'utf8');
  for (const [whole, name] of cfg.payload.matchAll(PLACEHOLDER_RE)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(name)) problems.push([['payload'], `unknown placeholder {{${name}}} (known: ${PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')})`]);
    else longest += max[name as keyof typeof max] - Buffer.byteLength(whole, 'utf8');
    used.add(name);
  }
  if (!used.has('probe_id')) problems.push([['payload'], 'the payload must contain {{probe_id}}: received messages are matched to sent probes by it']);
  if (!used.has('sent_at') && !used.has('sent_at_ms')) problems.push([['payload'], 'the payload must contain {{sent_at}} or {{sent_at_ms}}: a probe message states when it was sent']);
  // The message is sent Base64-encoded, and ApsaraMQ's limit applies to what is sent.
  const base64 = 4 * Math.ceil(longest / 3);
  if (base64 > MAX_MESSAGE_BYTES) problems.push([['payload'], `the payload can reach ${base64} bytes once Base64-encoded, above ApsaraMQ's ${MAX_MESSAGE_BYTES}-byte message limit`]);
  const s = cfg.subscribe;
  if (s?.device_id !== undefined && s.device_id.length > deviceIdRoom(s.group_id)) {
    problems.push([['subscribe', 'device_id'], `the client ID <group_id>@@@<device_id> must not exceed ${MAX_CLIENT_ID_LENGTH} characters`]);
  }
  if (s && (s.access_key_id === undefined) !== (s.access_key_secret === undefined)) {
    problems.push([['subscribe'], "give both access_key_id and access_key_secret, or neither (then the account's keys are used)"]);
  }
  return problems;
}
