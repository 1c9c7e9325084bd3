// Job type aliyun_mqtt_probe: a SendMessage canary. Each run publishes one probe through the cloud API (billed, behind
// the account's SendMessage limiter); in end-to-end mode a long-lived MQTT subscriber confirms delivery and times it.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { z } from 'zod';
import { CloudError, labelSafeCode } from '../../cloud/errors';
import type { ApiCaller } from '../../cloud/api-client';
import type { CommonJobConfig } from '../../config/schema';
import { FamilyBuilder, HistogramState, joinLabels, renderLabels, type MetricFamily } from '../../metrics/family';
import { registerSecret } from '../../util/redact';
import { runDeadlineMs } from '../../util/schedule';
import { MQTT_API_VERSION, defaultMqttEndpoint } from '../aliyun-mqtt-sessions/job';
import { ProbeSubscriber, signaturePassword, signatureUsername } from './subscriber';
import { endpointUrl, regionId } from '../shared/endpoint';
import type { ApiUsage, Job, JobContext, JobRunResult, JobType, RunContext } from '../../core/job-type';

export const SEND_API = 'SendMessage';
/** Probe timeout when the config sets none (capped by the schedule interval). */
export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;
export const API_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const DELIVERY_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30];
export const DEFAULT_PAYLOAD = '{"probe":"cloud-session-exporter","probe_id":"{{probe_id}}","sent_at":"{{sent_at}}"}';
const PLACEHOLDERS = ['probe_id', 'sent_at', 'sent_at_ms', 'seq', 'job', 'instance_id', 'topic', 'hostname'] as const;
const PLACEHOLDER_RE = /\{\{\s*([A-Za-z_]+)\s*\}\}/g;
const MAX_CLIENT_ID = 64;
const REFRESH_NOTE = 'Updated by each probe run, not at scrape time.';

const mqttUrl = z
  .string()
  .url('must be a URL such as mqtts://post-cn-xxx.mqtt.aliyuncs.com:8883')
  .refine((u) => /^(mqtts?|tcp|ssl|tls|wss?):\/\//.test(u), { message: 'must start with mqtt://, mqtts://, tcp://, ssl://, ws:// or wss://' });

const subscribeShape = z
  .object({
    /** Default: mqtts://<instance_id>.mqtt.aliyuncs.com:8883 (the instance's public TLS endpoint). */
    url: mqttUrl.optional(),
    group_id: z.string().regex(/^GID_[A-Za-z0-9_-]+$/, 'a group ID such as GID_probe'),
    /** The device part of the client ID `<group_id>@@@<device_id>`; give each exporter replica its own. */
    device_id: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : -')
      .optional(),
    /** Credentials for the MQTT connection; default: the job's account. */
    access_key_id: z.string().min(1).optional(),
    access_key_secret: z.string().min(1).optional(),
  })
  .strict();

const shape = {
  account: z.string(),
  region: regionId,
  endpoint: endpointUrl.optional(),
  instance_id: z.string().min(1),
  /** A parent topic, optionally with sub-topics: `canary` or `canary/probe`. */
  topic: z
    .string()
    .max(128)
    .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_.-]+)*$/, 'a parent topic, optionally with sub-topics, e.g. canary/probe (no wildcards, no leading or trailing /)'),
  /** Text sent (Base64-encoded) as the message; placeholders {{probe_id}}, {{sent_at}}, ... */
  payload: z.string().min(1).max(64 * 1024).default(DEFAULT_PAYLOAD),
  subscribe: subscribeShape.optional(),
};

export type MqttProbeConfig = CommonJobConfig & z.infer<z.ZodObject<typeof shape>>;

export const aliyunMqttProbe: JobType<MqttProbeConfig> = {
  type: 'aliyun_mqtt_probe',
  provider: 'aliyun',
  schema: shape,
  apiQps: { [SEND_API]: 1000 },
  labelNames: ['region', 'instance_id', 'topic', 'code', 'le'],
  instanceIds: (cfg) => [cfg.instance_id],
  validate(cfg) {
    const problems: Array<[Array<string | number>, string]> = [];
    const used = new Set<string>();
    for (const [, name] of cfg.payload.matchAll(PLACEHOLDER_RE)) {
      if (!(PLACEHOLDERS as readonly string[]).includes(name)) problems.push([['payload'], `unknown placeholder {{${name}}} (known: ${PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')})`]);
      used.add(name);
    }
    if (!used.has('probe_id')) problems.push([['payload'], 'the payload must contain {{probe_id}}: received messages are matched to sent probes by it']);
    if (!used.has('sent_at') && !used.has('sent_at_ms')) problems.push([['payload'], 'the payload must contain {{sent_at}} or {{sent_at_ms}}: a probe message states when it was sent']);
    const s = cfg.subscribe;
    if (s?.device_id !== undefined && `${s.group_id}@@@${s.device_id}`.length > MAX_CLIENT_ID) {
      problems.push([['subscribe', 'device_id'], `the client ID <group_id>@@@<device_id> must not exceed ${MAX_CLIENT_ID} characters`]);
    }
    if (s && (s.access_key_id === undefined) !== (s.access_key_secret === undefined)) {
      problems.push([['subscribe'], 'give both access_key_id and access_key_secret, or neither (then the account\'s keys are used)']);
    }
    return problems;
  },
  plan(cfg): ApiUsage[] {
    return [{ account: cfg.account, api: SEND_API, callsPerRun: 1, basis: `1 probe message to ${cfg.topic} per run`, billed: true }];
  },
  create(cfg, ctx) {
    return new MqttProbeJob(cfg, ctx);
  },
};

interface PendingProbe {
  /** performance.now() just before SendMessage was called. */
  sentAt: number;
  received?: number;
  onReceived?: () => void;
}

class MqttProbeJob implements Job {
  readonly instanceIds: string[];
  private readonly caller: ApiCaller;
  private readonly timeoutMs: number;
  private readonly token = randomBytes(5).toString('hex');
  private readonly probeIdRe: RegExp;
  private readonly subscriber: ProbeSubscriber | undefined;
  private readonly pending = new Map<string, PendingProbe>();
  private seq = 0;
  private readonly labels: string;
  private readonly staticLabels: string;
  // Cumulative state across runs.
  private readonly apiHistogram = new HistogramState(API_BUCKETS);
  private readonly deliveryHistogram = new HistogramState(DELIVERY_BUCKETS);
  private lastSuccess = 0;
  private lastApiSeconds: number | undefined;
  private sent = 0;
  private received = 0;
  private lost = 0;
  private readonly errors = new Map<string, number>();
  private subscriberLossesSeen = 0;

  constructor(
    private readonly cfg: MqttProbeConfig,
    private readonly ctx: JobContext,
  ) {
    this.instanceIds = [cfg.instance_id];
    this.caller = ctx.accounts.caller(cfg.account, cfg.endpoint ?? defaultMqttEndpoint(cfg.region), MQTT_API_VERSION);
    this.timeoutMs = cfg.timeout ?? Math.min(DEFAULT_PROBE_TIMEOUT_MS, runDeadlineMs(cfg));
    this.probeIdRe = new RegExp(`cse-${this.token}-(\\d+)`);
    this.labels = renderLabels({ region: cfg.region, instance_id: cfg.instance_id, topic: cfg.topic });
    this.staticLabels = renderLabels(ctx.labels);
    if (cfg.subscribe) {
      const s = cfg.subscribe;
      const account = ctx.accounts.account(cfg.account);
      const keyId = s.access_key_id ?? (account.provider === 'aliyun' ? account.access_key_id : '');
      const secret = s.access_key_secret ?? (account.provider === 'aliyun' ? account.access_key_secret : '');
      registerSecret(s.access_key_id);
      registerSecret(s.access_key_secret);
      const clientId = `${s.group_id}@@@${s.device_id ?? defaultDeviceId(s.group_id)}`;
      const password = signaturePassword(secret, clientId);
      registerSecret(password);
      this.subscriber = new ProbeSubscriber({
        url: s.url ?? `mqtts://${cfg.instance_id}.mqtt.aliyuncs.com:8883`,
        clientId,
        username: signatureUsername(keyId, cfg.instance_id),
        password,
        topic: cfg.topic,
        logger: ctx.logger,
        onMessage: (_topic, payload) => this.onMessage(payload),
      });
      for (const code of ['SubscriberDisconnected', 'SubscriberAuthFailed']) this.errors.set(code, 0);
    }
  }

  async run(run: RunContext): Promise<JobRunResult> {
    const outcome = await this.probe(run);
    this.lastSuccess = outcome.ok ? 1 : 0;
    if (!outcome.ok) this.ctx.logger.warn({ instance_id: this.cfg.instance_id, topic: this.cfg.topic, codes: outcome.codes, err: outcome.error }, 'probe failed');
    // The probe's own metrics carry its verdict (success 0), so the run itself always publishes them.
    return { targets: [{ instanceId: this.cfg.instance_id, ok: true, families: this.render() }] };
  }

  async close(): Promise<void> {
    for (const p of this.pending.values()) p.onReceived?.();
    this.pending.clear();
    await this.subscriber?.close();
  }

  private async probe(run: RunContext): Promise<{ ok: boolean; codes: string[]; error?: Error }> {
    const codes: string[] = [];
    const fail = (code: string) => {
      codes.push(code);
      this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
    };
    const sub = this.subscriber;
    let subscriberOk = true;
    let lossesAtStart = 0;
    if (sub) {
      const firstConnect = !sub.hasEverBeenReady;
      sub.start();
      // The first connection, or an attempt already under way, is waited for; a subscriber that is down is a failed probe.
      if (!sub.ready && (firstConnect || sub.connecting)) await sub.waitReady(Math.min(this.timeoutMs, run.deadline - Date.now()) / 2, run.signal);
      lossesAtStart = sub.losses;
      if (!sub.ready) {
        subscriberOk = false;
        fail(sub.problem);
      } else if (lossesAtStart !== this.subscriberLossesSeen) {
        // Dropped and recovered between two runs: counted, but this probe can still succeed.
        fail('SubscriberDisconnected');
      }
      this.subscriberLossesSeen = lossesAtStart;
    }

    const seq = ++this.seq;
    const probeId = `cse-${this.token}-${seq}`;
    const sentAtMs = Date.now();
    const text = this.renderPayload(probeId, seq, sentAtMs);
    const payload = Buffer.from(text, 'utf8').toString('base64');
    const entry: PendingProbe = { sentAt: performance.now() };
    if (sub) this.pending.set(probeId, entry);

    let apiError: Error | undefined;
    try {
      await this.caller.call(SEND_API, { InstanceId: this.cfg.instance_id, MqttTopic: this.cfg.topic, Payload: payload }, {
        deadline: run.deadline,
        signal: run.signal,
        target: this.cfg.instance_id,
        parse: parseSendMessageResponse,
        // One message per run: a retry would bill a second message and hide the failure the canary exists to see.
        retry: { maxAttempts: 1 },
      });
    } catch (err) {
      apiError = err as Error;
    }
    const apiSeconds = (performance.now() - entry.sentAt) / 1000;
    this.lastApiSeconds = apiSeconds;
    this.apiHistogram.observe(apiSeconds);
    if (apiError) {
      this.pending.delete(probeId);
      fail(apiError instanceof CloudError ? apiError.code : labelSafeCode((apiError as { code?: string }).code ?? 'Unknown'));
      return { ok: false, codes, error: apiError };
    }
    this.sent++;
    if (!sub) return { ok: true, codes };

    const untilPerf = Math.min(entry.sentAt + this.timeoutMs, performance.now() + (run.deadline - Date.now()));
    const received = await this.waitForDelivery(entry, untilPerf, run.signal);
    this.pending.delete(probeId);
    if (received) {
      this.received++;
      this.deliveryHistogram.observe((entry.received! - entry.sentAt) / 1000);
    } else {
      this.lost++;
    }
    // A connection that dropped during the run fails the probe, even if the message made it after a reconnect.
    if (subscriberOk && (sub.losses !== lossesAtStart || !sub.ready)) {
      subscriberOk = false;
      fail(sub.problem);
    }
    this.subscriberLossesSeen = sub.losses;
    return { ok: received && subscriberOk, codes };
  }

  /** Resolves true once the probe arrives, false at `untilPerf` (a performance.now() time) or on abort. */
  private waitForDelivery(entry: PendingProbe, untilPerf: number, signal: AbortSignal): Promise<boolean> {
    if (entry.received !== undefined) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        entry.onReceived = undefined;
        resolve(entry.received !== undefined);
      };
      const timer = setTimeout(done, Math.max(0, untilPerf - performance.now()));
      signal.addEventListener('abort', done, { once: true });
      entry.onReceived = done;
    });
  }

  private onMessage(payload: Buffer): void {
    const at = performance.now();
    const probeId = this.findProbeId(payload);
    if (probeId === undefined) return;
    const entry = this.pending.get(probeId);
    // Late arrivals (already counted lost) and QoS 1 duplicates find no pending entry and are ignored.
    if (!entry || entry.received !== undefined) {
      this.ctx.logger.debug({ probe_id: probeId }, 'ignoring a probe message that is late or a duplicate');
      return;
    }
    entry.received = at;
    entry.onReceived?.();
  }

  /** The probe ID in the message: the payload is Base64 as sent, but a broker or bridge may have decoded it. */
  private findProbeId(payload: Buffer): string | undefined {
    const raw = payload.toString('utf8');
    const candidates = [raw];
    const trimmed = raw.trim();
    if (/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) candidates.unshift(Buffer.from(trimmed, 'base64').toString('utf8'));
    for (const text of candidates) {
      const m = this.probeIdRe.exec(text);
      if (m) return m[0];
    }
    return undefined;
  }

  private renderPayload(probeId: string, seq: number, sentAtMs: number): string {
    const values: Record<(typeof PLACEHOLDERS)[number], string> = {
      probe_id: probeId,
      sent_at: new Date(sentAtMs).toISOString(),
      sent_at_ms: String(sentAtMs),
      seq: String(seq),
      job: this.ctx.jobName,
      instance_id: this.cfg.instance_id,
      topic: this.cfg.topic,
      hostname: os.hostname(),
    };
    return this.cfg.payload.replace(PLACEHOLDER_RE, (m, name: string) => (name in values ? values[name as keyof typeof values] : m));
  }

  private render(): MetricFamily[] {
    const l = joinLabels(this.labels, this.staticLabels);
    const e2e = this.subscriber !== undefined;
    const families: MetricFamily[] = [];
    const gauge = (name: string, help: string, value: number) => families.push(new FamilyBuilder(name, help, 'gauge').sample(l, value).build());
    const counter = (name: string, help: string, value: number) => families.push(new FamilyBuilder(name, help, 'counter').sample(l, value).build());

    gauge('aliyun_mqtt_probe_success', `1 if the last probe was published (and, in end-to-end mode, received back within its timeout), else 0. ${REFRESH_NOTE}`, this.lastSuccess);
    if (this.lastApiSeconds !== undefined) gauge('aliyun_mqtt_probe_api_duration_seconds', `SendMessage latency of the last probe. ${REFRESH_NOTE}`, this.lastApiSeconds);
    const h = this.apiHistogram;
    families.push(new FamilyBuilder('aliyun_mqtt_probe_api_request_duration_seconds', `SendMessage latency of the probes. ${REFRESH_NOTE}`, 'histogram').histogram(l, h.bounds, h.counts, h.sum, h.count).build());
    if (e2e) {
      const d = this.deliveryHistogram;
      families.push(new FamilyBuilder('aliyun_mqtt_probe_delivery_duration_seconds', `Time from sending a probe to receiving it on the MQTT subscription. ${REFRESH_NOTE}`, 'histogram').histogram(l, d.bounds, d.counts, d.sum, d.count).build());
    }
    counter('aliyun_mqtt_probe_sent_total', `Probes published with SendMessage. ${REFRESH_NOTE}`, this.sent);
    if (e2e) {
      counter('aliyun_mqtt_probe_received_total', `Probes received back on the MQTT subscription within the timeout. ${REFRESH_NOTE}`, this.received);
      counter('aliyun_mqtt_probe_lost_total', `Published probes not received within the probe's timeout. ${REFRESH_NOTE}`, this.lost);
    }
    const errors = new FamilyBuilder('aliyun_mqtt_probe_errors_total', `Probe errors by code: the cloud's error code, Timeout, SubscriberDisconnected, SubscriberAuthFailed, ... ${REFRESH_NOTE}`, 'counter');
    for (const [code, n] of [...this.errors].sort((a, b) => (a[0] < b[0] ? -1 : 1))) errors.sample(joinLabels(this.labels, renderLabels({ code }), this.staticLabels), n);
    families.push(errors.build());
    if (e2e) gauge('aliyun_mqtt_probe_subscriber_connected', `1 while the probe's MQTT subscriber is connected and subscribed, as of the last run. ${REFRESH_NOTE}`, this.subscriber!.ready ? 1 : 0);
    return families;
  }
}

export function parseSendMessageResponse(body: unknown): string {
  const msgId = (body as { MsgId?: unknown })?.MsgId;
  if (typeof msgId !== 'string' || !msgId) throw new Error('MsgId is missing');
  return msgId;
}

/** `cse-probe-<hostname>`, shortened so that the client ID stays within ApsaraMQ's 64 characters. */
function defaultDeviceId(groupId: string): string {
  const room = Math.max(1, MAX_CLIENT_ID - groupId.length - '@@@cse-probe-'.length);
  const host = os.hostname().replace(/[^A-Za-z0-9_.:-]/g, '-').slice(0, room) || 'host';
  return `cse-probe-${host}`;
}
