// Leader election per job: one replica holds a lease in Redis, with a fencing token that only ever grows.
//
// Acquire and renew are one script: the lease key holds "holder|token" with a TTL; the holder renews every
// `renewMs` (default a third of the lease); the others try again when the lease's time to live says it expires (at
// most renewMs later), so after a leader dies (SIGKILL) another holds the lease within the lease and a few ms. A
// graceful stop deletes the key and announces it (events.ts), so one of the others takes over at once.
//
// Fencing: the token comes from a counter incremented on every acquisition. If Redis lost the counter (restarted
// empty), it is seeded with Redis' time in ms before incrementing: tokens stay above any earlier one as long as fewer
// than 1,000 acquisitions per second happened since the counter was last seeded. isCurrent(token) tells whether a
// token still holds the lease (check it before publishing results).
//
// Redis unreachable: nobody can prove leadership. A leader keeps leading until its lease would have expired (counted
// from when its last successful renewal was sent, so never past the moment Redis lets another replica take it) and
// then stops; replicas that are not leaders do not start polling. isCurrent() answers false while Redis is away.
import { randomBytes } from 'node:crypto';
import type Redis from 'ioredis';
import { ClusterEvents } from './events';
import { defineScript, type ScriptRunner } from './redis';

// KEYS[1] lease, KEYS[2] fencing counter. ARGV: holder, lease ms. Returns {1 | 0 (held by another), token, ms left}.
const ACQUIRE_LUA = `
local v = redis.call('GET', KEYS[1])
if v then
  local holder, token = string.match(v, '^(.*)|(%d+)$')
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, token, tonumber(ARGV[2])}
  end
  return {0, token or '0', redis.call('PTTL', KEYS[1])}
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[2], t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000)))
end
local token = tostring(redis.call('INCR', KEYS[2]))
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return {1, token, tonumber(ARGV[2])}
`;

// KEYS[1] lease. ARGV: "holder|token", channel, message. Deletes the lease only if it is still ours, then tells the others.
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`;

/** A follower tries again this long after the lease's time to live ends (clock rates and the round trip). */
const EXPIRY_SLACK_MS = 5;

/** Leadership is given up this much before the lease could expire in Redis (clock rates differ). */
const CLOCK_MARGIN = 0.001;

export interface LeaderLeaseOptions {
  redis: Redis;
  /** The replica's subscription: a released lease is taken at once. */
  events: ClusterEvents;
  /** cluster.redis.key_prefix (default "cse"). */
  keyPrefix?: string;
  job: string;
  /** cluster.replica_id; a random suffix keeps two instances with one id apart. */
  replicaId: string;
  /** cluster.lease (default 15 s). */
  leaseMs?: number;
  /** Default leaseMs / 3. */
  renewMs?: number;
  /** Leadership gained (with its fencing token) or lost. */
  onChange?: (isLeader: boolean, token: string | undefined) => void;
  onError?: (err: Error) => void;
  now?: () => number;
}

export class LeaderLease {
  readonly leaseMs: number;
  readonly renewMs: number;
  private readonly holder: string;
  private readonly leaseKey: string;
  private readonly fenceKey: string;
  private readonly acquireScript: ScriptRunner;
  private readonly releaseScript: ScriptRunner;
  private readonly now: () => number;
  private unlisten: (() => void) | undefined;
  private currentToken: string | undefined;
  private validUntil = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private attempting = false;
  private running = false;

  constructor(private readonly opts: LeaderLeaseOptions) {
    const prefix = opts.keyPrefix ?? 'cse';
    this.leaseMs = opts.leaseMs ?? 15_000;
    this.renewMs = opts.renewMs ?? Math.round(this.leaseMs / 3);
    if (this.renewMs >= this.leaseMs) throw new Error(`lease for ${opts.job}: renew period ${this.renewMs} ms must be shorter than the lease ${this.leaseMs} ms`);
    this.holder = `${opts.replicaId}/${randomBytes(4).toString('hex')}`;
    this.leaseKey = `${prefix}:lease:${opts.job}`;
    this.fenceKey = `${prefix}:fence:${opts.job}`;
    this.acquireScript = defineScript(opts.redis, 'cseLeaseAcquire', ACQUIRE_LUA);
    this.releaseScript = defineScript(opts.redis, 'cseLeaseRelease', RELEASE_LUA);
    this.now = opts.now ?? (() => performance.now());
  }

  get isLeader(): boolean {
    return this.currentToken !== undefined;
  }

  /** The fencing token while leader. */
  get token(): string | undefined {
    return this.currentToken;
  }

  /** The lease's value in Redis while leader ("holder|token"): a fenced write checks that it still holds. */
  get fence(): string | undefined {
    return this.currentToken === undefined ? undefined : `${this.holder}|${this.currentToken}`;
  }

  /** The Redis key holding the lease (the fenced publish checks it). */
  get key(): string {
    return this.leaseKey;
  }

  /** Starts competing for the lease (at once, then as it renews or expires, and whenever a leader releases it). Resolves after the first attempt. */
  start(): Promise<void> {
    if (this.running) return Promise.resolve();
    this.running = true;
    this.unlisten = this.opts.events.on('released', (job) => {
      if (job === this.opts.job && !this.isLeader) void this.attempt();
    });
    return this.attempt();
  }

  /** Graceful stop: releases the lease if held, so another replica takes over at once. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.clearTimers();
    const token = this.currentToken;
    this.setLeader(undefined);
    this.unlisten?.();
    if (token !== undefined) {
      try {
        await this.releaseScript([this.leaseKey], [`${this.holder}|${token}`, this.opts.events.channel, ClusterEvents.message('released', this.opts.job)]);
      } catch (err) {
        // The lease then expires after leaseMs.
        this.opts.onError?.(err as Error);
      }
    }
  }

  /** Whether `token` still holds the lease in Redis (false when Redis cannot say). Check before publishing results. */
  async isCurrent(token: string): Promise<boolean> {
    try {
      const v = await this.opts.redis.get(this.leaseKey);
      return v !== null && v.slice(v.lastIndexOf('|') + 1) === token;
    } catch {
      return false;
    }
  }

  private async attempt(): Promise<void> {
    if (this.attempting || !this.running) return;
    this.attempting = true;
    const sentAt = this.now();
    let next = this.renewMs;
    try {
      const [held, token, msLeft] = (await this.acquireScript([this.leaseKey, this.fenceKey], [this.holder, this.leaseMs])) as [number, string, number];
      if (!this.running) return;
      if (held === 1) {
        // Redis set the expiry no earlier than we sent: leading until sentAt + lease is safe on our clock.
        this.validUntil = sentAt + this.leaseMs * (1 - CLOCK_MARGIN);
        this.armExpiry();
        this.setLeader(token);
      } else {
        this.setLeader(undefined);
        // Another holds it: try again when it would expire, so a dead leader is replaced within the lease.
        if (msLeft >= 0) next = Math.min(this.renewMs, msLeft + EXPIRY_SLACK_MS);
      }
    } catch (err) {
      // Redis unreachable: a leader keeps leading until its lease would have expired (armExpiry), others wait.
      this.opts.onError?.(err as Error);
    } finally {
      this.attempting = false;
      this.armRenew(next);
    }
  }

  private setLeader(token: string | undefined): void {
    if (token === this.currentToken) return;
    this.currentToken = token;
    if (token === undefined) this.validUntil = -Infinity;
    this.opts.onChange?.(token !== undefined, token);
  }

  private armRenew(ms: number): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.attempt();
    }, ms);
    this.timer.unref?.();
  }

  private armExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(
      () => {
        this.expiryTimer = undefined;
        if (this.now() >= this.validUntil) this.setLeader(undefined);
        else this.armExpiry();
      },
      Math.max(0, Math.ceil(this.validUntil - this.now())),
    );
    this.expiryTimer.unref?.();
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.timer = undefined;
    this.expiryTimer = undefined;
  }
}
