// Runs one configured job: once at start-up, then on its cron schedule, never overlapping itself, each run under a
// deadline; publishes results to the snapshot store and the job's self-metrics, and keeps what the status page shows
// of its runs (the last one, the last failed one, per instance). In a cluster (src/cluster/), its coordination says
// whether this replica polls now (HA: the leader; sharding: its part), and runs published by the replica that polls
// are served here the same way as runs of this one.
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../util/log';
import type { CommonJobConfig } from '../config/schema';
import type { Job, JobRunResult, JobStatus, TargetResult } from './job-type';
import type { JobCoordination, PublishedRun } from '../cluster/coordination';
import type { MetricFamily } from '../metrics/family';
import type { SelfMetrics } from '../metrics/self-metrics';
import { RUN_RESULTS } from '../metrics/self-metrics';
import type { SnapshotStore } from '../metrics/snapshot-store';
import { runDeadlineMs, scheduleIntervalMs } from '../util/schedule';
import { sleep } from '../cloud/retry';
import { labelSafeCode, RunAborted } from '../cloud/errors';
import { redact } from '../util/redact';
import { setMaxListeners } from 'node:events';
import { boundedWait } from '../util/bounded-wait';

/**
 * How long a run whose signal aborted may take to hand back what it has. Its calls end at the abort (queued ones at
 * once, in-flight ones by destroying their sockets), so a job that has not returned by then is stuck somewhere else:
 * the run is abandoned, not awaited, so neither the schedule nor a shutdown can wedge on it.
 */
const ABANDON_AFTER_MS = 500;

/** Why a run failed for one instance (or, without instanceId, for the whole job), as the status page shows it. */
export interface RunFailure {
  instanceId?: string;
  /** Label-safe codes: the cloud's error code, Timeout, DeadlineExceeded, ... */
  codes: readonly string[];
  /** Redacted and cut short: it may quote a cloud's answer. */
  message: string;
}

/** One finished run, for the status page. */
export interface RunRecord {
  /** Date.now() ms (the runner's clock). */
  startedAt: number;
  durationMs: number;
  ok: boolean;
  /** Empty when ok. */
  failures: readonly RunFailure[];
}

/** One cloud instance as of the job's last run. */
export interface InstanceRecord {
  /** Undefined until the instance's first poll ended. */
  ok?: boolean;
  lastSuccessAt?: number;
  /** Of the last poll, when it failed. */
  failure?: RunFailure;
}

const MAX_MESSAGE_CHARS = 300;

/** The codes and words of a failure; `codes` (the canary's ProbeFailed) or `code` (CloudError, Node errors) when the error has them. */
function failureOf(err: unknown, instanceId?: string): RunFailure {
  const e = (err ?? {}) as { codes?: unknown; code?: unknown; name?: unknown; message?: unknown };
  const codes = Array.isArray(e.codes) && e.codes.length > 0 ? e.codes.map((c) => labelSafeCode(String(c))) : [labelSafeCode(typeof e.code === 'string' ? e.code : typeof e.name === 'string' ? e.name : 'Error')];
  const text = redact(typeof e.message === 'string' ? e.message : String(err));
  return { instanceId, codes: [...new Set(codes)], message: text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS)}…` : text };
}

export interface JobRunnerOptions {
  config: CommonJobConfig;
  job: Job;
  instanceIds: readonly string[];
  store: SnapshotStore;
  metrics: SelfMetrics;
  logger: Logger;
  now?: () => number;
  /** Called after every run (success or not): readiness. */
  onRunEnd?: () => void;
  /** Cluster: the job's coordination with the other replicas (which one polls, which part, publishing and adopting runs). */
  coordinate?: (job: { name: string; type: string; intervalMs: number; staleAfterMs: number }) => JobCoordination;
}

export class JobRunner {
  readonly name: string;
  readonly instanceIds: readonly string[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  firstAttemptDone = false;
  /** Why the job cannot poll at all (e.g. its inventory file is unreadable); undefined when it can. */
  blocked: string | undefined;
  /** The last finished run, and the last one that failed (the same record when the last run failed). */
  lastRun: RunRecord | undefined = undefined;
  lastFailedRun: RunRecord | undefined = undefined;
  /** End of the last run that succeeded for every instance (Date.now() ms). */
  lastSuccessAt: number | undefined = undefined;
  /** Start of the run in flight, if any. */
  runningSince: number | undefined = undefined;
  /** Per configured instance, in config order. */
  readonly instances: ReadonlyMap<string, InstanceRecord>;
  private task: ScheduledTask | undefined;
  private running: Promise<void> | undefined;
  private abort = new AbortController();
  private stopped = false;
  /** The extra run at start-up; a cron tick landing during it is not an overlap of scheduled runs. */
  private startupRun: Promise<void> | undefined;
  private readonly now: () => number;
  private readonly coordination: JobCoordination | undefined;
  /** Sharded: the instances whose series this replica serves (its shard's, as of the last run). */
  private served = new Set<string>();

  constructor(private readonly opts: JobRunnerOptions) {
    const { config, metrics, store } = opts;
    this.name = config.name;
    this.instanceIds = opts.instanceIds;
    this.now = opts.now ?? Date.now;
    this.instances = new Map(opts.instanceIds.map((id) => [id, {}]));
    this.intervalMs = scheduleIntervalMs(config.schedule);
    this.timeoutMs = runDeadlineMs(config, this.intervalMs);
    const staleAfterMs = config.stale_after ?? 2 * this.intervalMs;
    store.setStaleAfter(this.name, staleAfterMs);
    this.coordination = opts.coordinate?.({ name: this.name, type: config.type, intervalMs: this.intervalMs, staleAfterMs });
    // Known series exist from start-up, so alerts never depend on absent().
    const job = { job_name: this.name };
    metrics.jobInterval.set(job, this.intervalMs / 1000);
    metrics.jobSuccess.set(job, 0);
    metrics.jobLastSuccess.set(job, 0);
    metrics.jobStale.set(job, 0);
    for (const result of RUN_RESULTS) metrics.jobRuns.inc({ ...job, result }, 0);
    // Sharded, an instance is this replica's only while its shard holds it: its series follow the runs' targets.
    if (!this.coordination?.sharded) this.instanceSeries(opts.instanceIds);
  }

  private instanceSeries(instanceIds: readonly string[]): void {
    const { metrics } = this.opts;
    const job = { job_name: this.name };
    for (const instance_id of instanceIds) {
      metrics.instanceSuccess.set({ ...job, instance_id }, 0);
      metrics.instanceLastSuccess.set({ ...job, instance_id }, 0);
      metrics.instanceStale.set({ ...job, instance_id }, 0);
    }
  }

  get type(): string {
    return this.opts.config.type;
  }

  get schedule(): string {
    return this.opts.config.schedule;
  }

  /** When the schedule fires next (Date.now() ms); undefined before start() and after stop(). */
  nextRunAt(): number | undefined {
    if (this.stopped) return undefined;
    return this.task?.getNextRun()?.getTime();
  }

  /** The job type's figures (Job.status); a hook that throws shows as no figures, never as a broken page. */
  jobStatus(): JobStatus {
    try {
      return this.opts.job.status?.() ?? {};
    } catch (err) {
      this.opts.logger.warn({ err }, "the job's status hook failed");
      return {};
    }
  }

  /** First run now (alone, or when the coordination says so), then on the schedule. */
  start(): void {
    this.task = cron.createTask(this.opts.config.schedule, () => this.onTick(), { name: this.name });
    void this.task.start();
    const coordination = this.coordination;
    if (!coordination) return this.startupNow();
    coordination.start({
      runNow: () => this.startupNow(),
      adopt: (run) => this.adopt(run),
      started: () => {
        if (this.firstAttemptDone || this.running) return;
        this.firstAttemptDone = true;
        this.opts.onRunEnd?.();
      },
      standby: () => void this.opts.job.handover?.standby?.(),
    });
  }

  /** A run now; a cron tick landing during it is not an overlap of scheduled runs. */
  private startupNow(): void {
    if (this.stopped || this.running) return;
    const run = this.trigger();
    this.startupRun = run;
    void run.finally(() => {
      if (this.startupRun === run) this.startupRun = undefined;
    });
  }

  private async onTick(): Promise<void> {
    const jitter = this.opts.config.jitter;
    if (jitter > 0) await sleep(Math.random() * jitter, this.abort.signal);
    // Another replica polls the job (HA): its published runs are served here instead.
    if (this.coordination && !this.coordination.polls()) return;
    if (!this.stopped) await this.trigger();
  }

  /** Starts a run unless one is in flight (then it is counted as skipped_overlap). Resolves when the run ends. */
  trigger(): Promise<void> {
    if (this.running && this.running === this.startupRun) {
      this.opts.logger.debug('cron tick during the start-up run; waiting for the next one');
      return this.running;
    }
    if (this.running) {
      this.opts.metrics.jobRuns.inc({ job_name: this.name, result: 'skipped_overlap' });
      this.opts.logger.warn('previous run still in progress; skipping this one');
      return this.running;
    }
    this.running = this.runOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async runOnce(): Promise<void> {
    const { metrics, logger, job } = this.opts;
    const coordination = this.coordination;
    const labels = { job_name: this.name };
    const started = this.now();
    const deadlineCtl = new AbortController();
    // Every in-flight cloud call of the run listens to this signal: hundreds at once are expected.
    setMaxListeners(0, deadlineCtl.signal);
    const onStop = () => deadlineCtl.abort(this.abort.signal.reason);
    this.abort.signal.addEventListener('abort', onStop, { once: true });
    const timer = setTimeout(() => deadlineCtl.abort(new RunAborted('DeadlineExceeded')), this.timeoutMs);
    let allOk = false;
    let failures: RunFailure[] = [];
    this.runningSince = started;
    try {
      const shard = coordination?.shard();
      const outcome = await this.untilAbandoned(job.run({ deadline: started + this.timeoutMs, signal: deadlineCtl.signal, ...(shard ? { shard } : {}) }), deadlineCtl.signal);
      const finished = this.now();
      if (outcome === 'abandoned') {
        const reason = deadlineCtl.signal.reason;
        for (const instance_id of this.opts.instanceIds) {
          if (coordination?.sharded && !this.served.has(instance_id)) continue;
          metrics.instanceSuccess.set({ ...labels, instance_id }, 0);
          failures.push(failureOf(reason, instance_id));
        }
        metrics.jobDuration.set(labels, (finished - started) / 1000);
        if (reason instanceof RunAborted && reason.code === 'Shutdown') logger.info('run stopped for shutdown');
        else logger.error({ code: 'DeadlineExceeded', timeout_ms: this.timeoutMs }, `run abandoned: it had not ended ${ABANDON_AFTER_MS} ms after its deadline; keeping the last good values until they go stale`);
        return;
      }
      const result = outcome.result;
      this.blocked = result.blocked;
      const shutdown = deadlineCtl.signal.reason instanceof RunAborted && deadlineCtl.signal.reason.code === 'Shutdown';
      for (const t of result.targets) {
        if (t.ok) continue;
        const failure = failureOf(t.error ?? new Error('the poll failed without saying why'), t.instanceId);
        failures.push(failure);
        const record = this.instances.get(t.instanceId) as InstanceRecord | undefined;
        if (record) record.failure = failure;
        if (shutdown) logger.info({ instance_id: t.instanceId }, 'poll stopped for shutdown');
        else logger.error({ instance_id: t.instanceId, err: t.error }, 'poll failed; keeping the last good values until they go stale');
      }
      if (result.blocked !== undefined) logger.error({ reason: result.blocked }, 'the job cannot poll; not ready until it can');
      allOk = this.serve(result.targets, finished, finished - started, result.jobMetrics, result.blocked === undefined);
      if (!allOk && failures.length === 0) failures.push(failureOf(new Error(result.blocked ?? 'the run reported no instance'), undefined));
      logger.debug({ duration_ms: finished - started, ok: allOk }, 'run finished');
      if (coordination) {
        // A sharded replica publishes nothing (each serves its own part): no handover to build for it.
        const sections = (!coordination.sharded && (await job.handover?.save())) || new Map<string, Uint8Array>();
        const run = { producedAt: finished, durationMs: finished - started, targets: result.targets, sections, inventorySize: result.inventorySize ?? result.targets.length };
        await coordination.completed(result.jobMetrics ? { ...run, jobMetrics: result.jobMetrics } : run, !job.handover?.rebuildsFamilies);
      }
    } catch (err) {
      // A job module must not throw, but if one does the exporter keeps going.
      logger.error({ err }, 'run failed unexpectedly');
      metrics.jobDuration.set(labels, (this.now() - started) / 1000);
      metrics.jobSuccess.set(labels, 0);
      failures = [failureOf(err)];
    } finally {
      clearTimeout(timer);
      this.abort.signal.removeEventListener('abort', onStop);
      this.runningSince = undefined;
      this.noteRun({ startedAt: started, durationMs: this.now() - started, ok: allOk, failures: allOk ? [] : failures });
      if (!allOk) metrics.jobSuccess.set(labels, 0);
      metrics.jobRuns.inc({ ...labels, result: allOk ? 'success' : 'failure' });
      this.firstAttemptDone = true;
      this.opts.onRunEnd?.();
    }
  }

  /**
   * Serves a run, this replica's or one published by the replica that polls the job: the families and the job's
   * self-metrics as of `finished` (staleness counts from there). Returns whether the whole run succeeded.
   */
  private serve(targets: ReadonlyArray<Pick<TargetResult, 'instanceId' | 'ok' | 'families'>>, finished: number, durationMs: number, jobMetrics: Readonly<Record<string, number>> | undefined, unblocked: boolean): boolean {
    const { metrics, store } = this.opts;
    const coordination = this.coordination;
    const labels = { job_name: this.name };
    if (coordination?.sharded) {
      const now = new Set(targets.map((t) => t.instanceId));
      for (const id of this.served) if (!now.has(id)) this.forgetInstance(id);
      this.instanceSeries([...now].filter((id) => !this.served.has(id)));
      this.served = now;
    }
    for (const t of targets) {
      const inst = { ...labels, instance_id: t.instanceId };
      metrics.instanceSuccess.set(inst, t.ok ? 1 : 0);
      if (t.families) store.put(this.name, t.instanceId, t.families, finished);
      if (t.ok) metrics.instanceLastSuccess.set(inst, finished / 1000);
      const record = this.instances.get(t.instanceId) as InstanceRecord | undefined;
      if (record) Object.assign(record, { ok: t.ok, lastSuccessAt: t.ok ? finished : record.lastSuccessAt, failure: t.ok ? undefined : record.failure });
    }
    store.retainInstances(this.name, new Set(targets.map((t) => t.instanceId)));
    for (const [name, value] of Object.entries(jobMetrics ?? {})) metrics.jobMetrics.get(name)?.set(labels, value);
    metrics.jobDuration.set(labels, durationMs / 1000);
    // A sharded replica whose shard holds no instance of the job (yet) has nothing to fail.
    const allOk = unblocked && (targets.length > 0 || coordination?.sharded === true) && targets.every((t) => t.ok);
    if (allOk) {
      metrics.jobLastSuccess.set(labels, finished / 1000);
      this.lastSuccessAt = finished;
    }
    metrics.jobSuccess.set(labels, allOk ? 1 : 0);
    return allOk;
  }

  /** A run another replica published: the job takes over its state (and rebuilds its families if they are compact), then it is served. */
  private async adopt(run: PublishedRun): Promise<void> {
    // Never while this replica's own run is under way (it became the leader meanwhile): that run's state and result win.
    if (this.stopped || this.running) return;
    let rebuilt: ReadonlyMap<string, readonly MetricFamily[]> | undefined;
    try {
      rebuilt = await this.opts.job.handover?.restore(run.sections);
    } catch (err) {
      this.opts.logger.warn({ err }, "cannot take over the state of the published run; serving its families, counting on from this replica's own state");
    }
    if (this.running) return;
    const targets = run.targets.map((t) => {
      // A target whose poll failed published nothing: what this replica serves stays until it is stale, as on the leader.
      const families = t.families ?? (t.inSections ? rebuilt?.get(t.instanceId) : undefined);
      return { instanceId: t.instanceId, ok: t.ok, ...(families ? { families } : {}) };
    });
    const ok = this.serve(targets, run.producedAt, run.durationMs, run.jobMetrics, true);
    // The status page of a replica that serves another's runs shows those runs (their causes stay the poller's).
    this.noteRun({ startedAt: run.producedAt - run.durationMs, durationMs: run.durationMs, ok, failures: [] });
    if (!this.firstAttemptDone) {
      this.firstAttemptDone = true;
      this.opts.onRunEnd?.();
    }
  }

  private noteRun(record: RunRecord): void {
    this.lastRun = record;
    if (!record.ok) this.lastFailedRun = record;
  }

  /** The run's result, or 'abandoned' when it has not returned ABANDON_AFTER_MS after its signal aborted. */
  private untilAbandoned(run: Promise<JobRunResult>, signal: AbortSignal): Promise<{ result: JobRunResult } | 'abandoned'> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => (timer = setTimeout(() => resolve('abandoned'), ABANDON_AFTER_MS));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      run.then(
        (result) => resolve({ result }),
        (err: unknown) => reject(err),
      ).finally(() => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      });
    });
  }

  /**
   * Stops the schedule; waits for the in-flight run up to `graceMs`, then aborts it. Resolves within
   * graceMs + ABANDON_AFTER_MS + CLOSE_BUDGET_MS whatever the job does.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    if (this.task) await this.task.destroy();
    const inFlight = this.running;
    if (inFlight) {
      const timer = setTimeout(() => this.abort.abort(new RunAborted('Shutdown')), graceMs);
      await inFlight;
      clearTimeout(timer);
    }
    this.abort.abort(new RunAborted('Shutdown'));
    // After the last run was published: another replica takes the job over at once (lease released).
    await boundedWait(Promise.all([this.opts.job.close?.(), this.coordination?.stop()]), CLOSE_BUDGET_MS);
  }

  /** The instances whose series this replica serves: all of the job's, or (sharded) those of its shard. */
  get servedInstanceIds(): readonly string[] {
    return this.coordination?.sharded ? [...this.served] : this.instanceIds;
  }

  private forgetInstance(instance_id: string): void {
    const { metrics } = this.opts;
    const labels = { job_name: this.name, instance_id };
    for (const g of [metrics.instanceSuccess, metrics.instanceLastSuccess, metrics.instanceStale]) g.remove(labels);
  }

  /** Removes this job's series from the self-metrics (job deleted by a reload). */
  forgetMetrics(): void {
    const { metrics } = this.opts;
    const labels = { job_name: this.name };
    for (const g of [metrics.jobInterval, metrics.jobSuccess, metrics.jobLastSuccess, metrics.jobStale, metrics.jobDuration, ...metrics.jobMetrics.values()]) g.remove(labels);
    for (const result of RUN_RESULTS) metrics.jobRuns.remove({ ...labels, result });
    for (const instance_id of this.opts.instanceIds) this.forgetInstance(instance_id);
  }
}

/** How long a stopping job may take to close its connections (the MQTT subscriber) and hand its lease over. */
const CLOSE_BUDGET_MS = 200;
