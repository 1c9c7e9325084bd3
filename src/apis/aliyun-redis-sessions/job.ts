// One aliyun_redis_sessions job: one GetRedisAllSession call per instance, all instances at once behind the account's
// limiter; each instance fails on its own.
import type { ApiCaller } from '../../cloud/client';
import type { Job, JobContext, JobHandover, JobRunResult, JobStatus, RunContext, StatusFigure, TargetResult } from '../../core/job-type';
import { aggregateRedisSessions, renderRedisFamilies } from './aggregate';
import { DAS_API_VERSION, dasEndpoint, REDIS_SESSIONS_API, type RedisSessionsConfig } from './config';
import { parseGetRedisAllSession } from './parse';
import { OTHER } from '../shared/top-n';
import { jsonHandover } from '../shared/json-handover';

export class RedisSessionsJob implements Job {
  readonly instanceIds: string[];
  private readonly caller: ApiCaller;
  /** aliyun_redis_client_ips_folded_total per instance, kept across runs. */
  private readonly foldedTotals = new Map<string, number>();
  /** Per instance, its last successful answer's figures for the status page. */
  private readonly last = new Map<string, { sessions: number; listed: number; clientIps: number; nodes: number }>();
  /** Cluster HA: the folded-IPs counters' bases, so the next leader counts on from them. */
  readonly handover: JobHandover = jsonHandover(
    'folded.v1',
    () => [...this.foldedTotals],
    (saved: Array<[string, number]>) => {
      for (const [id, n] of saved) if (this.foldedTotals.has(id)) this.foldedTotals.set(id, n);
    },
  );

  constructor(
    private readonly cfg: RedisSessionsConfig,
    private readonly ctx: JobContext,
  ) {
    this.instanceIds = [...cfg.instance_ids];
    this.caller = ctx.accounts.caller(cfg.account, dasEndpoint(cfg), DAS_API_VERSION);
    for (const id of cfg.instance_ids) this.foldedTotals.set(id, 0);
  }

  async run(run: RunContext): Promise<JobRunResult> {
    // All instances at once: the account's rate limiter paces the calls, and each instance fails on its own.
    const mine = run.shard ? this.instanceIds.filter((id) => run.shard!.owns(id)) : this.instanceIds;
    const targets = await Promise.all(mine.map((id) => this.poll(id, run)));
    return { targets };
  }

  status(): JobStatus {
    const instances: Record<string, StatusFigure[]> = {};
    for (const id of this.instanceIds) {
      const l = this.last.get(id);
      instances[id] = [
        { label: 'sessions', value: l?.sessions, note: l && l.listed < l.sessions ? `${l.listed.toLocaleString('en-US')} listed` : undefined },
        { label: 'client IPs', value: l?.clientIps },
        { label: 'nodes', value: l?.nodes },
      ];
    }
    return { instances };
  }

  private async poll(instanceId: string, run: RunContext): Promise<TargetResult> {
    try {
      const data = await this.caller.call({ api: REDIS_SESSIONS_API, params: { InstanceId: instanceId }, target: instanceId, deadline: run.deadline, signal: run.signal, parse: parseGetRedisAllSession });
      const agg = aggregateRedisSessions(data, {
        maxClientIps: this.cfg.max_client_ips,
        maxCommands: this.cfg.max_commands,
        idleThresholds: this.cfg.idle_thresholds,
      });
      this.last.set(instanceId, { sessions: agg.total, listed: agg.listed, clientIps: agg.clientSessions.size - (agg.clientSessions.has(OTHER) ? 1 : 0) + agg.foldedIps, nodes: agg.nodes.size });
      const folded = (this.foldedTotals.get(instanceId) ?? 0) + agg.foldedIps;
      this.foldedTotals.set(instanceId, folded);
      return { instanceId, ok: true, families: renderRedisFamilies(instanceId, agg, folded, this.ctx.staticLabels) };
    } catch (err) {
      return { instanceId, ok: false, error: err as Error };
    }
  }
}
