// Token-mode sign-in of the canary's subscriber (ApsaraMQ for MQTT), for accounts whose credentials cannot sign in the
// Signature way (RAM roles, STS, instance credentials: no long-term AccessKey). From the product's documentation:
// - ApplyToken (onsmqtt 2020-04-20; Resources, Actions, ExpireTime in ms, InstanceId; answers {RequestId, Token};
//   100 QPS per account, each successful call billed as one message) issues a token valid 60 s to 30 days.
// - The client signs in with username `Token|<AccessKeyId>|<InstanceId>` and password `R|<token>` (a read token is
//   enough to subscribe). Which AccessKey ID is not spelled out; it is taken to be the one that applied for the
//   token (for role credentials, the STS key ID of that moment), the key the token was issued to.
// - A new token can replace the old one without reconnecting: published at QoS 1 on `$SYS/uploadToken` as
//   {"token", "type"}, in force once the PUBACK arrives. The broker pushes `$SYS/tokenExpireNotice` {expireTime, type}
//   about 5 minutes before a token expires and, before closing a connection whose token is not valid,
//   `$SYS/tokenInvalidNotice` {code, type}; neither needs a subscription.
// The token is kept fresh like a cloud credential (refresh.ts): renewed in the background at a third of its life left,
// kept until it expires when renewing fails. A renewed token issued to the same AccessKey as the connection's
// username is uploaded over the connection; one issued to another key (role credentials rotate) needs a new
// connection, made between two probes so that none is on its way while the subscription is down.
import { createHash } from 'node:crypto';
import type { ApiCaller } from '../../cloud/client';
import { ManagedCredentials } from '../../cloud/credentials/refresh';
import { errorCodeOf } from '../../cloud/errors';
import type { Logger } from '../../util/log';
import { registerSecret } from '../../util/redact';
import { APPLY_TOKEN_API } from './config';
import type { ProbeSubscriber, SignIn } from './subscriber';

const UPLOAD_TOKEN_TOPIC = '$SYS/uploadToken';
const EXPIRE_NOTICE_TOPIC = '$SYS/tokenExpireNotice';
const INVALID_NOTICE_TOPIC = '$SYS/tokenInvalidNotice';
/** What the codes of an invalid-token notice mean (the client documentation's table). */
const INVALID_REASONS: Readonly<Record<string, string>> = {
  '1': 'forged (not readable)',
  '2': 'expired',
  '3': 'revoked',
  '4': 'its resources do not match',
  '5': 'its permission type does not match',
  '8': 'its signature is not valid',
  '-1': 'account permission not valid',
};
/** The subscriber only reads: a read-only token. */
const TOKEN_TYPE = 'R';
/**
 * Bound of one ApplyToken call, retries and the limiter's queue included. ExpireTime is set this much later than
 * token_ttl from the call, so that a token asked for at the 60 s minimum still has 60 s left when the call arrives.
 */
const APPLY_DEADLINE_MS = 10_000;
/** A notice naming an expiry this much before the one asked for means the cloud granted less. */
const EXPIRY_TOLERANCE_MS = 1000;

interface MqttToken {
  token: string;
  /** The AccessKey ID that signed ApplyToken: the username's. */
  accessKeyId: string;
  /** Date.now() when ApplyToken was called. */
  appliedAt: number;
  expiresAt: number;
}

/** The token as a refreshing credential: obtained, renewed, kept and logged by the credentials refresher. */
class ProbeTokens extends ManagedCredentials<MqttToken> {
  token(): Promise<MqttToken> {
    return this.current();
  }
}

/** ApsaraMQ for MQTT "Token" mode username. */
function tokenUsername(accessKeyId: string, instanceId: string): string {
  return `Token|${accessKeyId}|${instanceId}`;
}

function parseApplyTokenResponse(body: unknown): string {
  const token = (body as { Token?: unknown } | null)?.Token;
  if (typeof token !== 'string' || token === '') throw new Error('Token is missing');
  // A secret from the moment it arrives: masked in every log line and error that could quote it.
  registerSecret(token);
  return token;
}

export interface TokenSignInOptions {
  /** The account's rate-limited caller of the MQTT OpenAPI (its ApplyToken limiter). */
  caller: ApiCaller;
  instanceId: string;
  /** The topic subscribed to: the token's only resource. */
  topic: string;
  /** Validity asked of ApplyToken for each token. */
  ttlMs: number;
  logger: Logger;
  /** Whether a probe is on its way: a reconnect for a new token waits until it is not. */
  probing(): boolean;
  /** Shortest wait between ApplyToken attempts after a failure (default 1 s). */
  minRetryMs?: number;
}

export class TokenSignIn implements SignIn {
  /** Made at the first sign-in: the first ApplyToken is the subscriber's first connection's, not the job's creation's. */
  private tokens: ProbeTokens | undefined;
  private subscriber: Pick<ProbeSubscriber, 'ready' | 'publish' | 'renew'> | undefined;
  /** The token the connection signed in with, or was last updated to. */
  private inUse: MqttToken | undefined;
  /** The tokens' generation when the broker refused or invalidated one: the next sign-in applies for a new one first. */
  private refusedGeneration: number | undefined;
  /** The longest life the cloud was seen to grant, when shorter than asked (an early expiry notice). */
  private grantedLifeMs: number | undefined;
  /** ApplyToken failures since the job last asked, by code. */
  private readonly failures: string[] = [];
  /** A token update or a reconnect for a new token is under way; asked again meanwhile, it runs once more after. */
  private switching = false;
  private switchAgain = false;
  /** A reconnect for a new token waits for the probe on its way. */
  private switchAfterProbe = false;

  constructor(private readonly opts: TokenSignInOptions) {}

  /** The subscriber this signs in (for token updates and reconnects). */
  attach(subscriber: Pick<ProbeSubscriber, 'ready' | 'publish' | 'renew'>): void {
    this.subscriber = subscriber;
  }

  async credentials(): Promise<{ username: string; password: string }> {
    const tokens = this.ensureTokens();
    if (this.refusedGeneration !== undefined) {
      const refused = this.refusedGeneration;
      this.refusedGeneration = undefined;
      await tokens.refreshNow(refused);
    }
    const t = await tokens.token();
    this.inUse = t;
    return { username: tokenUsername(t.accessKeyId, this.opts.instanceId), password: `${TOKEN_TYPE}|${t.token}` };
  }

  refused(): void {
    this.refusedGeneration = this.tokens?.generation;
  }

  ready(): void {
    void this.switchToLatest();
  }

  systemMessage(topic: string, payload: Buffer): void {
    let body: { expireTime?: unknown; code?: unknown; type?: unknown } | undefined;
    try {
      body = JSON.parse(payload.toString('utf8')) as typeof body;
    } catch {
      body = undefined;
    }
    if (topic === EXPIRE_NOTICE_TOPIC) this.expiryNotice(Number(body?.expireTime));
    else if (topic === INVALID_NOTICE_TOPIC) {
      const code = String(body?.code);
      this.opts.logger.warn({ code, reason: INVALID_REASONS[code] ?? 'unknown' }, 'probe subscriber: the broker holds the MQTT token not valid and closes the connection; the next sign-in applies for a new one');
      this.refusedGeneration = this.tokens?.generation;
    }
  }

  /** Called when a probe has finished: a reconnect for a new token that waited for it is made now. */
  afterProbe(): void {
    if (this.switchAfterProbe) void this.switchToLatest();
  }

  /** ApplyToken failures since the last call, by code (each counted once as a probe error). */
  takeFailures(): string[] {
    return this.failures.splice(0);
  }

  close(): void {
    this.tokens?.close();
  }

  private ensureTokens(): ProbeTokens {
    this.tokens ??= new ProbeTokens('mqtt_token', (signal) => this.apply(signal), {
      logger: this.opts.logger,
      minRetryMs: this.opts.minRetryMs,
      onRefresh: (e) => {
        if (e.result === 'success') void this.switchToLatest();
      },
    });
    return this.tokens;
  }

  private async apply(signal: AbortSignal): Promise<{ value: MqttToken; expiresAt: number; id: string; source: string }> {
    // One signal per call: the caller remembers a run's final answers by signal, and a refused ApplyToken must not
    // refuse the next one unasked.
    const call = new AbortController();
    const onAbort = () => call.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const appliedAt = Date.now();
    const expireTime = appliedAt + APPLY_DEADLINE_MS + this.opts.ttlMs;
    let accessKeyId: string | undefined;
    try {
      const token = await this.opts.caller.call({
        api: APPLY_TOKEN_API,
        params: { InstanceId: this.opts.instanceId, Resources: this.opts.topic, Actions: TOKEN_TYPE, ExpireTime: expireTime },
        deadline: appliedAt + APPLY_DEADLINE_MS,
        signal: call.signal,
        target: this.opts.instanceId,
        parse: parseApplyTokenResponse,
        onSigned: (keyId) => (accessKeyId = keyId),
      });
      const expiresAt = Math.min(expireTime, appliedAt + (this.grantedLifeMs ?? Infinity));
      return { value: { token, accessKeyId: accessKeyId!, appliedAt, expiresAt }, expiresAt, id: createHash('sha256').update(token).digest('hex'), source: APPLY_TOKEN_API };
    } catch (err) {
      if (!signal.aborted) this.failures.push(errorCodeOf(err));
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * The broker says when the token in use expires. Earlier than asked means the cloud granted less (beyond 30 days
   * it cuts silently; the emulator's tests cut to seconds): that life is remembered for the next tokens, and the
   * token is renewed now, at a third of that life left at the latest.
   */
  private expiryNotice(expireTime: number): void {
    const inUse = this.inUse;
    if (!Number.isFinite(expireTime) || inUse === undefined || expireTime >= inUse.expiresAt - EXPIRY_TOLERANCE_MS) return;
    this.grantedLifeMs = Math.max(0, expireTime - inUse.appliedAt);
    this.opts.logger.info({ expiry: new Date(expireTime).toISOString(), granted_seconds: Math.round(this.grantedLifeMs / 1000) }, 'probe subscriber: the MQTT token expires earlier than asked; renewing it now and asking for that long from now on');
    void this.tokens?.refreshNow(this.tokens.generation);
  }

  /** Puts the latest token in force on a working connection: over it when it can be, else by reconnecting between probes. */
  private async switchToLatest(): Promise<void> {
    const sub = this.subscriber;
    const inUse = this.inUse;
    if (this.switching) {
      this.switchAgain = true;
      return;
    }
    if (!sub?.ready || !this.tokens || !inUse) return;
    this.switching = true;
    try {
      let latest: MqttToken;
      try {
        latest = await this.tokens.token();
      } catch {
        // None valid: the broker closes the connection, and the reconnect applies for a token.
        return;
      }
      if (latest.token === inUse.token || this.inUse !== inUse) return;
      if (latest.accessKeyId === inUse.accessKeyId) {
        // The same AccessKey as the username: the documented update over the connection, no reconnect.
        try {
          await sub.publish(UPLOAD_TOKEN_TOPIC, JSON.stringify({ token: latest.token, type: TOKEN_TYPE }));
          this.inUse = latest;
          this.opts.logger.debug('probe subscriber: MQTT token updated over the connection');
          return;
        } catch (err) {
          this.opts.logger.warn({ err: (err as Error).message }, 'probe subscriber: the MQTT token update was not acknowledged; reconnecting with the new token');
        }
      }
      // Another AccessKey (the username changes) or an update that failed: a new connection, between two probes.
      if (this.opts.probing()) {
        this.switchAfterProbe = true;
        return;
      }
      this.switchAfterProbe = false;
      if (sub.renew()) this.opts.logger.debug('probe subscriber: reconnecting with a new MQTT token');
    } finally {
      this.switching = false;
      if (this.switchAgain) {
        this.switchAgain = false;
        void this.switchToLatest();
      }
    }
  }
}
