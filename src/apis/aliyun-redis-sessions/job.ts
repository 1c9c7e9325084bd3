// Job type aliyun_redis_sessions: the current sessions of ApsaraDB for Redis instances via DAS GetRedisAllSession
// (das 2020-01-16, called in cn-shanghai whatever the instance's region), exported as bounded aggregates: per node,
// per source IP (capped), per command (capped), idle over thresholds, buffers, pub/sub, MULTI, blocked, oldest age.
import { z } from 'zod';
import type { ApiCaller } from '../../cloud/api-client';
import type { CommonJobConfig } from '../../config/schema';
import { durationMs } from '../../config/schema';
import { FamilyBuilder, formatValue, joinLabels, renderLabels, type MetricFamily } from '../../metrics/family';
import { parseGetRedisAllSession, REDIS_SESSIONS_API, type RedisSessionsData } from './parse';
import { endpointUrl, instanceIdList } from '../shared/endpoint';
import { addTo, foldTopN, OTHER } from '../shared/top-n';
import type { ApiUsage, Job, JobContext, JobRunResult, JobType, RunContext, TargetResult } from '../../core/job-type';

export const DAS_API_VERSION = '2020-01-16';
export const DEFAULT_DAS_ENDPOINT = 'https://das.cn-shanghai.aliyuncs.com';
/**
 * GetRedisAllSession has no documented QPS. Each call makes DAS run CLIENT LIST on every proxy and data node of the
 * instance, so it is a diagnostics call, not a lookup: 5 calls/s per account is far below what a gateway default
 * would allow, yet polls 300 instances a minute. Raise it with `accounts[].qps.GetRedisAllSession` if Alibaba
 * grants more; every job of the account shares the limit.
 */
export const DEFAULT_REDIS_SESSIONS_QPS = 5;
const REFRESH_NOTE = 'Refreshed on the job schedule, not at scrape time.';
/** Label value for a session without a node, client IP or command. */
const UNKNOWN = 'unknown';
const MAX_LABEL_CHARS = 128;

/** Seconds: a number of seconds, or a duration string ("5m"). */
const idleThreshold = durationMs.transform((ms) => ms / 1000);

const shape = {
  account: z.string(),
  instance_ids: instanceIdList,
  endpoint: endpointUrl.optional(),
  /** Source IPs with their own series; the rest are summed into client_ip="other". */
  max_client_ips: z.number().int().min(1).max(100_000).default(200),
  /** Commands with their own series; the rest are summed into command="other". */
  max_commands: z.number().int().min(1).max(10_000).default(50),
  /** Idle thresholds (seconds or durations) for aliyun_redis_idle_sessions. */
  idle_thresholds: z.array(idleThreshold).max(32).default([60, 300, 3600]),
};

export type RedisSessionsConfig = CommonJobConfig & z.infer<z.ZodObject<typeof shape>>;

export const aliyunRedisSessions: JobType<RedisSessionsConfig> = {
  type: 'aliyun_redis_sessions',
  provider: 'aliyun',
  schema: shape,
  apiQps: { [REDIS_SESSIONS_API]: DEFAULT_REDIS_SESSIONS_QPS },
  labelNames: ['instance_id', 'node_id', 'client_ip', 'command', 'idle_seconds_min'],
  instanceIds: (cfg) => cfg.instance_ids,
  plan(cfg): ApiUsage[] {
    const n = cfg.instance_ids.length;
    return [{ account: cfg.account, api: REDIS_SESSIONS_API, callsPerRun: n, basis: `${n} instance${n === 1 ? '' : 's'}, one call each` }];
  },
  create(cfg, ctx) {
    return new RedisSessionsJob(cfg, ctx);
  },
};

/** Everything the job exports for one instance, computed from one answer; exported for tests. */
export interface RedisAggregates {
  total: number;
  listed: number;
  nodes: Map<string, number>;
  /** Sessions per kept source IP, plus OTHER when some were folded. */
  clientSessions: Map<string, number>;
  foldedIps: number;
  commands: Map<string, number>;
  idle: Array<[number, number]>;
  outputBuffer: number;
  /** Same keys as clientSessions (plus OTHER when a listed session's IP is not a kept one). */
  clientOutputBuffer: Map<string, number>;
  clientQueryBuffer: Map<string, number>;
  pubsub: number;
  multi: number;
  blocked: number;
  oldestAge: number;
}

function labelValue(v: string): string {
  const t = v.trim();
  return t === '' ? UNKNOWN : t.length > MAX_LABEL_CHARS ? t.slice(0, MAX_LABEL_CHARS) : t;
}

export function aggregateRedisSessions(data: RedisSessionsData, opts: { maxClientIps: number; maxCommands: number; idleThresholds: readonly number[] }): RedisAggregates {
  const nodes = new Map<string, number>();
  const commandCounts = new Map<string, number>();
  let outputBuffer = 0;
  let pubsub = 0;
  let multi = 0;
  let blocked = 0;
  let oldestAge = 0;
  const thresholds = [...new Set(opts.idleThresholds)].sort((a, b) => a - b);
  const idleCounts = new Array<number>(thresholds.length).fill(0);

  // Per-IP session counts come from SourceStats (every session, listed or not); without it, from the list.
  const perIp = new Map<string, number>();
  if (data.sourceStats) for (const s of data.sourceStats) addTo(perIp, labelValue(s.key), s.count);
  else for (const s of data.sessions) addTo(perIp, labelValue(s.clientIp), 1);
  const folded = foldTopN(perIp, opts.maxClientIps);
  const clientSessions = new Map(folded.kept);
  if (folded.foldedCount > 0) addTo(clientSessions, OTHER, folded.otherValue);
  // Buffers use the same kept IPs, so every client_ip series of the three families means the same clients.
  const clientOutputBuffer = new Map<string, number>();
  const clientQueryBuffer = new Map<string, number>();
  for (const ip of clientSessions.keys()) {
    clientOutputBuffer.set(ip, 0);
    clientQueryBuffer.set(ip, 0);
  }

  for (const s of data.sessions) {
    addTo(nodes, labelValue(s.nodeId), 1);
    addTo(commandCounts, labelValue(s.cmd).toLowerCase(), 1);
    for (let t = 0; t < thresholds.length; t++) if (s.idle >= thresholds[t]) idleCounts[t]++;
    outputBuffer += s.omem;
    let ip = labelValue(s.clientIp);
    if (ip === OTHER || !clientSessions.has(ip)) ip = OTHER;
    addTo(clientOutputBuffer, ip, s.omem);
    addTo(clientQueryBuffer, ip, s.qbuf);
    if (s.sub > 0 || s.psub > 0) pubsub++;
    // CLIENT LIST's multi is -1 outside MULTI and the number of queued commands (from 0) inside.
    if (s.multi >= 0) multi++;
    if (s.flags.includes('b')) blocked++;
    if (s.age > oldestAge) oldestAge = s.age;
  }
  const cmdFolded = foldTopN(commandCounts, opts.maxCommands);
  const commands = new Map(cmdFolded.kept);
  if (cmdFolded.foldedCount > 0) addTo(commands, OTHER, cmdFolded.otherValue);

  return {
    total: data.total,
    listed: data.sessions.length,
    nodes,
    clientSessions,
    foldedIps: folded.foldedCount,
    commands,
    idle: thresholds.map((t, i) => [t, idleCounts[i]]),
    outputBuffer,
    clientOutputBuffer,
    clientQueryBuffer,
    pubsub,
    multi,
    blocked,
    oldestAge,
  };
}

function sortedEntries(m: ReadonlyMap<string, number>): Array<[string, number]> {
  // Stable output order: by label value, "other" last.
  return [...m.entries()].sort(([a], [b]) => (a === OTHER ? 1 : b === OTHER ? -1 : a < b ? -1 : a > b ? 1 : 0));
}

/** The metric families of one instance: `instance_id` first, then the metric's own label, static labels last. */
export function renderRedisFamilies(instanceId: string, agg: RedisAggregates, foldedTotal: number, staticLabels: string): MetricFamily[] {
  const inst = renderLabels({ instance_id: instanceId });
  const plain = joinLabels(inst, staticLabels);
  const withLabel = (name: string, value: string) => joinLabels(inst, renderLabels({ [name]: value }), staticLabels);
  const single = (name: string, help: string, value: number, type: 'gauge' | 'counter' = 'gauge') =>
    new FamilyBuilder(name, `${help} ${REFRESH_NOTE}`, type).sample(plain, value).build();
  const byLabel = (name: string, help: string, label: string, values: ReadonlyMap<string, number>) => {
    const b = new FamilyBuilder(name, `${help} ${REFRESH_NOTE}`, 'gauge');
    for (const [k, v] of sortedEntries(values)) b.sample(withLabel(label, k), v);
    return b.build();
  };
  const idle = new FamilyBuilder('aliyun_redis_idle_sessions', `Listed ApsaraDB for Redis sessions idle at least idle_seconds_min seconds. ${REFRESH_NOTE}`, 'gauge');
  for (const [t, n] of agg.idle) idle.sample(withLabel('idle_seconds_min', formatValue(t)), n);

  return [
    single('aliyun_redis_sessions', 'Current ApsaraDB for Redis sessions (DAS Data.Total).', agg.total),
    single('aliyun_redis_listed_sessions', 'ApsaraDB for Redis sessions DAS listed (can be fewer than the total).', agg.listed),
    byLabel('aliyun_redis_node_sessions', 'Listed ApsaraDB for Redis sessions per proxy or data node.', 'node_id', agg.nodes),
    byLabel('aliyun_redis_client_sessions', 'ApsaraDB for Redis sessions per source IP (DAS SourceStats); the top max_client_ips IPs, the rest in client_ip="other".', 'client_ip', agg.clientSessions),
    single('aliyun_redis_client_ips_folded_total', 'Source IPs folded into client_ip="other", summed over polls.', foldedTotal, 'counter'),
    byLabel('aliyun_redis_command_sessions', 'Listed ApsaraDB for Redis sessions by last command (lower-case); the top max_commands, the rest in command="other".', 'command', agg.commands),
    idle.build(),
    single('aliyun_redis_output_buffer_bytes', 'Output-buffer memory (omem) of the listed ApsaraDB for Redis sessions, in bytes.', agg.outputBuffer),
    byLabel('aliyun_redis_client_output_buffer_bytes', 'Output-buffer memory (omem) of the listed sessions per source IP, in bytes (IPs capped like aliyun_redis_client_sessions).', 'client_ip', agg.clientOutputBuffer),
    byLabel('aliyun_redis_client_query_buffer_bytes', 'Query-buffer bytes (qbuf) of the listed sessions per source IP (IPs capped like aliyun_redis_client_sessions).', 'client_ip', agg.clientQueryBuffer),
    single('aliyun_redis_pubsub_sessions', 'Listed ApsaraDB for Redis sessions subscribed to a channel or pattern.', agg.pubsub),
    single('aliyun_redis_multi_sessions', 'Listed ApsaraDB for Redis sessions inside MULTI.', agg.multi),
    single('aliyun_redis_blocked_sessions', 'Listed ApsaraDB for Redis sessions blocked in a command (flag b).', agg.blocked),
    single('aliyun_redis_oldest_session_age_seconds', 'Age of the oldest listed ApsaraDB for Redis session, in seconds.', agg.oldestAge),
  ];
}

class RedisSessionsJob implements Job {
  readonly instanceIds: string[];
  private readonly caller: ApiCaller;
  private readonly staticLabels: string;
  /** aliyun_redis_client_ips_folded_total per instance, kept across runs. */
  private readonly foldedTotals = new Map<string, number>();

  constructor(
    private readonly cfg: RedisSessionsConfig,
    ctx: JobContext,
  ) {
    this.instanceIds = [...cfg.instance_ids];
    this.caller = ctx.accounts.caller(cfg.account, cfg.endpoint ?? DEFAULT_DAS_ENDPOINT, DAS_API_VERSION);
    this.staticLabels = renderLabels(ctx.labels);
    for (const id of cfg.instance_ids) this.foldedTotals.set(id, 0);
  }

  async run(run: RunContext): Promise<JobRunResult> {
    // All instances at once: the account's rate limiter paces the calls, and each instance fails on its own.
    const targets = await Promise.all(this.instanceIds.map((id) => this.poll(id, run)));
    return { targets };
  }

  private async poll(instanceId: string, run: RunContext): Promise<TargetResult> {
    try {
      const data = await this.caller.call(REDIS_SESSIONS_API, { InstanceId: instanceId }, { deadline: run.deadline, signal: run.signal, target: instanceId, parse: parseGetRedisAllSession });
      const agg = aggregateRedisSessions(data, {
        maxClientIps: this.cfg.max_client_ips,
        maxCommands: this.cfg.max_commands,
        idleThresholds: this.cfg.idle_thresholds,
      });
      const folded = (this.foldedTotals.get(instanceId) ?? 0) + agg.foldedIps;
      this.foldedTotals.set(instanceId, folded);
      return { instanceId, ok: true, families: renderRedisFamilies(instanceId, agg, folded, this.staticLabels) };
    } catch (err) {
      return { instanceId, ok: false, families: [], error: err as Error };
    }
  }
}
