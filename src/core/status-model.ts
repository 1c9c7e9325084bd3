// What the status page at `/` shows, gathered from the parts that already hold it (runners, limiters, the API
// activity counts, the credentials pool, the reload state): nothing here calls the cloud or reads the metrics registry.
import type { ActivityCounts, ApiActivity } from '../cloud/api-activity';
import type { LimiterPool } from '../cloud/accounts';
import type { CredentialsPool, CredentialsStatus } from '../cloud/credentials/pool';
import type { ExporterConfig } from '../config/load';
import type { SnapshotStore } from '../metrics/snapshot-store';
import type { InstanceRecord, JobRunner, RunRecord } from './job-runner';
import type { StatusFigure } from './job-type';

/** The outcome of a (re)load of a file: the config file, or the web config file. */
export interface LoadRecord {
  ok: boolean;
  /** Date.now() ms. */
  at: number;
  /** Redacted; set when !ok. */
  error?: string;
}

export interface JobView {
  name: string;
  type: string;
  schedule: string;
  intervalMs: number;
  nextRunAt?: number;
  runningSince?: number;
  lastRun?: RunRecord;
  lastFailedRun?: RunRecord;
  lastSuccessAt?: number;
  blocked?: string;
  figures: readonly StatusFigure[];
  instances: Array<{ id: string; record: InstanceRecord; stale: boolean; figures: readonly StatusFigure[] }>;
}

export interface ApiView {
  account: string;
  api: string;
  qps: number;
  marginMs: number;
  queueDepth: number;
  activity: ActivityCounts;
}

export interface CredentialsView {
  account: string;
  provider: string;
  /** Undefined when no job uses the account (its credentials are not held). */
  held?: CredentialsStatus;
}

export interface StatusModel {
  now: number;
  build: { version: string; revision: string; node: string };
  startedAt: number;
  configFile: string;
  /** The last load or reload of the config file, and the last one that succeeded. */
  lastReload: LoadRecord;
  lastGoodLoadAt: number;
  /** Undefined without --web.config.file. */
  web?: { file: string; lastRead: LoadRecord };
  telemetryPath: string;
  ready: boolean;
  /** Why not ready, one line per job that holds it up. */
  notReady: string[];
  jobs: JobView[];
  apis: ApiView[];
  credentials: CredentialsView[];
}

export interface StatusSources {
  now: number;
  build: { version: string; revision: string };
  startedAt: number;
  config: ExporterConfig;
  lastReload: LoadRecord;
  lastGoodLoadAt: number;
  web?: { file: string; lastRead: LoadRecord };
  telemetryPath: string;
  runners: readonly JobRunner[];
  store: SnapshotStore;
  limiters: LimiterPool;
  activity: ApiActivity;
  credentials: CredentialsPool;
}

/** Why the exporter is not ready (/-/ready answers 503), one line per reason; empty when it is. */
export function notReadyReasons(runners: readonly JobRunner[]): string[] {
  const reasons: string[] = [];
  for (const r of runners) {
    if (!r.firstAttemptDone) reasons.push(`job ${r.name}: its first run has not finished`);
    if (r.blocked !== undefined) reasons.push(`job ${r.name}: ${r.blocked}`);
  }
  return reasons;
}

export function collectStatus(s: StatusSources): StatusModel {
  const notReady = notReadyReasons(s.runners);
  const jobs = s.runners.map((r): JobView => {
    const status = r.jobStatus();
    return {
      name: r.name,
      type: r.type,
      schedule: r.schedule,
      intervalMs: r.intervalMs,
      nextRunAt: r.nextRunAt(),
      runningSince: r.runningSince,
      lastRun: r.lastRun,
      lastFailedRun: r.lastFailedRun,
      lastSuccessAt: r.lastSuccessAt,
      blocked: r.blocked,
      figures: status.figures ?? [],
      instances: r.instanceIds.map((id) => ({ id, record: r.instances.get(id) ?? {}, stale: s.store.isStale(r.name, id), figures: status.instances?.[id] ?? [] })),
    };
  });
  const apis = s.limiters
    .list()
    .map((l): ApiView => ({ ...l, activity: s.activity.counts(l.account, l.api) }))
    .sort((a, b) => a.account.localeCompare(b.account) || a.api.localeCompare(b.api));
  const held = s.credentials.list();
  const credentials = s.config.accounts.map((a): CredentialsView => ({ account: a.name, provider: a.provider, held: held.filter((h) => h.account === a.name).at(-1) }));
  return {
    now: s.now,
    build: { ...s.build, node: process.version },
    startedAt: s.startedAt,
    configFile: s.config.source,
    lastReload: s.lastReload,
    lastGoodLoadAt: s.lastGoodLoadAt,
    web: s.web,
    telemetryPath: s.telemetryPath,
    ready: notReady.length === 0,
    notReady,
    jobs,
    apis,
    credentials,
  };
}
