// The running jobs of a configuration, and how a newer configuration replaces them: unchanged jobs keep running (and
// keep their data), changed ones are replaced (their sockets go back once their run ended), removed ones stop and
// their data go; limiters of (account, API) pairs no longer used go too. Limiters and transports live in pools that
// outlive every configuration, so a reload never resets a rate window or reconnects an unchanged account.
import { CloudAccounts, limiterOwner, type LimiterPool, type TransportPool } from '../cloud/accounts';
import { sourceIpCeilings } from '../config/spec';
import type { CredentialsPool } from '../cloud/credentials/pool';
import type { ExporterConfig } from '../config/load';
import { renderLabels } from '../metrics/family';
import type { SelfMetrics } from '../metrics/self-metrics';
import type { SnapshotStore } from '../metrics/snapshot-store';
import type { Logger } from '../util/log';
import { JobRunner, type JobRunnerOptions } from './job-runner';
import { documentedQps, type AnyJobType } from './job-type';

export interface JobSetDeps {
  jobTypes: readonly AnyJobType[];
  store: SnapshotStore;
  metrics: SelfMetrics;
  limiters: LimiterPool;
  transports: TransportPool;
  credentials: CredentialsPool;
  logger: Logger;
  now?: () => number;
  /** After every run of any job (readiness). */
  onRunEnd: () => void;
  /** Cluster: each job's coordination with the other replicas (src/cluster/). */
  coordinate?: (job: Parameters<NonNullable<JobRunnerOptions['coordinate']>>[0], logger: Logger) => ReturnType<NonNullable<JobRunnerOptions['coordinate']>>;
}

interface Entry {
  runner: JobRunner;
  /** Everything the job depends on in the config: a change to any of it replaces the job. */
  fingerprint: string;
  accounts: CloudAccounts;
}

export class JobSet {
  private readonly entries = new Map<string, Entry>();
  private readonly typeByName: ReadonlyMap<string, AnyJobType>;
  private readonly defaultQps: Readonly<Record<string, number>>;
  private started = false;

  constructor(private readonly deps: JobSetDeps) {
    this.typeByName = new Map(deps.jobTypes.map((t) => [t.type, t]));
    this.defaultQps = documentedQps(deps.jobTypes);
  }

  apply(cfg: ExporterConfig): void {
    const { store, limiters } = this.deps;
    const wanted = new Map(cfg.jobs.map((j) => [j.name, j]));
    for (const [name, entry] of this.entries) {
      const next = wanted.get(name);
      if (next && entry.fingerprint === fingerprintOf(next, cfg)) continue;
      this.entries.delete(name);
      entry.runner.forgetMetrics();
      if (!next) store.removeJob(name);
      void entry.runner.stop(0).then(() => {
        entry.accounts.close();
        if (!this.entries.has(name)) store.removeJob(name);
      });
    }
    for (const jobCfg of cfg.jobs) if (!this.entries.has(jobCfg.name)) this.add(jobCfg, cfg);
    const keys = new Set<string>();
    for (const jobCfg of cfg.jobs) {
      const account = cfg.accounts.find((a) => a.name === jobCfg.account);
      const owner = account ? limiterOwner(account) : String(jobCfg.account);
      for (const api of Object.keys(this.typeByName.get(jobCfg.type)!.apiQps)) keys.add(`${owner}\u0000${api}`);
    }
    limiters.retain(keys);
  }

  start(): void {
    this.started = true;
    for (const { runner } of this.entries.values()) runner.start();
  }

  /** Resolves within graceMs + a second (JobRunner.stop), then gives back every job's sockets. */
  async stop(graceMs: number): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => e.runner.stop(graceMs)));
    this.deps.limiters.cancelAll();
    for (const e of this.entries.values()) e.accounts.close();
  }

  runners(): JobRunner[] {
    return [...this.entries.values()].map((e) => e.runner);
  }

  runner(name: string): JobRunner | undefined {
    return this.entries.get(name)?.runner;
  }

  private add(jobCfg: ExporterConfig['jobs'][number], cfg: ExporterConfig): void {
    const { deps } = this;
    const jobType = this.typeByName.get(jobCfg.type)!;
    const logger = deps.logger.child({ job_name: jobCfg.name });
    const accounts = new CloudAccounts({
      accounts: cfg.accounts,
      metrics: deps.metrics.api,
      limiters: deps.limiters,
      transports: deps.transports,
      credentials: deps.credentials,
      configDir: cfg.dir,
      defaultQps: this.defaultQps,
      sourceIpCeilings: sourceIpCeilings(this.deps.jobTypes, cfg.sourceIpQps),
    });
    const job = jobType.create(jobCfg, { jobName: jobCfg.name, staticLabels: renderLabels(jobCfg.labels), accounts, logger, configDir: cfg.dir });
    const coordinate = deps.coordinate;
    const runner = new JobRunner({
      config: jobCfg,
      job,
      instanceIds: job.instanceIds,
      store: deps.store,
      metrics: deps.metrics,
      logger,
      now: deps.now,
      onRunEnd: deps.onRunEnd,
      ...(coordinate ? { coordinate: (j) => coordinate(j, logger) } : {}),
    });
    this.entries.set(jobCfg.name, { runner, fingerprint: fingerprintOf(jobCfg, cfg), accounts });
    if (this.started) runner.start();
  }
}

function fingerprintOf(job: ExporterConfig['jobs'][number], cfg: ExporterConfig): string {
  // The per-source-IP overrides too: a job's limiters count against the ceilings of its APIs' product.
  return JSON.stringify({ job, account: cfg.accounts.find((a) => a.name === job.account) ?? null, dir: cfg.dir, sourceIpQps: cfg.sourceIpQps });
}
