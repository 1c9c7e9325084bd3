// This replica's membership in the cluster: its registration in Redis, how many replicas it last saw, and whether Redis
// can be reached at all (while it cannot, the rate limiters fall back to a local share of their quota).
//
// Membership is one sorted set: replica id -> Redis time of its last contact. Every script a replica runs refreshes
// its entry; entries older than the TTL are dropped. (One key per replica with a TTL would need SCAN to count them.)
// A replica whose entry is older than `overdueMs` is "overdue": it is either gone or cut off from Redis and calling
// on its local share, so the limiters of the others fall back to their shares as well until it is back or its entry
// has expired. That is what keeps a replica that lost Redis (alone or with everyone) from adding its share on top of
// a full quota granted to the others.
import os from 'node:os';
import type Redis from 'ioredis';
import { defineScript, RedisClock, type ScriptRunner } from './redis';

// KEYS[1] replicas (zset: replica -> last contact); KEYS[2] recovery (Redis time of the latest return from an outage);
// KEYS[3] joined (zset: replica -> when it joined, for sharding's grace: sharding.ts).
// ARGV: deadline, replica id, replica ttl ms, after outage (1/0), recovery key ttl ms, leave (1/0), the join time this
// replica remembers ('' before its first; kept across an emptied Redis, so a restart of Redis starts no grace).
// Returns {1 | 0 (deadline passed, nothing changed), now, replicas, joined, then (member, joined) pairs}.
const JOIN_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local function f(x) return string.format('%.3f', x) end
if now > tonumber(ARGV[1]) then return {0, f(now), 0, '0'} end
if ARGV[6] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
  return {1, f(now), redis.call('ZCARD', KEYS[1]), '0'}
end
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', f(now - ttl))
redis.call('ZADD', KEYS[1], f(now), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
if ARGV[4] == '1' then
  redis.call('SET', KEYS[2], f(now), 'PX', ARGV[5])
end
local since = ARGV[7]
if since == '' then since = f(now) end
redis.call('ZADD', KEYS[3], 'NX', since, ARGV[2])
redis.call('PEXPIRE', KEYS[3], ttl)
local out = {1, f(now), redis.call('ZCARD', KEYS[1]), redis.call('ZSCORE', KEYS[3], ARGV[2])}
local joined = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
for i = 1, #joined, 2 do
  if redis.call('ZSCORE', KEYS[1], joined[i]) then
    out[#out + 1] = joined[i]
    out[#out + 1] = joined[i + 1]
  else
    redis.call('ZREM', KEYS[3], joined[i])
  end
end
return out
`;

/** A live replica as the last contact saw it. */
export interface Member {
  id: string;
  /** Redis time (ms) when it joined. */
  joinedAt: number;
}

/** How long the recovery mark stays (longer than any limiter's settle period, which reads it). */
const RECOVERY_KEY_TTL_MS = 120_000;

/** Slack for event-loop stalls and GC pauses when judging a replica overdue. */
const OVERDUE_SLACK_MS = 500;

export type MembershipState = 'connecting' | 'up' | 'down';

/** What the membership tells the limiters (RedisWindowLimiter implements it). */
export interface MembershipParticipant {
  /**
   * Redis is unreachable. `sharedGrantsEndBy` (performance.now() time): no other replica received a grant beyond its
   * share after this moment, because by then this replica was overdue for everyone.
   */
  redisDown(sharedGrantsEndBy: number): void;
  /**
   * This replica is registered in Redis again (or for the first time). After an outage the join marked the
   * recovery, which keeps every replica at its share for a while (see redis-window-limiter.ts).
   */
  redisUp(): void;
}

export interface ClusterMembershipOptions {
  /** A client from connectClusterRedis (fail-fast options, command timeout). */
  redis: Redis;
  /** cluster.redis.key_prefix (default "cse"). */
  keyPrefix?: string;
  /** cluster.replica_id (default: hostname-pid). */
  replicaId?: string;
  /** How often an idle replica refreshes its entry (default 1,000 ms). */
  heartbeatMs?: number;
  /** A replica not heard of for this long no longer counts (default 15 s; a graceful stop removes it at once). */
  ttlMs?: number;
  /** How often to try Redis again while it is unreachable (default 500 ms). */
  probeMs?: number;
  /** Smallest divisor of the quota for the local fallback share (default 2: never the full quota). */
  minReplicas?: number;
  onStateChange?: (state: MembershipState) => void;
  /** After every contact: the live replicas (this one included) and Redis' time then. */
  onMembers?: (members: readonly Member[], redisNow: number) => void;
  onError?: (err: Error) => void;
  now?: () => number;
}

export class ClusterMembership {
  readonly replicaId: string;
  readonly keyPrefix: string;
  readonly replicasKey: string;
  readonly recoveryKey: string;
  readonly joinedKey: string;
  readonly heartbeatMs: number;
  readonly ttlMs: number;
  readonly probeMs: number;
  readonly commandTimeoutMs: number;
  /** A replica silent for longer than this may be calling on its own share (see the module comment). */
  readonly overdueMs: number;
  /** How long after the first replica rejoins the others may take to rejoin too (their reconnect probes). */
  readonly rejoinSpreadMs: number;
  readonly clock: RedisClock;
  readonly redis: Redis;
  private readonly minReplicas: number;
  private readonly now: () => number;
  private readonly join: ScriptRunner;
  private readonly participants = new Set<MembershipParticipant>();
  private current: MembershipState = 'connecting';
  private seen = 0;
  private lastSharedEnd = -Infinity;
  private afterOutage = false;
  /** Redis time of this replica's first join, remembered across an emptied Redis. */
  private joinedAt = '';
  private contacting = false;
  private started = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onReady = () => void this.contact();
  // Only the first loss counts: while down, every failed reconnect attempt closes a connection that carried nothing.
  private readonly onClose = () => {
    if (this.current !== 'down') this.noteFailure(undefined);
  };
  private readonly onClientError = (err: Error) => this.opts.onError?.(err);

  constructor(private readonly opts: ClusterMembershipOptions) {
    this.redis = opts.redis;
    this.keyPrefix = opts.keyPrefix ?? 'cse';
    this.replicaId = opts.replicaId ?? `${os.hostname()}-${process.pid}`;
    this.replicasKey = `${this.keyPrefix}:replicas`;
    this.recoveryKey = `${this.keyPrefix}:recovery`;
    this.joinedKey = `${this.keyPrefix}:joined`;
    this.heartbeatMs = opts.heartbeatMs ?? 1000;
    this.ttlMs = opts.ttlMs ?? 15_000;
    this.probeMs = opts.probeMs ?? 500;
    this.minReplicas = Math.max(2, opts.minReplicas ?? 2);
    this.commandTimeoutMs = opts.redis.options.commandTimeout ?? 1000;
    this.overdueMs = this.heartbeatMs + this.commandTimeoutMs + OVERDUE_SLACK_MS;
    this.rejoinSpreadMs = this.probeMs + this.commandTimeoutMs;
    if (this.overdueMs >= this.ttlMs) throw new Error(`cluster membership: ttl ${this.ttlMs} ms must exceed heartbeat + command timeout + ${OVERDUE_SLACK_MS} ms`);
    this.now = opts.now ?? (() => performance.now());
    this.clock = new RedisClock(this.now);
    this.join = defineScript(opts.redis, 'cseJoin', JOIN_LUA);
  }

  get state(): MembershipState {
    return this.current;
  }

  /** Replicas registered at the last contact (this one included). */
  get replicas(): number {
    return this.seen;
  }

  /** The divisor of a quota for the local fallback share: the replicas last seen, at least minReplicas (>= 2). */
  get shareDivisor(): number {
    return Math.max(this.minReplicas, this.seen);
  }

  /** See MembershipParticipant.redisDown; -Infinity before any failure. */
  get sharedGrantsEndBy(): number {
    return this.lastSharedEnd;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.redis.on('ready', this.onReady);
    this.redis.on('close', this.onClose);
    this.redis.on('error', this.onClientError);
    if (this.redis.status === 'ready') void this.contact();
  }

  /** Leaves the cluster (the others stop counting this replica at once) and stops all timers. Stop the limiters first. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimer();
    this.redis.off('ready', this.onReady);
    this.redis.off('close', this.onClose);
    this.redis.off('error', this.onClientError);
    if (this.redis.status !== 'ready' || !this.clock.known) return;
    try {
      await this.join([this.replicasKey, this.recoveryKey, this.joinedKey], [this.clock.deadline(this.commandTimeoutMs).toFixed(3), this.replicaId, this.ttlMs, 0, RECOVERY_KEY_TTL_MS, 1, '']);
    } catch {
      // The entry expires after ttlMs anyway.
    }
  }

  attach(p: MembershipParticipant): () => void {
    this.participants.add(p);
    return () => this.participants.delete(p);
  }

  /** A limiter's script answered: Redis' clock and the replica count it saw. */
  noteContact(redisTime: number, receivedAt: number, replicas: number): void {
    this.clock.note(redisTime, receivedAt);
    if (replicas > 0) this.seen = replicas;
  }

  /**
   * A request failed or timed out: Redis counts as unavailable. Any request sent before now may still have been
   * executed (refreshing this replica's entry), so the others may treat this replica as present until now + overdueMs.
   */
  noteFailure(err: unknown): void {
    if (this.stopped) return;
    if (err !== undefined) this.opts.onError?.(err instanceof Error ? err : new Error(String(err)));
    this.lastSharedEnd = Math.max(this.lastSharedEnd, this.now() + this.overdueMs);
    const wasDown = this.current === 'down';
    if (!wasDown) {
      this.current = 'down';
      this.afterOutage = true;
      this.opts.onStateChange?.('down');
    }
    for (const p of this.participants) p.redisDown(this.lastSharedEnd);
    if (!wasDown || !this.timer) this.arm(this.probeMs);
  }

  /** Heartbeat while up; while down, the join: limiters' own calls counted in Redis, this replica registered again. */
  private async contact(): Promise<void> {
    if (this.contacting || this.stopped) return;
    if (this.redis.status !== 'ready') {
      if (this.current === 'down') this.arm(this.probeMs);
      return;
    }
    this.contacting = true;
    const joining = this.current !== 'up';
    let sent = false;
    try {
      // A join must carry a deadline, which needs a reading of Redis' clock first (TIME changes nothing if late).
      if (!this.clock.known || joining) {
        const [sec, usec] = await this.redis.time();
        this.clock.note(Number(sec) * 1000 + Number(usec) / 1000, this.now());
      }
      const args = [this.clock.deadline(this.commandTimeoutMs).toFixed(3), this.replicaId, this.ttlMs, joining && this.afterOutage ? 1 : 0, RECOVERY_KEY_TTL_MS, 0, this.joinedAt];
      sent = true;
      const reply = (await this.join([this.replicasKey, this.recoveryKey, this.joinedKey], args)) as [number, string, number, string, ...string[]];
      if (reply[0] !== 1) throw new Error('Redis answered after the deadline: the replica had given up on the request');
      const redisNow = Number(reply[1]);
      this.noteContact(redisNow, this.now(), reply[2]);
      this.joinedAt = reply[3];
      const members: Member[] = [];
      for (let i = 4; i + 1 < reply.length; i += 2) members.push({ id: String(reply[i]), joinedAt: Number(reply[i + 1]) });
      this.opts.onMembers?.(members, redisNow);
      if (joining) {
        this.afterOutage = false;
        this.current = 'up';
        this.opts.onStateChange?.('up');
        for (const p of this.participants) p.redisUp();
      }
      this.arm(this.heartbeatMs);
    } catch (err) {
      // A TIME that failed changed nothing; a join or heartbeat that failed may have refreshed this replica's entry.
      if (sent || this.current !== 'down') this.noteFailure(err);
      else this.arm(this.probeMs);
    } finally {
      this.contacting = false;
      if (this.current === 'down' && !this.timer) this.arm(this.probeMs);
    }
  }

  private arm(ms: number): void {
    this.clearTimer();
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.contact();
    }, ms);
    this.timer.unref?.();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
