// One aliyun_mqtt_probe job: each run publishes one probe with SendMessage (never retried: a retry would bill a second
// message and hide the failure the canary exists to see) and, in end-to-end mode, waits for it on the subscription.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { errorCodeOf } from '../../cloud/errors';
import type { ApiCaller } from '../../cloud/client';
import { DeclaredFamilyBuilder, singleSample } from '../../metrics/declare';
import { HistogramState, type MetricFamily } from '../../metrics/family';
import { longTermAccessKey } from '../../cloud/credentials/aliyun';
import { registerSecret } from '../../util/redact';
import { runDeadlineMs } from '../../util/schedule';
import type { Job, JobContext, JobHandover, JobRunResult, JobStatus, RunContext } from '../../core/job-type';
import { clientIdOf, deviceIdRoom, mqttEndpoint, MQTT_API_VERSION } from '../aliyun-mqtt/product';
import { API_BUCKETS, DEFAULT_PROBE_TIMEOUT_MS, DELIVERY_BUCKETS, PLACEHOLDER_RE, PLACEHOLDERS, SEND_API, subscriberAuth, tokenTtlMs, type MqttProbeConfig } from './config';
import { API_DURATION, API_REQUEST_DURATION, DELIVERY_DURATION, ERRORS, LOST, PROBE_SUCCESS, RECEIVED, SENT, SUBSCRIBER_CONNECTED } from './families';
import { ProbeSubscriber, signatureSignIn, type SignIn } from './subscriber';
import { TokenSignIn } from './token';
import { jsonHandover } from '../shared/json-handover';

/** Why an end-to-end probe failed, in the log: each reason with its words, and the error codes it counted. */
type FailureReason = 'subscriber_not_connected' | 'subscriber_dropped' | 'lost';

class ProbeFailed extends Error {
  constructor(
    readonly reasons: FailureReason[],
    readonly codes: string[],
    explanations: string[],
  ) {
    super(`probe failed: ${explanations.join('; ')}`);
    this.name = 'ProbeFailed';
  }

  toLogObject(): Record<string, unknown> {
    return { type: this.name, reasons: this.reasons, codes: this.codes, message: this.message };
  }
}

/** The handover's section (cluster HA): the cumulative counters and histograms, so the next leader counts on. */
const COUNTERS_SECTION = 'counters.v1';

interface ProbeCounters {
  api: { counts: number[]; sum: number; count: number };
  delivery: { counts: number[]; sum: number; count: number };
  sent: number;
  received: number;
  lost: number;
  errors: Array<[string, number]>;
}

interface PendingProbe {
  /** performance.now() just before SendMessage was called. */
  sentAt: number;
  received?: number;
  onReceived?: () => void;
}

export class MqttProbeJob implements Job {
  readonly instanceIds: string[];
  private readonly caller: ApiCaller;
  private readonly timeoutMs: number;
  private readonly token = randomBytes(5).toString('hex');
  private readonly probeIdRe: RegExp;
  private readonly subscriber: ProbeSubscriber | undefined;
  /** Token mode's sign-in: keeps the token fresh and tells what ApplyToken answered. */
  private readonly tokenSignIn: TokenSignIn | undefined;
  /** A probe is under way (from its start to its verdict): a reconnect for a new token waits until it is not. */
  private probing = false;
  private readonly pending = new Map<string, PendingProbe>();
  private seq = 0;
  private readonly where: { region: string; instance_id: string; topic: string };
  // Cumulative state across runs.
  private readonly apiHistogram = new HistogramState(API_BUCKETS);
  private readonly deliveryHistogram = new HistogramState(DELIVERY_BUCKETS);
  private lastSuccess = 0;
  private lastApiSeconds: number | undefined;
  /** Send → receive of the last probe that arrived (end-to-end mode). */
  private lastDeliverySeconds: number | undefined;
  private lastProbeLost = false;
  private sent = 0;
  private received = 0;
  private lost = 0;
  private readonly errors = new Map<string, number>();
  private subscriberLossesSeen = 0;
  readonly handover: JobHandover = jsonHandover(COUNTERS_SECTION, () => this.counters(), (c: ProbeCounters) => this.restoreCounters(c), {
    // Only the replica that probes holds the subscription: ApsaraMQ drops the older of two connections with one client ID.
    standby: async () => {
      if (!this.subscriber) return;
      await this.subscriber.pause();
      // Not a drop to report when this replica probes again: it let go on purpose.
      this.subscriberLossesSeen = this.subscriber.losses;
    },
  });

  constructor(
    private readonly cfg: MqttProbeConfig,
    private readonly ctx: JobContext,
  ) {
    this.instanceIds = [cfg.instance_id];
    this.caller = ctx.accounts.caller(cfg.account, mqttEndpoint(cfg), MQTT_API_VERSION);
    this.timeoutMs = cfg.timeout ?? Math.min(DEFAULT_PROBE_TIMEOUT_MS, runDeadlineMs(cfg));
    this.probeIdRe = new RegExp(`cse-${this.token}-(\\d+)`);
    this.where = { region: cfg.region, instance_id: cfg.instance_id, topic: cfg.topic };
    if (cfg.subscribe) {
      const s = cfg.subscribe;
      const account = ctx.accounts.account(cfg.account);
      const clientId = clientIdOf(s.group_id, s.device_id ?? defaultDeviceId(s.group_id));
      let signIn: SignIn;
      if (subscriberAuth(s, account) === 'token') {
        this.tokenSignIn = new TokenSignIn({ caller: this.caller, instanceId: cfg.instance_id, topic: cfg.topic, ttlMs: tokenTtlMs(s), logger: ctx.logger, probing: () => this.probing });
        signIn = this.tokenSignIn;
      } else {
        // Signature mode signs with a long-term AccessKey: the subscriber's own, or the account's static one (the
        // config loader refused a signature-mode subscriber with neither).
        const own = s.access_key_id !== undefined && s.access_key_secret !== undefined ? { id: s.access_key_id, secret: s.access_key_secret } : undefined;
        const key = own ?? (account.provider === 'aliyun' ? longTermAccessKey(account.credentials, ctx.configDir) : undefined);
        if (!key) throw new Error(`job ${cfg.name}: account ${cfg.account} has no long-term AccessKey for the subscriber's signature mode`);
        registerSecret(s.access_key_id);
        registerSecret(s.access_key_secret);
        const signature = signatureSignIn(key.id, key.secret, cfg.instance_id, clientId);
        registerSecret(signature.password);
        signIn = signature;
      }
      this.subscriber = new ProbeSubscriber({
        url: s.url ?? `mqtts://${cfg.instance_id}.mqtt.aliyuncs.com:8883`,
        clientId,
        signIn,
        topic: cfg.topic,
        logger: ctx.logger,
        onMessage: (_topic, payload) => this.onMessage(payload),
      });
      this.tokenSignIn?.attach(this.subscriber);
      for (const code of ['SubscriberDisconnected', 'SubscriberAuthFailed']) this.errors.set(code, 0);
    }
  }

  async run(run: RunContext): Promise<JobRunResult> {
    // Sharded: the replica whose shard holds the instance probes it.
    if (run.shard && !run.shard.owns(this.cfg.instance_id)) return { targets: [] };
    const error = await this.probe(run);
    // Each failed ApplyToken is a probe error under its code, in the run it happened in or the next; it fails no
    // probe while the subscription holds (a subscriber that could not sign in fails it as not connected).
    for (const code of this.tokenSignIn?.takeFailures() ?? []) this.countError(code);
    this.lastSuccess = error === undefined ? 1 : 0;
    // A failed probe is itself data (success 0, its error codes): its families are published, and the run fails.
    return { targets: [{ instanceId: this.cfg.instance_id, ok: error === undefined, families: this.render(), error }] };
  }

  status(): JobStatus {
    const figures: JobStatus['figures'] = [
      { label: 'last SendMessage latency', value: this.lastApiSeconds, unit: 'seconds' },
      { label: 'probes sent', value: this.sent },
    ];
    if (!this.subscriber) return { figures };
    return {
      figures: [
        ...figures,
        { label: 'last delivery latency', value: this.lastDeliverySeconds, unit: 'seconds' },
        { label: 'received', value: this.received },
        { label: 'lost', value: this.lost, note: this.lastProbeLost ? 'the last probe was lost' : undefined, warn: this.lastProbeLost },
        { label: 'subscriber', value: this.subscriber.ready ? 'connected' : `not connected (${this.subscriber.problem})`, warn: !this.subscriber.ready },
      ],
    };
  }

  private counters(): ProbeCounters {
    const h = (x: HistogramState) => ({ counts: [...x.counts], sum: x.sum, count: x.count });
    return { api: h(this.apiHistogram), delivery: h(this.deliveryHistogram), sent: this.sent, received: this.received, lost: this.lost, errors: [...this.errors] };
  }

  private restoreCounters(c: ProbeCounters): void {
    const h = (into: HistogramState, from: ProbeCounters['api']) => {
      if (from.counts.length !== into.counts.length) return;
      from.counts.forEach((n, i) => (into.counts[i] = n));
      into.sum = from.sum;
      into.count = from.count;
    };
    h(this.apiHistogram, c.api);
    h(this.deliveryHistogram, c.delivery);
    this.sent = c.sent;
    this.received = c.received;
    this.lost = c.lost;
    for (const [code, n] of c.errors) this.errors.set(code, n);
  }

  async close(): Promise<void> {
    for (const p of this.pending.values()) p.onReceived?.();
    this.pending.clear();
    this.tokenSignIn?.close();
    await this.subscriber?.close();
  }

  /**
   * One probe; undefined when it succeeded, else why not. In end-to-end mode it succeeds only when the message arrived
   * within the timeout on a subscription that was up when the probe was sent and stayed up until it arrived: a drop in
   * between makes the measured delivery include a reconnect, or lose the message. A drop that healed between two probes
   * is counted (SubscriberDisconnected) but fails neither: the next probe runs on a working connection.
   */
  private async probe(run: RunContext): Promise<Error | undefined> {
    this.probing = true;
    try {
      return await this.probeOnce(run);
    } finally {
      this.probing = false;
      this.tokenSignIn?.afterProbe();
    }
  }

  private async probeOnce(run: RunContext): Promise<Error | undefined> {
    const codes: string[] = [];
    const count = (code: string) => this.countError(code);
    const reasons: FailureReason[] = [];
    const explanations: string[] = [];
    const failBecause = (reason: FailureReason, explanation: string, code?: string) => {
      reasons.push(reason);
      explanations.push(explanation);
      if (code !== undefined) {
        codes.push(code);
        count(code);
      }
    };
    const sub = this.subscriber;
    let lossesAtStart = 0;
    if (sub) {
      const firstConnect = !sub.hasEverBeenReady;
      sub.start();
      // The first connection, or an attempt already under way, is waited for; a subscriber that is down is a failed probe.
      if (!sub.ready && (firstConnect || sub.connecting)) await sub.waitReady(Math.min(this.timeoutMs, run.deadline - Date.now()) / 2, run.signal);
      lossesAtStart = sub.losses;
      if (!sub.ready) {
        const why = sub.signInError === undefined ? sub.problem : `${sub.problem}; it could not sign in: ${sub.signInError}`;
        failBecause('subscriber_not_connected', `the MQTT subscriber was not connected when the probe was sent (${why})`, sub.problem);
      } else if (lossesAtStart !== this.subscriberLossesSeen) {
        // Dropped and healed since the last probe: counted, and this probe runs on the working connection.
        count('SubscriberDisconnected');
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
      await this.caller.call({
        api: SEND_API,
        params: { InstanceId: this.cfg.instance_id, MqttTopic: this.cfg.topic, Payload: payload },
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
      count(errorCodeOf(apiError));
      // The cloud's error says why (its code, status and request ID in the log).
      return apiError;
    }
    this.sent++;
    if (!sub) return undefined;

    const untilPerf = Math.min(entry.sentAt + this.timeoutMs, performance.now() + (run.deadline - Date.now()));
    const received = await this.waitForDelivery(entry, untilPerf, run.signal);
    this.pending.delete(probeId);
    this.lastProbeLost = !received;
    if (received) {
      this.received++;
      this.lastDeliverySeconds = (entry.received! - entry.sentAt) / 1000;
      this.deliveryHistogram.observe(this.lastDeliverySeconds);
    } else {
      this.lost++;
    }
    if (reasons.length === 0 && (sub.losses !== lossesAtStart || !sub.ready)) {
      const after = received ? '; the probe arrived after a reconnect' : '';
      failBecause('subscriber_dropped', `the MQTT subscriber's connection dropped while the probe was on its way (${sub.problem})${after}`, sub.problem);
    }
    this.subscriberLossesSeen = sub.losses;
    if (!received) {
      const seconds = (ms: number) => `${Math.round(ms / 100) / 10}s`;
      // Only a stop that cut the wait short is news: at the deadline the run's abort and the probe's own timer race.
      const stoppedAt = performance.now();
      const cut = run.signal.aborted && stoppedAt < untilPerf - 50 ? ` (the run was stopped after ${seconds(stoppedAt - entry.sentAt)})` : '';
      const waited = seconds(untilPerf - entry.sentAt);
      failBecause('lost', `${probeId}, published with SendMessage, was not received on ${this.cfg.topic} within ${waited}${cut}`);
    }
    return reasons.length === 0 ? undefined : new ProbeFailed(reasons, codes, explanations);
  }

  private countError(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
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
    const where = this.where;
    const staticLabels = this.ctx.staticLabels;
    const e2e = this.subscriber !== undefined;
    const families: MetricFamily[] = [singleSample(PROBE_SUCCESS, where, this.lastSuccess, staticLabels)];
    if (this.lastApiSeconds !== undefined) families.push(singleSample(API_DURATION, where, this.lastApiSeconds, staticLabels));
    const h = this.apiHistogram;
    families.push(new DeclaredFamilyBuilder(API_REQUEST_DURATION, staticLabels).histogram(where, h.bounds, h.counts, h.sum, h.count).build());
    if (e2e) {
      const d = this.deliveryHistogram;
      families.push(new DeclaredFamilyBuilder(DELIVERY_DURATION, staticLabels).histogram(where, d.bounds, d.counts, d.sum, d.count).build());
    }
    families.push(singleSample(SENT, where, this.sent, staticLabels));
    if (e2e) families.push(singleSample(RECEIVED, where, this.received, staticLabels), singleSample(LOST, where, this.lost, staticLabels));
    const errors = new DeclaredFamilyBuilder(ERRORS, staticLabels);
    for (const [code, n] of [...this.errors].sort((a, b) => (a[0] < b[0] ? -1 : 1))) errors.sample({ ...where, code }, n);
    families.push(errors.build());
    if (e2e) families.push(singleSample(SUBSCRIBER_CONNECTED, where, this.subscriber!.ready ? 1 : 0, staticLabels));
    return families;
  }
}

function parseSendMessageResponse(body: unknown): string {
  const msgId = (body as { MsgId?: unknown })?.MsgId;
  if (typeof msgId !== 'string' || !msgId) throw new Error('MsgId is missing');
  return msgId;
}

/** `cse-probe-<hostname>`, shortened so that the client ID stays within ApsaraMQ's 64 characters. */
function defaultDeviceId(groupId: string): string {
  const room = Math.max(1, deviceIdRoom(groupId) - 'cse-probe-'.length);
  const host = os.hostname().replace(/[^A-Za-z0-9_.:-]/g, '-').slice(0, room) || 'host';
  return `cse-probe-${host}`;
}
