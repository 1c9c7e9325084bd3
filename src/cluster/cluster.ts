// A replica's part in a cluster (the `cluster:` block): one Redis connection, its membership, the shared rate limiters
// (the LimiterPool's windows for every replica together), and per job the coordination of its runs — a leader lease
// whose holder polls and publishes each run for the others (HA), or this replica's shard of the inventory (sharding).
import type { Registry } from 'prom-client';
import type Redis from 'ioredis';
import { CEILING_GUARD_MS, type SharedLimiterSpec, type SharedLimiters } from '../cloud/accounts';
import { WindowRateLimiter } from '../cloud/rate-limiter';
import { redisUrlDisplay, type ClusterConfig } from '../config/cluster';
import type { Logger } from '../util/log';
import type { CoordinationHooks, JobCoordination, PublishedRun } from './coordination';
import { ClusterEvents } from './events';
import { LeaderLease } from './lease';
import { ClusterMembership } from './membership';
import { createClusterMetrics, type ClusterMetrics } from './metrics';
import { decodeRun, encodeRun } from './published-run';
import { connectClusterRedis, defineScript, type ScriptRunner } from './redis';
import { RedisWindowLimiter } from './redis-window-limiter';
import { AutoSharding, staticShard, type ShardView } from './sharding';

// KEYS[1] the job's lease, KEYS[2] its published run. ARGV: the lease value we hold ("holder|token"), run id, run
// bytes, ttl ms, channel, message. Writes only while the lease is ours (fencing): a leader that lost its lease
// unnoticed (paused, cut off) cannot overwrite its successor's run.
const PUBLISH_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'id', ARGV[2], 'run', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
`;

/** How long a replica waits at most for its first contact with Redis before its start-up decisions (lease, auto shards). */
const FIRST_MEMBERSHIP_WAIT_MS = 3000;

/** Owns nothing: an auto-sharded replica before it knows the membership. */
const NO_SHARD: ShardView = { id: 'none', ordinal: undefined, total: 0, owns: () => false };

export interface JobToCoordinate {
  name: string;
  type: string;
  intervalMs: number;
  staleAfterMs: number;
}

/** With sentinels, how often a replica that cannot reach Redis reconnects, asking the sentinels for the primary. */
const SENTINEL_RECHECK_MS = 2000;

export class Cluster implements SharedLimiters {
  readonly redis: Redis;
  readonly membership: ClusterMembership;
  private readonly events: ClusterEvents;
  private readonly metrics: ClusterMetrics;
  private readonly auto: AutoSharding | undefined;
  private readonly fixedShard: ShardView | undefined;
  private readonly limiters = new Set<RedisWindowLimiter>();
  /** Per product, the local stand-in for its per-source-IP ceiling while Redis is away, and the divisor it was made for. */
  private readonly localCeilings = new Map<string, { limiter: WindowRateLimiter; qps: number; divisor: number }>();
  private readonly publishScript: ScriptRunner;
  private readonly membersWaiters: Array<() => void> = [];
  /** Per job name, its coordination now: a reload replaces a job's before the old one has stopped. */
  private readonly current = new Map<string, JobCoordination>();
  private started = false;
  private stopping = false;
  private failoverWatch: NodeJS.Timeout | undefined;

  constructor(
    readonly config: ClusterConfig,
    logger: Logger,
    registry: Registry,
  ) {
    const log = logger.child({ component: 'cluster' });
    let lastError = '';
    const onError = (err: Error) => {
      // One line per kind of failure, not one per reconnect attempt.
      if (err.message === lastError) return;
      lastError = err.message;
      log.debug({ err }, 'Redis error');
    };
    // Why the connection failed (refused, TLS, auth), for the warning when Redis counts as unavailable: the failed
    // commands that follow only say the stream is not writeable.
    let connectionError = '';
    const onConnectionError = (err: Error) => {
      connectionError = err.message;
      onError(err);
    };
    this.redis = connectClusterRedis({ url: config.redis.url, password: config.redis.password, sentinels: config.redis.sentinels, sentinelPassword: config.redis.sentinelPassword, tls: config.redis.tls, onError: onConnectionError });
    this.events = new ClusterEvents(this.redis, config.redis.key_prefix, onError);
    const sharding = config.sharding;
    this.auto = sharding === 'auto' ? new AutoSharding(config.replica_id, config.lease) : undefined;
    this.fixedShard = sharding && sharding !== 'auto' ? staticShard(sharding.total_shards, sharding.shard) : undefined;
    this.membership = new ClusterMembership({
      redis: this.redis,
      keyPrefix: config.redis.key_prefix,
      replicaId: config.replica_id,
      onError,
      onStateChange: (state) => {
        const reason = connectionError || lastError;
        if (state === 'down') {
          log.warn({ redis: redisUrlDisplay(new URL(config.redis.url)), replicas_last_seen: this.membership.replicas, ...(reason ? { reason } : {}) }, 'Redis cannot be reached: every quota falls back to its local share, leaders poll only within their lease, data are kept');
          if (config.redis.sentinels) this.watchForFailover();
        } else if (state === 'up') {
          this.endFailoverWatch();
          lastError = '';
          connectionError = '';
          log.info({ redis: redisUrlDisplay(new URL(config.redis.url)), replicas: this.membership.replicas }, 'joined the cluster in Redis');
        }
      },
      onMembers: (members, redisNow) => {
        if (this.auto?.update(members, redisNow)) {
          const view = this.auto.view!;
          log.info({ shard_ordinal: view.ordinal ?? 'none', total_shards: view.total }, 'the shards follow the live replicas');
        }
        for (const w of this.membersWaiters.splice(0)) w();
      },
    });
    this.publishScript = defineScript(this.redis, 'csePublish', PUBLISH_LUA);
    this.metrics = createClusterMetrics(registry, {
      degraded: () => this.degraded,
      replicas: () => this.membership.replicas,
      shard: () => (this.fixedShard ?? (this.auto ? (this.auto.view ?? NO_SHARD) : undefined)),
    });
  }

  /**
   * With sentinels, while Redis counts as unavailable: a primary that hangs (stopped, partitioned) keeps the TCP
   * connection up, so ioredis never reconnects and never asks the sentinels again; commands only time out. Every
   * SENTINEL_RECHECK_MS the connection is dropped and made again, which asks the sentinels for the primary now. When
   * Redis is back, the subscriber connection is made again too: it may still sit on the former primary.
   */
  private watchForFailover(): void {
    if (this.failoverWatch || this.stopping) return;
    this.failoverWatch = setInterval(() => {
      if (this.redis.status === 'ready' || this.redis.status === 'connect') this.redis.disconnect(true);
    }, SENTINEL_RECHECK_MS);
    this.failoverWatch.unref();
  }

  private endFailoverWatch(): void {
    if (!this.failoverWatch) return;
    clearInterval(this.failoverWatch);
    this.failoverWatch = undefined;
    if (!this.stopping) this.events.reconnect();
  }

  /** Keeping to local shares: Redis away, or a limiter settling after an outage or a silent replica. */
  get degraded(): boolean {
    return this.membership.state === 'down' || [...this.limiters].some((l) => l.degraded);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.events.start();
    this.membership.start();
  }

  /** Leaves the cluster (the others stop counting this replica at once) and closes the connections. Stop the jobs first. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.failoverWatch);
    for (const l of this.limiters) l.close();
    this.limiters.clear();
    try {
      await this.membership.stop();
    } finally {
      this.events.stop();
      this.redis.disconnect();
    }
  }

  // --- SharedLimiters: the LimiterPool's limiters ----------------------------------------------------------------

  create(spec: SharedLimiterSpec): RedisWindowLimiter & { close(): void } {
    const ceiling = spec.ceiling;
    const limiter = new RedisWindowLimiter({
      membership: this.membership,
      key: spec.key,
      rate: spec.rate,
      guardMs: spec.guardMs,
      onQueueDepth: spec.onQueueDepth,
      onGuardChange: spec.onGuardChange,
      onGrantRoundTrip: (ms) => this.metrics.grantDuration.observe(ms / 1000),
      ...(ceiling
        ? {
            ceiling: {
              // One source IP: one ceiling for every replica behind it; otherwise each has its own.
              key: this.config.shared_egress_ip ? `ip/${ceiling.product}` : `ip/${this.config.replica_id}/${ceiling.product}`,
              rate: ceiling.qps,
              local: (divisor: number) => this.localCeiling(ceiling.product, ceiling.qps, divisor),
            },
          }
        : {}),
    });
    this.limiters.add(limiter);
    const close = limiter.close.bind(limiter);
    limiter.close = () => {
      close();
      this.limiters.delete(limiter);
    };
    return limiter;
  }

  /**
   * The local ceiling of a product while Redis is away: its share when the replicas share an egress IP. One per
   * product, shared by every limiter of its APIs; a larger divisor (more replicas seen) replaces it with a smaller
   * share that keeps its recent calls, a smaller one keeps the stricter share. A reload that changes the product's
   * ceiling (source_ip_qps) replaces it too.
   */
  private localCeiling(product: string, qps: number, divisor: number): WindowRateLimiter {
    const existing = this.localCeilings.get(product);
    const d = Math.max(this.config.shared_egress_ip ? divisor : 1, existing?.divisor ?? 1);
    if (existing && existing.qps === qps && existing.divisor === d) return existing.limiter;
    const limiter = new WindowRateLimiter({ rate: qps / d, guardMs: CEILING_GUARD_MS });
    if (existing) limiter.inheritWindow(existing.limiter);
    this.localCeilings.set(product, { limiter, qps, divisor: d });
    return limiter;
  }

  // --- jobs --------------------------------------------------------------------------------------------------------

  coordinate(job: JobToCoordinate, logger: Logger): JobCoordination {
    const c = this.fixedShard || this.auto ? new ShardCoordination(this, job, this.metrics) : new LeaderCoordination(this, job, logger, this.metrics);
    this.current.set(job.name, c);
    return c;
  }

  /** A job's coordination stopped: its series go unless a newer coordination of the job (a reload) has them. */
  stopped(job: string, c: JobCoordination): void {
    if (this.current.get(job) !== c) return;
    this.current.delete(job);
    for (const g of [this.metrics.leader, this.metrics.publishedBytes, this.metrics.shardInventorySize]) g.remove({ job_name: job });
  }

  /** The shard view now (sharded only). */
  shardView(): ShardView | undefined {
    return this.fixedShard ?? this.auto?.view;
  }

  /** Resolves once this replica is registered in Redis, or after `ms`. */
  joined(ms: number): Promise<void> {
    return this.membership.state === 'up' ? Promise.resolve() : this.nextMembership(ms);
  }

  /** Resolves at the next membership contact, or after `ms`. */
  nextMembership(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.membersWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  lease(job: string, onChange: (leader: boolean) => void, logger: Logger): LeaderLease {
    return new LeaderLease({
      redis: this.redis,
      events: this.events,
      keyPrefix: this.config.redis.key_prefix,
      job,
      replicaId: this.config.replica_id,
      leaseMs: this.config.lease,
      onChange: (leader) => onChange(leader),
      onError: (err) => logger.debug({ err }, 'lease attempt failed'),
    });
  }

  onPublished(listener: (job: string, id: string) => void): () => void {
    return this.events.on('published', listener);
  }

  resultKey(job: string): string {
    return `${this.config.redis.key_prefix}:run:${job}`;
  }

  /** Writes a run while `fence` (the lease value) still holds; false when the lease has passed to another. */
  async publish(job: string, leaseKey: string, fence: string, id: string, bytes: Buffer, ttlMs: number): Promise<boolean> {
    const ok = await this.publishScript([leaseKey, this.resultKey(job)], [fence, id, bytes, Math.max(1000, Math.round(ttlMs)), this.events.channel, ClusterEvents.message('published', job, id)]);
    return ok === 1;
  }
}

/** HA: the lease holder polls and publishes; the others serve its runs and take over when it is gone. */
class LeaderCoordination implements JobCoordination {
  readonly sharded = false;
  private readonly lease: LeaderLease;
  private hooks: CoordinationHooks | undefined;
  private adoptedId: string | undefined;
  private checking: Promise<void> | undefined;
  private recheck = false;
  private checkTimer: NodeJS.Timeout | undefined;
  private unlisten: (() => void) | undefined;
  private seq = 0;
  private stopped = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly job: JobToCoordinate,
    private readonly logger: Logger,
    private readonly metrics: ClusterMetrics,
  ) {
    this.lease = cluster.lease(job.name, (leader) => this.onLeadership(leader), logger);
    metrics.leader.set({ job_name: job.name }, 0);
  }

  polls(): boolean {
    return this.lease.isLeader;
  }

  shard(): undefined {
    return undefined;
  }

  start(hooks: CoordinationHooks): void {
    this.hooks = hooks;
    this.unlisten = this.cluster.onPublished((job, id) => {
      if (job === this.job.name && !this.lease.isLeader && id !== this.adoptedId) void this.check();
    });
    // The first lease attempt once this replica is registered (the connection is up), or Redis is given up on for now.
    void (async () => {
      await this.cluster.joined(FIRST_MEMBERSHIP_WAIT_MS);
      if (this.stopped) return;
      await this.lease.start();
      if (this.lease.isLeader || this.stopped) return;
      await this.check();
      hooks.started();
      hooks.standby();
    })();
    // A missed announcement costs at most this long (the lease's renew period, or the schedule if shorter).
    const every = Math.min(this.job.intervalMs, this.lease.renewMs);
    this.checkTimer = setInterval(() => {
      if (!this.lease.isLeader) void this.check();
    }, every);
    this.checkTimer.unref();
  }

  private onLeadership(leader: boolean): void {
    this.metrics.leader.set({ job_name: this.job.name }, leader ? 1 : 0);
    if (this.stopped) return;
    if (!leader) {
      this.logger.info('not leading this job (another replica holds its lease, or Redis cannot confirm ours): serving the runs the leader publishes');
      this.hooks?.standby();
      return;
    }
    this.logger.info('leading this job: polling it and publishing its runs');
    void this.takeOver();
  }

  /** Leader now: take over the last published run's state, and run at once if a run is due (the leader was gone). */
  private async takeOver(): Promise<void> {
    const latest = await this.check();
    if (!this.lease.isLeader || this.stopped) return;
    const due = latest === undefined || Date.now() - latest >= this.job.intervalMs;
    if (due) this.hooks?.runNow();
    else this.hooks?.started();
  }

  /**
   * Adopts the published run if it is new to this replica; resolves with its producedAt (undefined when there is none
   * or Redis cannot say). One check at a time; a request during one makes it check again after.
   */
  private async check(): Promise<number | undefined> {
    if (this.checking) {
      this.recheck = true;
      await this.checking;
      return this.lastProducedAt;
    }
    this.checking = (async () => {
      do {
        this.recheck = false;
        await this.checkOnce();
      } while (this.recheck && !this.stopped);
    })();
    try {
      await this.checking;
    } finally {
      this.checking = undefined;
    }
    return this.lastProducedAt;
  }

  private lastProducedAt: number | undefined;

  private async checkOnce(): Promise<void> {
    const redis = this.cluster.redis;
    try {
      const key = this.cluster.resultKey(this.job.name);
      const id = await redis.hget(key, 'id');
      if (id === null || id === this.adoptedId) return;
      const bytes = await redis.hgetBuffer(key, 'run');
      if (!bytes) return;
      const run = decodeRun(bytes);
      if (run.type !== this.job.type) {
        this.logger.warn({ published_type: run.type }, 'the published run is of another job type (configurations differ between replicas?); not adopted');
        this.adoptedId = id;
        return;
      }
      this.adoptedId = id;
      this.lastProducedAt = run.producedAt;
      this.metrics.publishedBytes.set({ job_name: this.job.name }, bytes.length);
      await this.hooks?.adopt(run);
    } catch (err) {
      // Redis away (the membership says so) or a run this version cannot read: the last data stay until stale.
      this.logger.debug({ err }, 'cannot read the published run');
    }
  }

  async completed(run: PublishedRun, copyFamilies: boolean): Promise<void> {
    const fence = this.lease.fence;
    if (!fence) return;
    try {
      const bytes = encodeRun(run, { job: this.job.name, type: this.job.type, replica: this.cluster.config.replica_id }, copyFamilies);
      const id = `${this.lease.token}.${++this.seq}`;
      // Kept as long as it may be served: stale_after after the run.
      const ok = await this.cluster.publish(this.job.name, this.lease.key, fence, id, bytes, this.job.staleAfterMs);
      if (ok) {
        this.adoptedId = id;
        this.lastProducedAt = run.producedAt;
        this.metrics.publishedBytes.set({ job_name: this.job.name }, bytes.length);
      } else this.logger.info('the lease passed to another replica during the run: its result is served here only');
    } catch (err) {
      this.logger.debug({ err }, 'cannot publish the run (Redis unavailable): served here only');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unlisten?.();
    if (this.checkTimer) clearInterval(this.checkTimer);
    await this.lease.stop();
    this.cluster.stopped(this.job.name, this);
  }
}

/** Sharding: every replica polls its part of each inventory and serves only that; all share the quotas. */
class ShardCoordination implements JobCoordination {
  readonly sharded = true;

  constructor(
    private readonly cluster: Cluster,
    private readonly job: JobToCoordinate,
    private readonly metrics: ClusterMetrics,
  ) {}

  polls(): boolean {
    return true;
  }

  shard(): ShardView {
    return this.cluster.shardView() ?? NO_SHARD;
  }

  start(hooks: CoordinationHooks): void {
    if (this.cluster.shardView()) return hooks.runNow();
    // Auto: the shards are known at the first contact with Redis.
    void this.cluster.nextMembership(FIRST_MEMBERSHIP_WAIT_MS).then(() => hooks.runNow());
  }

  async completed(run: PublishedRun & { inventorySize?: number }): Promise<void> {
    this.metrics.shardInventorySize.set({ job_name: this.job.name }, run.inventorySize ?? run.targets.length);
  }

  async stop(): Promise<void> {
    this.cluster.stopped(this.job.name, this);
  }
}
