// The guarantee of WindowRateLimiter (rate-limiter.ts) held for all replicas together through Redis, per quota key.
//
// The rule: no sliding window (1 s, or 1/rate s below 1/s) at the cloud holds more than `calls` arrivals. Every call
// is recorded in a sorted set with the latest moment it can have arrived (Redis time); a call may start at s only if
// fewer than `calls` recorded calls may have arrived after s - window. Proof sketch: in a window holding calls + 1
// arrivals, take the call granted last; every other one was recorded before it, started no later than it (starts
// are granted in non-decreasing order) and has its latest arrival after its start - window, so its check counted
// `calls` of them and refused.
//
// One round trip per call. The script (one EVALSHA, time from Redis' TIME) does not answer "not yet, poll again": it
// reserves the earliest allowed start s (at most `horizon` ahead) and answers the delay. The replica starts the call
// at its own receive time + delay, which is surely at or after s, and records s + guard + slack as the latest arrival
// (slack: the answer's way back and timer lateness; a call that would start later than s + slack is not started and
// its slot is given back). When the call completes, its completion bound s + (done - sent - delay) is sent along
// with this replica's next grant request, so a call holds its slot until it completed, at most its start + guard,
// without a second round trip: at saturation the next request is never far, and a bound that is never sent only
// keeps the slot until s + guard + slack. The first call of a limiter holds max(guard, 250 ms) and goes out alone
// (slow start: cold paths reach the cloud late). Starts are paced across replicas by a GCRA cell in the same
// script (burst 2% of the rate, as in WindowRateLimiter), so the quota is not spent in one burst per window.
//
// Redis unavailable: the replica falls back to a local WindowRateLimiter at the quota divided by the replicas it
// last saw (at least 2, never the full quota), and is `degraded`. Switch-over, both directions:
// - Redis -> local. Grants reach up to `horizon` ahead and hold their slot up to `maxHold` after their start, and the
//   others keep receiving full grants only until this replica is overdue in the membership (membership.ts), at most
//   overdueMs after its last request that may have reached Redis. So local calls begin a window after that:
//   sharedGrantsEndBy + horizon + maxHold + window. From then on, anyone still reaching Redis is told by the script
//   to keep to its share as well ("settle", below): the shares add up to at most the quota.
// - local -> Redis. A local call can share a window with later calls only until its latest arrival + window. The
//   replica that comes back marks the recovery in Redis with its join, and the script keeps every replica at its
//   share for settleMs = horizon + maxHold + window + the others' reconnect delay after the latest such mark, so no
//   local call ever shares a window with a full shared grant; nothing needs to be uploaded. Settling means: the
//   local window at the share, and each call also checked and recorded in Redis at once ('n': now or not), so the
//   shared grants that follow count it, and calls granted just before the settling began count against it. The
//   same settling applies while any replica is overdue (gone, or calling on its share without Redis), until it is
//   back or its membership entry expired; an emptied Redis loses the log, which the settle period also covers.
// Known limit: a replica cut off from Redis alone for longer than the membership TTL is forgotten by the others
// while it still calls on its share (docs/scaling.md).
import { randomBytes } from 'node:crypto';
import { defaultGuardMs, GUARD_HALF_LIFE_MS, MAX_GUARD_MS, RateLimitAbortedError, WindowRateLimiter } from '../cloud/rate-limiter';
import { rateRule, ruleQps, type RateRule } from '../cloud/rate';
import type { PoolLimiter } from '../cloud/accounts';
import type { ClusterMembership, MembershipParticipant } from './membership';
import { defineScript, type ScriptRunner } from './redis';

// One grant for one or two quotas at once: the (account or quota group, API) window and, when the API's product has
// one, its per-source-IP ceiling, which every call of the product counts against whatever its account and API. Both
// are checked and recorded in the same script, so a call starts when both allow it and takes a slot in each: two
// limiters in a row would start the call later than the first grant assumed.
// KEYS: 1 replicas, 2 recovery (membership.ts), then per quota: log (zset member -> latest arrival), pace (hash: tat,
//       last start).
// ARGV: 1 deadline, 2 mode ('g' reserve | 'n' now or not | 'p' probe), 3 horizon ms, 4 hold ms, 5 member,
//       6 replica id, 7 replica ttl ms, 8 overdue ms, 9 settle ms, 10 quotas (1 or 2), then per quota 5 values:
//       calls, window ms, pacing interval ms, pacing tolerance ms, key ttl ms; then pairs (member, completion bound |
//       'x' for a grant not used), applied to every quota's log.
// Returns {status, ms, now, replicas, settle}: status 1 granted (ms: delay until the start), 0 not yet (ms: retry
// after), 2 keep to your share (settle), 3 deadline passed (nothing changed).
const GRANT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local function f(x) return string.format('%.3f', x) end
if now > tonumber(ARGV[1]) then return {3, '0', f(now), 0, 0} end
local q = tonumber(ARGV[10])
local opsFrom = 11 + 5 * q
for i = opsFrom, #ARGV, 2 do
  for k = 1, q do
    local log = KEYS[1 + 2 * k]
    if ARGV[i + 1] == 'x' then redis.call('ZREM', log, ARGV[i]) else redis.call('ZADD', log, 'XX', ARGV[i + 1], ARGV[i]) end
  end
end
local replicas = KEYS[1]
local replicaTtl = tonumber(ARGV[7])
redis.call('ZREMRANGEBYSCORE', replicas, '-inf', f(now - replicaTtl))
redis.call('ZADD', replicas, f(now), ARGV[6])
redis.call('PEXPIRE', replicas, replicaTtl)
local count = redis.call('ZCARD', replicas)
local settle = 0
if redis.call('ZCOUNT', replicas, '-inf', '(' .. f(now - tonumber(ARGV[8]))) > 0 then settle = 1 end
local back = redis.call('GET', KEYS[2])
if back and now < tonumber(back) + tonumber(ARGV[9]) then settle = 1 end
local mode = ARGV[2]
if mode == 'p' then return {0, '0', f(now), count, settle} end
if mode == 'g' and settle == 1 then return {2, '0', f(now), count, 1} end
local s = now
local tats = {}
for k = 1, q do
  local log, pace, a = KEYS[1 + 2 * k], KEYS[2 + 2 * k], 10 + 5 * (k - 1)
  local calls, win = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  redis.call('ZREMRANGEBYSCORE', log, '-inf', f(now - win))
  local n = redis.call('ZCARD', log)
  if n >= calls then
    local e = redis.call('ZRANGE', log, n - calls, n - calls, 'WITHSCORES')
    s = math.max(s, tonumber(e[2]) + win)
  end
  local st = redis.call('HMGET', pace, 'tat', 'last')
  local tat, last = tonumber(st[1]) or 0, tonumber(st[2]) or 0
  tats[k] = tat
  s = math.max(s, last)
  if mode == 'g' then s = math.max(s, tat - tonumber(ARGV[a + 4])) end
end
if mode == 'n' and s > now then return {0, f(s - now), f(now), count, settle} end
local horizon = tonumber(ARGV[3])
if s - now > horizon then return {0, f(s - now - horizon), f(now), count, settle} end
for k = 1, q do
  local log, pace, a = KEYS[1 + 2 * k], KEYS[2 + 2 * k], 10 + 5 * (k - 1)
  redis.call('ZADD', log, f(s + tonumber(ARGV[4])), ARGV[5])
  redis.call('HSET', pace, 'tat', f(math.max(tats[k], s) + tonumber(ARGV[a + 3])), 'last', f(s))
  redis.call('PEXPIRE', log, ARGV[a + 5])
  redis.call('PEXPIRE', pace, ARGV[a + 5])
end
return {1, f(s - now), f(now), count, settle}
`;

/** Slack for the answer's way back and timer lateness: 3 x the smoothed round trip, within these bounds. */
const MIN_SLACK_MS = 10;
const MAX_SLACK_MS = 50;
/** Piggybacked completion bounds per request (the rest go with the next one). */
const MAX_OPS_PER_REQUEST = 64;

export interface RedisWindowLimiterOptions {
  membership: ClusterMembership;
  /** What the quota belongs to, e.g. "acme/BatchQuerySessionByClientIds" or "ip/10.0.0.7"; names the Redis keys. */
  key: string;
  /** Calls per second for all replicas together, possibly fractional (rateRule() as for WindowRateLimiter). */
  rate: number;
  /** Default defaultGuardMs(rate), as for WindowRateLimiter. */
  guardMs?: number;
  /** Largest burst of back-to-back starts across replicas (default 2% of the rate, at least 1). */
  burst?: number;
  /** Grants this replica may hold or have asked for ahead of its calls (default 4). */
  maxAhead?: number;
  onQueueDepth?: (depth: number) => void;
  onGuardChange?: (guardMs: number) => void;
  /** Called when the replica falls back to its local share (true) and when it uses the shared quota again (false). */
  onDegradedChange?: (degraded: boolean) => void;
  /** Round trip of each grant request in ms (for a latency histogram). */
  onGrantRoundTrip?: (ms: number) => void;
  /**
   * A wider quota every call also counts against (a product's per-source-IP ceiling), granted in the same script. Its
   * `local` limiter stands for it while Redis cannot be reached: one per ceiling, shared by every limiter counting
   * against it, at the ceiling's local share.
   */
  ceiling?: { key: string; rate: number; local: (divisor: number) => WindowRateLimiter };
  now?: () => number;
}

type Mode = 'connecting' | 'shared' | 'settle' | 'local';

/** Counts since the limiter was made (for metrics and the benchmark). */
export interface RedisLimiterStats {
  /** Grant requests answered (each one round trip). */
  requests: number;
  granted: number;
  /** Answered "not yet" (a reservation would have reached past the horizon, or a settling check found no room). */
  notYet: number;
  /** Grants given back: the call would have started too late for the slot recorded, or nobody was waiting any more. */
  givenBack: number;
  /** Calls started on the local share without Redis. */
  local: number;
}

interface Waiter {
  fn: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
  /** queued: in this.queue; local: in the local limiter; checking: its Redis check is under way. */
  phase: 'queued' | 'local' | 'checking' | 'started' | 'rejected';
  localAbort?: AbortController;
  /** Not to be handed to the local limiter before this (a Redis check said "not yet"). */
  notBefore: number;
}

interface Grant {
  member: string;
  /** Redis time of the allowed start. */
  s: number;
  delay: number;
  sentAt: number;
  /** Earliest local moment surely at or after s. */
  startAt: number;
  hold: number;
  slowStart: boolean;
}

interface Reply {
  status: number;
  ms: number;
  /** Redis time when the script ran. */
  redisNow: number;
  settle: boolean;
  sentAt: number;
}

/** Abort reasons of the local limiter's signals: taken back into this queue, or cancelled by cancelAll(). */
const REQUEUE = Symbol('requeue');
const CANCEL = Symbol('cancel');

export class RedisWindowLimiter implements PoolLimiter, MembershipParticipant {
  readonly rule: RateRule;
  readonly guardMs: number;
  readonly key: string;
  private readonly membership: ClusterMembership;
  private readonly windowMs: number;
  private readonly horizonMs: number;
  /** Longest any grant holds its slot after its start (slow start or widened guard, plus the largest slack). */
  private readonly maxHoldMs: number;
  private readonly settleMs: number;
  private readonly maxAhead: number;
  /** The Redis keys (log, pace) and rule of each quota a grant covers: this limiter's, then the ceiling's. */
  private readonly quotas: Array<{ log: string; pace: string; args: Array<string | number> }>;
  /** The longest window among them: what the switch-over periods must cover. */
  private readonly spanMs: number;
  private readonly script: ScriptRunner;
  private readonly now: () => number;
  private readonly memberPrefix = randomBytes(6).toString('base64url');
  private memberSeq = 0;
  private mode: Mode = 'connecting';
  private isDegraded = false;
  private readonly queue: Waiter[] = [];
  private queueHead = 0;
  private readonly inLocal = new Set<Waiter>();
  private readonly checking = new Set<Waiter>();
  private waiting = 0;
  private readonly reservations: Grant[] = [];
  private inflight = 0;
  private retryAt = -Infinity;
  readonly stats: RedisLimiterStats = { requests: 0, granted: 0, notYet: 0, givenBack: 0, local: 0 };
  private readonly ops: Array<{ member: string; value: string; at: number }> = [];
  private warm = false;
  private warming = false;
  private local: WindowRateLimiter | undefined;
  private localDivisor = 0;
  private blackoutEnd = -Infinity;
  private rttMs = 1;
  private widenedGuardMs = 0;
  private widenedAt = 0;
  private reportedGuardMs: number;
  private grantTimer: NodeJS.Timeout | undefined;
  private pumpTimer: NodeJS.Timeout | undefined;
  private pumpTimerAt = Infinity;
  private probing = false;
  private readonly detach: () => void;
  private closed = false;

  constructor(private readonly opts: RedisWindowLimiterOptions) {
    this.membership = opts.membership;
    this.key = opts.key;
    this.rule = rateRule(opts.rate);
    this.windowMs = this.rule.windowMs;
    this.guardMs = opts.guardMs ?? defaultGuardMs(ruleQps(this.rule));
    this.horizonMs = Math.min(this.windowMs, Math.max(250, (10 * this.windowMs) / this.rule.calls));
    this.maxHoldMs = Math.max(MAX_GUARD_MS, this.guardMs) + MAX_SLACK_MS;
    const ceilingRule = opts.ceiling ? rateRule(opts.ceiling.rate) : undefined;
    this.spanMs = Math.max(this.windowMs, ceilingRule?.windowMs ?? 0);
    this.settleMs = this.horizonMs + this.maxHoldMs + this.spanMs + this.membership.rejoinSpreadMs;
    this.maxAhead = Math.max(1, opts.maxAhead ?? 4);
    const quota = (key: string, rule: RateRule, burst: number | undefined) => {
      const interval = rule.windowMs / rule.calls;
      const cells = Math.max(1, Math.min(rule.calls, burst ?? Math.ceil(rule.calls * 0.02)));
      const keyTtlMs = 2 * rule.windowMs + this.horizonMs + this.maxHoldMs + 1000;
      const base = `${this.membership.keyPrefix}:limit:${key}`;
      return { log: `${base}:log`, pace: `${base}:pace`, args: [rule.calls, rule.windowMs, interval.toFixed(3), ((cells - 1) * interval).toFixed(3), keyTtlMs] };
    };
    this.quotas = [quota(opts.key, this.rule, opts.burst)];
    if (opts.ceiling && ceilingRule) this.quotas.push(quota(opts.ceiling.key, ceilingRule, undefined));
    this.script = defineScript(this.membership.redis, 'cseGrant', GRANT_LUA);
    this.now = opts.now ?? (() => performance.now());
    this.reportedGuardMs = this.guardMs;
    this.detach = this.membership.attach(this);
    if (this.membership.state === 'up') this.mode = 'shared';
    else if (this.membership.state === 'down') this.redisDown(this.membership.sharedGrantsEndBy);
  }

  /** True while this replica keeps to its local share of the quota (Redis unreachable, or the cluster settling). */
  get degraded(): boolean {
    return this.isDegraded;
  }

  get currentGuardMs(): number {
    if (this.widenedGuardMs <= this.guardMs) return this.guardMs;
    return this.guardMs + (this.widenedGuardMs - this.guardMs) * 2 ** (-(this.now() - this.widenedAt) / GUARD_HALF_LIFE_MS);
  }

  get queueDepth(): number {
    return this.waiting;
  }

  /** As WindowRateLimiter.noteThrottled: once per window, doubling up to MAX_GUARD_MS; this replica's guard only. */
  noteThrottled(): void {
    if (this.widenedGuardMs > 0 && this.now() - this.widenedAt < this.windowMs) return;
    this.widenedGuardMs = Math.min(MAX_GUARD_MS, Math.max(this.currentGuardMs * 2, this.guardMs + 10));
    this.widenedAt = this.now();
    this.local?.noteThrottled();
    this.reportGuard();
  }

  schedule<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(new RateLimitAbortedError(signal.reason));
    if (this.closed) return Promise.reject(new RateLimitAbortedError());
    return new Promise<T>((resolve, reject) => {
      const w: Waiter = { fn, resolve: resolve as (v: unknown) => void, reject, signal, phase: 'queued', notBefore: -Infinity };
      if (signal) {
        w.onAbort = () => this.abortWaiter(w, signal.reason);
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.queue.push(w);
      this.waiting++;
      this.reportDepth();
      this.pump();
    });
  }

  cancelAll(): void {
    for (let i = this.queueHead; i < this.queue.length; i++) this.rejectWaiter(this.queue[i], undefined);
    this.queue.length = 0;
    this.queueHead = 0;
    for (const w of [...this.inLocal]) w.localAbort?.abort(CANCEL);
    for (const w of [...this.checking]) this.rejectWaiter(w, undefined);
    for (const g of this.reservations.splice(0)) this.giveBack(g);
    if (this.grantTimer) clearTimeout(this.grantTimer);
    this.grantTimer = undefined;
    this.clearPumpTimer();
    this.reportDepth();
  }

  /** cancelAll(), and this limiter stops following the membership (it is being dropped). */
  close(): void {
    this.closed = true;
    this.cancelAll();
    this.local?.cancelAll();
    this.local?.detach();
    this.detach();
  }

  // --- MembershipParticipant -----------------------------------------------------------------------------------

  redisDown(sharedGrantsEndBy: number): void {
    if (this.closed) return;
    this.blackoutEnd = Math.max(this.blackoutEnd, sharedGrantsEndBy + this.horizonMs + this.maxHoldMs + this.spanMs);
    if (this.mode !== 'local') {
      this.mode = 'local';
      this.setDegraded(true);
    }
    this.pump();
  }

  redisUp(): void {
    if (this.closed) return;
    // Back from an outage: at our share still, and checked in Redis, until the script says the cluster has settled.
    if (this.mode === 'connecting') this.mode = 'shared';
    else if (this.mode === 'local') this.mode = 'settle';
    this.pump();
  }

  // --- dispatch ------------------------------------------------------------------------------------------------

  private pump(): void {
    if (this.closed) return;
    if (this.mode === 'shared') this.requestGrants();
    else if (this.mode === 'local' || this.mode === 'settle') this.feedLocal();
    if (this.mode === 'settle' && this.waiting === 0) this.probeSettle();
  }

  private setDegraded(value: boolean): void {
    if (this.isDegraded === value) return;
    this.isDegraded = value;
    this.opts.onDegradedChange?.(value);
  }

  /** The script said: keep to your share (a replica is overdue, or the cluster is back from an outage). */
  private toSettle(): void {
    if (this.mode !== 'shared') return;
    this.mode = 'settle';
    this.setDegraded(true);
  }

  /** The script said: nobody is overdue and no recovery is under way. */
  private toShared(): void {
    if (this.mode !== 'settle') return;
    this.mode = 'shared';
    this.dropLocal();
    this.setDegraded(false);
  }

  // --- shared mode: reservations -------------------------------------------------------------------------------

  private requestGrants(): void {
    const now = this.now();
    for (;;) {
      const outstanding = this.inflight + this.reservations.length;
      if (this.queue.length - this.queueHead <= outstanding || outstanding >= this.maxAhead) return;
      if (!this.warm && (outstanding > 0 || this.warming)) return;
      if (now < this.retryAt) {
        this.armPump(this.retryAt);
        return;
      }
      void this.requestGrant();
    }
  }

  private async requestGrant(): Promise<void> {
    const slowStart = !this.warm;
    if (slowStart) this.warming = true;
    const hold = slowStart ? Math.max(this.currentGuardMs, MAX_GUARD_MS) + this.slackMs() : this.currentGuardMs + this.slackMs();
    const member = this.nextMember();
    this.inflight++;
    let reply: Reply;
    try {
      reply = await this.send('g', member, hold);
    } catch (err) {
      this.inflight--;
      if (slowStart) this.warming = false;
      this.membership.noteFailure(err);
      this.pump();
      return;
    }
    this.inflight--;
    const receivedAt = this.now();
    if (reply.status === 1 && !this.closed) {
      const g: Grant = { member, s: reply.redisNow + reply.ms, delay: reply.ms, sentAt: reply.sentAt, startAt: receivedAt + reply.ms, hold, slowStart };
      // Starts are granted in order, but each answer's way back differs: keep the earliest local start first.
      let i = this.reservations.length;
      while (i > 0 && this.reservations[i - 1].startAt > g.startAt) i--;
      this.reservations.splice(i, 0, g);
      if (i === 0 && this.grantTimer) {
        clearTimeout(this.grantTimer);
        this.grantTimer = undefined;
      }
      this.armGrantTimer();
    } else {
      if (reply.status === 1) this.ops.push({ member, value: 'x', at: receivedAt });
      if (slowStart) this.warming = false;
      if (reply.status === 0) this.retryAt = receivedAt + reply.ms;
      if (reply.status === 2) this.toSettle();
    }
    this.pump();
  }

  private armGrantTimer(): void {
    if (this.grantTimer || this.reservations.length === 0) return;
    const wait = Math.max(0, Math.ceil(this.reservations[0].startAt - this.now()));
    this.grantTimer = setTimeout(() => {
      this.grantTimer = undefined;
      this.startReservations();
    }, wait);
  }

  private startReservations(): void {
    const now = this.now();
    while (this.reservations.length > 0 && this.reservations[0].startAt <= now) {
      const g = this.reservations.shift()!;
      const w = this.takeQueued();
      if (!w) {
        this.giveBack(g);
        continue;
      }
      // Not before s (startAt), and not so late that the call could arrive after the hold recorded for it.
      if (now - g.sentAt - g.delay > g.hold - this.currentGuardMs) {
        this.giveBack(g);
        this.requeueFront([w]);
        continue;
      }
      this.runGranted(w, g);
    }
    this.armGrantTimer();
    this.pump();
  }

  /** A grant that will not be used: its slot is freed with the next request. */
  private giveBack(g: Grant): void {
    this.stats.givenBack++;
    this.ops.push({ member: g.member, value: 'x', at: this.now() });
    if (g.slowStart) this.warming = false;
  }

  private runGranted(w: Waiter, g: Grant): Promise<void> {
    return this.start(w, (doneAt) => {
      // Redis read s - delay no earlier than we sent, so the call ended by s + (done - sent - delay) in Redis time.
      const held = doneAt - g.sentAt - g.delay;
      if (held < g.hold || g.slowStart) this.ops.push({ member: g.member, value: (g.s + held).toFixed(3), at: doneAt });
      if (g.slowStart) {
        this.warm = true;
        this.warming = false;
      }
      this.pump();
    });
  }

  // --- local share (Redis away, or settling) -------------------------------------------------------------------

  private ensureLocal(): WindowRateLimiter {
    const divisor = this.membership.shareDivisor;
    if (this.local && divisor <= this.localDivisor) return this.local;
    // More replicas than when the local limiter was made: a smaller share, keeping its recent calls.
    const previous = this.local;
    // The guard plus the largest slack: while settling, a call starts one shared check (a round trip) after the local
    // window let it go, and one that would start later than the slack is not started.
    const ceiling = this.opts.ceiling?.local(divisor);
    const next = new WindowRateLimiter({ rate: ruleQps(this.rule) / divisor, guardMs: this.guardMs + MAX_SLACK_MS, now: this.now, shared: ceiling ? [ceiling] : [] });
    if (previous) {
      this.takeBackFromLocal();
      next.inheritWindow(previous);
      previous.cancelAll();
      previous.detach();
    }
    if (this.widenedGuardMs > this.guardMs) next.noteThrottled();
    this.local = next;
    this.localDivisor = divisor;
    return next;
  }

  private dropLocal(): void {
    if (!this.local) return;
    this.takeBackFromLocal();
    this.local.cancelAll();
    this.local.detach();
    this.local = undefined;
    this.localDivisor = 0;
  }

  /** Waiters still queued in the local limiter go back to the front of this queue, in order. */
  private takeBackFromLocal(): void {
    const back = [...this.inLocal];
    this.inLocal.clear();
    for (const w of back) {
      w.phase = 'queued';
      w.localAbort?.abort(REQUEUE);
      w.localAbort = undefined;
    }
    this.requeueFront(back);
  }

  private feedLocal(): void {
    const now = this.now();
    const local = this.ensureLocal();
    while (this.queueHead < this.queue.length) {
      const w = this.queue[this.queueHead];
      const at = Math.max(this.blackoutEnd, w.notBefore);
      if (at > now) {
        this.armPump(at);
        return;
      }
      this.queueHead++;
      this.compact();
      w.phase = 'local';
      const ctl = new AbortController();
      w.localAbort = ctl;
      this.inLocal.add(w);
      local.schedule(() => this.startFromLocal(w), ctl.signal).catch((err: unknown) => {
        if (ctl.signal.reason === REQUEUE) return;
        // Aborted by its caller (abortWaiter passed the reason) or by cancelAll().
        this.inLocal.delete(w);
        this.rejectWaiter(w, err instanceof RateLimitAbortedError && err.reason !== CANCEL ? err.reason : undefined);
      });
    }
  }

  /** The local window lets the call go. Resolves when the call completed (the local limiter stamps its slot then). */
  private async startFromLocal(w: Waiter): Promise<void> {
    this.inLocal.delete(w);
    w.localAbort = undefined;
    if (w.phase !== 'local') return;
    if (this.mode === 'local' && this.now() >= this.blackoutEnd) {
      this.stats.local++;
      return this.start(w, () => (this.warm = true));
    }
    if (this.mode === 'local' || this.mode === 'connecting') {
      // Redis just went away and the blackout started: this slot stays unused.
      this.requeueFront([w]);
      this.pump();
      return;
    }
    // Settling (or just back to shared): the call must pass the shared check too, now or not at all.
    w.phase = 'checking';
    this.checking.add(w);
    const member = this.nextMember();
    const hold = (this.warm ? this.currentGuardMs : Math.max(this.currentGuardMs, MAX_GUARD_MS)) + this.slackMs();
    let reply: Reply;
    try {
      reply = await this.send('n', member, hold);
    } catch (err) {
      this.checking.delete(w);
      if (w.phase === 'checking') this.requeueFront([w]);
      this.membership.noteFailure(err);
      return;
    }
    this.checking.delete(w);
    const now = this.now();
    const granted = reply.status === 1;
    const late = now - reply.sentAt > hold - this.currentGuardMs;
    if (!reply.settle) this.toShared();
    if (w.phase !== 'checking') {
      // Aborted or cancelled meanwhile.
      if (granted) this.ops.push({ member, value: 'x', at: now });
      this.pump();
      return;
    }
    if (!granted || late) {
      if (granted) {
        this.stats.givenBack++;
        this.ops.push({ member, value: 'x', at: now });
      }
      w.phase = 'queued';
      if (reply.status === 0) w.notBefore = now + reply.ms;
      this.requeueFront([w]);
      this.pump();
      return;
    }
    const slowStart = !this.warm;
    this.warm = true;
    return this.runGranted(w, { member, s: reply.redisNow, delay: 0, sentAt: reply.sentAt, startAt: now, hold, slowStart });
  }

  /** Idle while settling: ask now and then whether the shared quota is back, so `degraded` does not stay stale. */
  private probeSettle(): void {
    if (this.probing || this.closed) return;
    this.probing = true;
    setTimeout(() => {
      void (async () => {
        try {
          if (this.mode !== 'settle' || this.waiting > 0) return;
          const reply = await this.send('p', '', 0);
          if (!reply.settle) this.toShared();
        } catch (err) {
          this.membership.noteFailure(err);
        } finally {
          this.probing = false;
          if (this.mode === 'settle' && this.waiting === 0) this.probeSettle();
        }
      })();
    }, this.membership.probeMs).unref?.();
  }

  // --- the round trip ------------------------------------------------------------------------------------------

  private async send(mode: 'g' | 'n' | 'p', member: string, holdMs: number): Promise<Reply> {
    const m = this.membership;
    const now = this.now();
    // Completion bounds older than a window no longer matter: their slots have expired.
    while (this.ops.length > 0 && this.ops[0].at < now - this.spanMs) this.ops.shift();
    const ops = this.ops.splice(0, MAX_OPS_PER_REQUEST);
    const args: Array<string | number> = [
      m.clock.deadline(m.commandTimeoutMs).toFixed(3),
      mode,
      this.horizonMs,
      holdMs.toFixed(3),
      member,
      m.replicaId,
      m.ttlMs,
      m.overdueMs,
      this.settleMs,
      this.quotas.length,
      ...this.quotas.flatMap((q) => q.args),
    ];
    const sentAt = this.now();
    for (const op of ops) args.push(op.member, op.value);
    const keys = [m.replicasKey, m.recoveryKey, ...this.quotas.flatMap((q) => [q.log, q.pace])];
    const raw = (await this.script(keys, args)) as [number, string, string, number, number];
    const receivedAt = this.now();
    const rtt = receivedAt - sentAt;
    this.rttMs = 0.8 * this.rttMs + 0.2 * rtt;
    this.opts.onGrantRoundTrip?.(rtt);
    const [status, ms, redisNow, replicas, settle] = raw;
    this.stats.requests++;
    if (status === 1) this.stats.granted++;
    if (status === 0 && mode !== 'p') this.stats.notYet++;
    if (status === 3) throw new Error('Redis answered after the deadline: the replica had given up on the request');
    m.noteContact(Number(redisNow), receivedAt, replicas);
    return { status, ms: Number(ms), redisNow: Number(redisNow), settle: settle === 1, sentAt };
  }

  private start(w: Waiter, onDone: (doneAt: number) => void): Promise<void> {
    w.phase = 'started';
    this.waiting--;
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
    this.reportDepth();
    let p: Promise<unknown>;
    try {
      p = w.fn();
    } catch (err) {
      p = Promise.reject(err);
    }
    return p.then(w.resolve, w.reject).finally(() => onDone(this.now()));
  }

  // --- queue ---------------------------------------------------------------------------------------------------

  private takeQueued(): Waiter | undefined {
    if (this.queueHead >= this.queue.length) return undefined;
    const w = this.queue[this.queueHead++];
    this.compact();
    return w;
  }

  private requeueFront(ws: Waiter[]): void {
    for (let i = ws.length - 1; i >= 0; i--) {
      const w = ws[i];
      if (w.phase === 'rejected' || w.phase === 'started') continue;
      w.phase = 'queued';
      if (this.queueHead > 0) this.queue[--this.queueHead] = w;
      else this.queue.unshift(w);
    }
  }

  private compact(): void {
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  private abortWaiter(w: Waiter, reason: unknown): void {
    if (w.phase === 'queued') {
      const i = this.queue.indexOf(w, this.queueHead);
      if (i >= 0) this.queue.splice(i, 1);
      this.rejectWaiter(w, reason);
    } else if (w.phase === 'local') {
      w.localAbort?.abort(reason);
    } else if (w.phase === 'checking') {
      this.rejectWaiter(w, reason);
    }
    this.compact();
    this.reportDepth();
  }

  private rejectWaiter(w: Waiter, reason: unknown): void {
    if (w.phase === 'rejected' || w.phase === 'started') return;
    w.phase = 'rejected';
    this.waiting--;
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
    w.reject(new RateLimitAbortedError(reason));
  }

  // --- small helpers -------------------------------------------------------------------------------------------

  private nextMember(): string {
    return `${this.memberPrefix}.${(this.memberSeq++).toString(36)}`;
  }

  private slackMs(): number {
    return Math.min(MAX_SLACK_MS, Math.max(MIN_SLACK_MS, 3 * this.rttMs));
  }

  private armPump(at: number): void {
    if (this.pumpTimer && this.pumpTimerAt <= at) return;
    this.clearPumpTimer();
    this.pumpTimerAt = at;
    this.pumpTimer = setTimeout(
      () => {
        this.pumpTimer = undefined;
        this.pumpTimerAt = Infinity;
        this.pump();
      },
      Math.max(0, Math.ceil(at - this.now())),
    );
  }

  private clearPumpTimer(): void {
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.pumpTimer = undefined;
    this.pumpTimerAt = Infinity;
  }

  private reportGuard(): void {
    const g = this.currentGuardMs;
    if (Math.abs(g - this.reportedGuardMs) < 1) return;
    this.reportedGuardMs = g;
    this.opts.onGuardChange?.(g);
  }

  private reportDepth(): void {
    this.opts.onQueueDepth?.(this.waiting);
  }
}
