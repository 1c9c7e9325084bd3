// aliyun_mqtt_probe's configuration keys, its API, and what a probe message may hold.
import { z } from 'zod';
import type { AccountConfig, CommonJobConfig } from '../../config/schema';
import { durationMs } from '../../config/duration';
import { DEVICE_ID_PATTERN, deviceIdRoom, GROUP_ID_PATTERN, MAX_CLIENT_ID_LENGTH, MAX_TOPIC_LENGTH, MAX_MESSAGE_BYTES, mqttInstanceShape } from '../aliyun-mqtt/product';

export const SEND_API = 'SendMessage';
/** Token-mode sign-in of the subscriber: a token for its topic, applied for with the account's credentials. */
export const APPLY_TOKEN_API = 'ApplyToken';
/** ApplyToken's bounds of a token's validity (60 s to 30 days; beyond 30 days the cloud silently cuts it). */
const TOKEN_TTL_BOUNDS_MS = { min: 60_000, max: 30 * 86_400_000 };
const DEFAULT_TOKEN_TTL_MS = 3_600_000;
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
    /** Signature-mode keys for the MQTT connection; default: the account's access_key credentials. */
    access_key_id: z.string().min(1).optional(),
    access_key_secret: z.string().min(1).optional(),
    /** How the subscriber signs in; default: subscriberAuth(). */
    auth: z.enum(['signature', 'token'], { errorMap: () => ({ message: 'must be signature or token' }) }).optional(),
    /** Token mode: the validity asked of ApplyToken for each token. */
    token_ttl: durationMs
      .refine((ms) => ms >= TOKEN_TTL_BOUNDS_MS.min && ms <= TOKEN_TTL_BOUNDS_MS.max, {
        message: `must be between ${TOKEN_TTL_BOUNDS_MS.min / 1000}s and ${TOKEN_TTL_BOUNDS_MS.max / 86_400_000}d (the validity ApplyToken grants)`,
      })
      .optional(),
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
type SubscribeConfig = NonNullable<MqttProbeConfig['subscribe']>;

/**
 * How the subscriber signs in: `auth` when given; else Signature mode when a long-term AccessKey is at hand (the
 * subscriber's own keys, or the account's `access_key` credentials), Token mode otherwise (role, STS, instance
 * credentials: they cannot sign in the Signature way).
 */
export function subscriberAuth(s: SubscribeConfig, account: AccountConfig | undefined): 'signature' | 'token' {
  if (s.auth !== undefined) return s.auth;
  return s.access_key_id !== undefined || hasLongTermKey(account) ? 'signature' : 'token';
}

function hasLongTermKey(account: AccountConfig | undefined): boolean {
  return account?.provider === 'aliyun' && account.credentials.type === 'access_key';
}

/** The validity asked of ApplyToken for each token. */
export function tokenTtlMs(s: SubscribeConfig): number {
  return s.token_ttl ?? DEFAULT_TOKEN_TTL_MS;
}


/** The most UTF-8 bytes each placeholder can become (job, instance and topic are known from the config). */
function placeholderMaxBytes(cfg: MqttProbeConfig): Record<(typeof PLACEHOLDERS)[number], number> {
  const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
  return { probe_id: 40, sent_at: 24, sent_at_ms: 16, seq: 16, job: bytes(cfg.name), instance_id: bytes(cfg.instance_id), topic: bytes(cfg.topic), hostname: 255 };
}

/** Problems of the payload template and the subscriber's client ID and sign-in (checked once every key is valid). */
export function validateProbeConfig(cfg: MqttProbeConfig, accounts: ReadonlyMap<string, AccountConfig>): Array<[Array<string | number>, string]> {
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
  const account = accounts.get(cfg.account);
  // An unknown account is reported at `account`; the sign-in is judged against a known one.
  if (s && account) problems.push(...signInProblems(s, account));
  return problems;
}

function signInProblems(s: SubscribeConfig, account: AccountConfig): Array<[Array<string | number>, string]> {
  const mode = subscriberAuth(s, account);
  const problems: Array<[Array<string | number>, string]> = [];
  if (mode === 'signature' && s.access_key_id === undefined && !hasLongTermKey(account)) {
    problems.push([
      ['subscribe', 'auth'],
      `signature mode signs in with a long-term AccessKey, and account "${account.name}" has none (credentials type ${account.credentials.type}): give subscribe.access_key_id and subscribe.access_key_secret, or use auth: token`,
    ]);
  }
  if (mode === 'token' && s.access_key_id !== undefined) {
    problems.push([['subscribe', 'access_key_id'], "signature-mode keys: with auth: token the token is applied for with the account's credentials; remove them or use auth: signature"]);
  }
  if (mode === 'signature' && s.token_ttl !== undefined) {
    problems.push([['subscribe', 'token_ttl'], `used in token mode only, and this subscriber signs in the signature way (${s.auth === undefined ? 'the default with a long-term AccessKey' : 'auth: signature'}): remove it or set auth: token`]);
  }
  return problems;
}
