// The end-to-end canary's MQTT side: one long-lived MQTT 3.1.1 connection subscribed to the probe topic, signed in as
// a SignIn says (ApsaraMQ Signature mode here, Token mode in token.ts), reconnecting with backoff. Connection trouble
// is state the probe job reports, never an exception.
import { createHmac } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from '../../util/log';

/** How the subscriber signs in, and what it hears of the broker's view of that sign-in. */
export interface SignIn {
  /** Username and password for the next connection attempt; a rejection fails the attempt (retried with backoff). */
  credentials(): Promise<{ username: string; password: string }>;
  /** The broker refused the last credentials (CONNACK 4 or 5). */
  refused?(): void;
  /** A message on a `$SYS/` topic: the broker's notices, never probe messages. */
  systemMessage?(topic: string, payload: Buffer): void;
  /** The subscription is up: after a first connection, a reconnect or a renewal. */
  ready?(): void;
}

/**
 * ApsaraMQ for MQTT "Signature" mode: username `Signature|<AccessKeyId>|<InstanceId>`, password
 * Base64(HMAC-SHA1(AccessKeySecret, clientId)), the same at every attempt.
 */
export function signatureSignIn(accessKeyId: string, accessKeySecret: string, instanceId: string, clientId: string): SignIn & { password: string } {
  const username = `Signature|${accessKeyId}|${instanceId}`;
  const password = createHmac('sha1', accessKeySecret).update(clientId, 'utf8').digest('base64');
  return { password, credentials: async () => ({ username, password }) };
}

/** Why the subscriber is not ready; also the `code` of aliyun_mqtt_probe_errors_total. */
export type SubscriberProblem = 'SubscriberDisconnected' | 'SubscriberAuthFailed' | 'SubscribeFailed';

export interface ProbeSubscriberOptions {
  url: string;
  clientId: string;
  /** None: no username or password (a broker that lets anyone in). */
  signIn?: SignIn;
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
/** How long a publish of ours (a token update) waits for its PUBACK. */
const PUBACK_WAIT_MS = 10_000;

export class ProbeSubscriber {
  private client: MqttClient | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private closed = false;
  private isReady = false;
  /** Waiting for SignIn.credentials() before connecting. */
  private signingIn = false;
  /** The connection being replaced by renew(): its close is planned, not a loss. */
  private renewal: MqttClient | undefined;
  /** Told the outcome of the next connection attempt. */
  private attemptWaiters: Array<(ready: boolean) => void> = [];
  private lastProblem: SubscriberProblem = 'SubscriberDisconnected';
  private lastSignInError: string | undefined;
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

  /** Why the last attempt could not even sign in (SignIn.credentials() failed), while that is the problem. */
  get signInError(): string | undefined {
    return this.lastSignInError;
  }

  get losses(): number {
    return this.lossCount;
  }

  /** A connection attempt is under way (not yet subscribed, not yet failed). */
  get connecting(): boolean {
    return this.signingIn || (this.client !== undefined && !this.isReady);
  }

  get hasEverBeenReady(): boolean {
    return this.everReady;
  }

  /** Connects (once); later calls do nothing. */
  start(): void {
    if (this.client || this.signingIn || this.closed || this.reconnectTimer) return;
    void this.connect();
  }

  /**
   * Replaces a working connection with a new one signed in afresh (new credentials): disconnects, then connects at
   * once. Not a loss of the subscription; a probe that starts meanwhile waits for it as for any attempt under way.
   * False when there is no working connection to replace (the next attempt signs in afresh anyway).
   */
  renew(): boolean {
    const client = this.client;
    if (!client || !this.isReady || this.renewal || this.closed) return false;
    this.renewal = client;
    this.isReady = false;
    client.end(false);
    return true;
  }

  /** Publishes at QoS 1 on the working connection; resolves on its PUBACK, rejects when there is none. */
  publish(topic: string, payload: string): Promise<void> {
    const client = this.client;
    if (!client || !this.isReady) return Promise.reject(new Error('not connected'));
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        client.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onClose = () => done(new Error('the connection closed before the PUBACK'));
      const timer = setTimeout(() => done(new Error(`no PUBACK within ${PUBACK_WAIT_MS / 1000}s`)), PUBACK_WAIT_MS);
      client.once('close', onClose);
      client.publish(topic, payload, { qos: 1 }, (err) => done(err ?? undefined));
    });
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

  private async connect(): Promise<void> {
    const { opts } = this;
    this.attempt++;
    this.signingIn = true;
    let creds: { username: string; password: string } | undefined;
    try {
      creds = await opts.signIn?.credentials();
    } catch (err) {
      this.signingIn = false;
      if (this.closed) return;
      const first = this.lastSignInError === undefined;
      this.lastSignInError = (err as Error).message;
      if (first) opts.logger.warn({ err: this.lastSignInError }, 'probe subscriber: no credentials to sign in with; retrying');
      this.attemptFailed('SubscriberDisconnected');
      return;
    }
    this.signingIn = false;
    if (this.closed) return;
    this.lastSignInError = undefined;
    const client = mqtt.connect(opts.url, {
      protocolVersion: 4,
      clientId: opts.clientId,
      username: creds?.username,
      password: creds?.password,
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
        opts.signIn?.ready?.();
      });
    });
    client.on('message', (topic, payload) => {
      if (this.client !== client) return;
      // The broker's own notices ($SYS/...) arrive without a subscription; they are the sign-in's business.
      if (topic.startsWith('$SYS/')) opts.signIn?.systemMessage?.(topic, payload);
      else opts.onMessage(topic, payload);
    });
    client.on('error', (err: Error & { code?: number | string }) => {
      // MQTT 3.1.1 CONNACK return codes 4 (bad username or password) and 5 (not authorized): brokers differ in which
      // one a wrong password gets (Mosquitto answers 5).
      if (err.code === 4 || err.code === 5) {
        connackError = 'SubscriberAuthFailed';
        opts.signIn?.refused?.();
      }
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
      if (this.renewal === client) {
        // Replaced on purpose (renew()): straight on to the next connection, nothing lost.
        this.renewal = undefined;
        if (!this.closed) void this.connect();
        return;
      }
      const wasReady = this.isReady;
      if (wasReady) opts.logger.warn({ url: redactUrl(opts.url) }, 'probe subscriber lost its MQTT connection; reconnecting');
      this.attemptFailed(connackError ?? 'SubscriberDisconnected');
    });
  }

  /** The connection is gone or never came: not ready, waiters told, the next attempt after a backoff. */
  private attemptFailed(problem: SubscriberProblem): void {
    this.setReady(false, problem);
    for (const w of this.attemptWaiters.splice(0)) w(false);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const { minMs, maxMs } = this.opts.backoff ?? DEFAULT_BACKOFF;
    const base = Math.min(maxMs, minMs * 2 ** Math.max(0, this.attempt - 1));
    const jitter = 0.8 + 0.4 * (this.opts.random ?? Math.random)();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closed) void this.connect();
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
