// The end-to-end canary's MQTT side: one long-lived MQTT 3.1.1 connection (ApsaraMQ Signature auth) subscribed to the
// probe topic, reconnecting with backoff. Connection trouble is state the probe job reports, never an exception.
import { createHmac } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from '../../util/log';

/** ApsaraMQ for MQTT "Signature" mode: username `Signature|<AccessKeyId>|<InstanceId>`. */
export function signatureUsername(accessKeyId: string, instanceId: string): string {
  return `Signature|${accessKeyId}|${instanceId}`;
}

/** ApsaraMQ for MQTT "Signature" mode: password = Base64(HMAC-SHA1(AccessKeySecret, clientId)). */
export function signaturePassword(accessKeySecret: string, clientId: string): string {
  return createHmac('sha1', accessKeySecret).update(clientId, 'utf8').digest('base64');
}

/** Why the subscriber is not ready; also the `code` of aliyun_mqtt_probe_errors_total. */
export type SubscriberProblem = 'SubscriberDisconnected' | 'SubscriberAuthFailed' | 'SubscribeFailed';

export interface ProbeSubscriberOptions {
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  topic: string;
  logger: Logger;
  onMessage(topic: string, payload: Buffer): void;
  connectTimeoutMs?: number;
  keepaliveSeconds?: number;
  /** Reconnect backoff: doubles from `minMs` up to `maxMs`, with ±20% jitter; reset by a successful subscription. */
  backoff?: { minMs: number; maxMs: number };
  random?: () => number;
}

const DEFAULT_BACKOFF = { minMs: 1_000, maxMs: 60_000 };
const CLOSE_WAIT_MS = 100;

export class ProbeSubscriber {
  private client: MqttClient | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private closed = false;
  private isReady = false;
  /** Told the outcome of the next connection attempt. */
  private attemptWaiters: Array<(ready: boolean) => void> = [];
  private lastProblem: SubscriberProblem = 'SubscriberDisconnected';
  /** Incremented each time readiness is lost. */
  private lossCount = 0;
  private everReady = false;

  constructor(private readonly opts: ProbeSubscriberOptions) {}

  get ready(): boolean {
    return this.isReady;
  }

  /** The reason for the last failure (meaningful while not ready). */
  get problem(): SubscriberProblem {
    return this.lastProblem;
  }

  get losses(): number {
    return this.lossCount;
  }

  /** A connection attempt is under way (not yet subscribed, not yet failed). */
  get connecting(): boolean {
    return this.client !== undefined && !this.isReady;
  }

  get hasEverBeenReady(): boolean {
    return this.everReady;
  }

  /** Connects (once); later calls do nothing. */
  start(): void {
    if (this.client || this.closed || this.reconnectTimer) return;
    this.connect();
  }

  /** Resolves true once ready; false when the current connection attempt fails, `timeoutMs` passes, the signal aborts or the subscriber closes. */
  waitReady(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.isReady) return Promise.resolve(true);
    if (this.closed || timeoutMs <= 0 || signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (v: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.attemptWaiters = this.attemptWaiters.filter((w) => w !== onAttempt);
        resolve(v);
      };
      const onAttempt = (ready: boolean) => done(ready);
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.attemptWaiters.push(onAttempt);
    });
  }

  /** Disconnects until the next start() (another replica probes now). */
  async pause(): Promise<void> {
    if (this.closed) return;
    await this.close();
    this.closed = false;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const client = this.client;
    this.client = undefined;
    this.setReady(false, 'SubscriberDisconnected');
    for (const w of this.attemptWaiters.splice(0)) w(false);
    if (client) {
      // end(true) closes at once on a live stream; a stalled one (a black-holed broker) is destroyed after a moment,
      // so shutting down never waits on the network.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          client.stream?.destroy();
          resolve();
        }, CLOSE_WAIT_MS);
        client.end(true, {}, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private connect(): void {
    const { opts } = this;
    this.attempt++;
    const client = mqtt.connect(opts.url, {
      protocolVersion: 4,
      clientId: opts.clientId,
      username: opts.username,
      password: opts.password,
      clean: true,
      keepalive: opts.keepaliveSeconds ?? 60,
      connectTimeout: opts.connectTimeoutMs ?? 10_000,
      // Reconnects are ours (with backoff and a fresh client), never mqtt.js's fixed-period loop.
      reconnectPeriod: 0,
      resubscribe: false,
      timerVariant: 'native',
    });
    this.client = client;
    let connackError: SubscriberProblem | undefined;

    client.on('connect', () => {
      client.subscribe(opts.topic, { qos: 1 }, (err, granted) => {
        if (this.client !== client) return;
        const rejected = err !== null && err !== undefined ? true : (granted ?? []).some((g) => g.qos === 128);
        if (rejected) {
          opts.logger.warn({ topic: opts.topic, err: err?.message }, 'probe subscriber: the broker refused the subscription');
          connackError = 'SubscribeFailed';
          this.lastProblem = 'SubscribeFailed';
          client.end(true);
          return;
        }
        this.attempt = 0;
        if (this.everReady) opts.logger.info({ url: redactUrl(opts.url) }, 'probe subscriber reconnected');
        else opts.logger.debug({ url: redactUrl(opts.url) }, 'probe subscriber connected');
        this.setReady(true);
      });
    });
    client.on('message', (topic, payload) => {
      if (this.client === client) opts.onMessage(topic, payload);
    });
    client.on('error', (err: Error & { code?: number | string }) => {
      // MQTT 3.1.1 CONNACK return codes 4 (bad username or password) and 5 (not authorized): brokers differ in which
      // one a wrong password gets (Mosquitto answers 5).
      if (err.code === 4 || err.code === 5) connackError = 'SubscriberAuthFailed';
      const level = connackError ? 'warn' : 'debug';
      opts.logger[level]({ url: redactUrl(opts.url), code: err.code, err: err.message }, 'probe subscriber: MQTT connection error');
    });
    client.on('close', () => {
      if (this.client !== client) return;
      // The client is discarded: one fresh client per attempt keeps no stale session state.
      client.removeAllListeners('connect');
      client.removeAllListeners('message');
      client.end(true);
      client.on('error', () => undefined);
      this.client = undefined;
      const wasReady = this.isReady;
      this.setReady(false, connackError ?? 'SubscriberDisconnected');
      for (const w of this.attemptWaiters.splice(0)) w(false);
      if (wasReady) opts.logger.warn({ url: redactUrl(opts.url) }, 'probe subscriber lost its MQTT connection; reconnecting');
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const { minMs, maxMs } = this.opts.backoff ?? DEFAULT_BACKOFF;
    const base = Math.min(maxMs, minMs * 2 ** Math.max(0, this.attempt - 1));
    const jitter = 0.8 + 0.4 * (this.opts.random ?? Math.random)();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closed) this.connect();
    }, Math.round(base * jitter));
    this.reconnectTimer.unref?.();
  }

  private setReady(ready: boolean, problem?: SubscriberProblem): void {
    if (problem) this.lastProblem = problem;
    if (ready === this.isReady) return;
    this.isReady = ready;
    if (ready) {
      this.everReady = true;
      for (const w of this.attemptWaiters.splice(0)) w(true);
    } else {
      this.lossCount++;
    }
  }
}

/** URLs may carry user:password; logs never do. */
function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
