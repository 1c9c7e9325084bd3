// Runs one configured job: once at start-up, then on its cron schedule, never overlapping itself, each run under a
// deadline; publishes results to the snapshot store and the job's self-metrics.
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from './log';
import type { CommonJobConfig } from './config/schema';
import type { Job } from './jobs/types';
import type { SelfMetrics } from './metrics/self-metrics';
import { RUN_RESULTS } from './metrics/self-metrics';
import type { SnapshotStore } from './metrics/snapshot-store';
import { scheduleIntervalMs } from './schedule';
import { sleep } from './cloud/retry';
import { setMaxListeners } from 'node:events';

/** Longest deadline a run can have (24 h), whatever the schedule. */
export const MAX_RUN_MS = 86_400_000;

export interface JobRunnerOptions {
  config: CommonJobConfig;
  job: Job;
  instanceIds: readonly string[];
  store: SnapshotStore;
  metrics: SelfMetrics;
  logger: Logger;
  now?: () => number;
  /** Called once, when the first run (success or not) has ended: readiness. */
  onFirstAttempt?: () => void;
}

export class JobRunner {
  readonly name: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly staleAfterMs: number;
  firstAttemptDone = false;
  private task: ScheduledTask | undefined;
  private running: Promise<void> | undefined;
  private abort = new AbortController();
  private stopped = false;
  /** The extra run at start-up; a cron tick landing during it is not an overlap of scheduled runs. */
  private startupRun: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: JobRunnerOptions) {
    const { config, metrics, store } = opts;
    this.name = config.name;
    this.now = opts.now ?? Date.now;
    this.intervalMs = scheduleIntervalMs(config.schedule);
    // setTimeout fires at once for delays above 2^31-1 ms, so a yearly schedule must not become a yearly deadline.
    this.timeoutMs = Math.min(config.timeout ?? this.intervalMs, MAX_RUN_MS);
    this.staleAfterMs = config.stale_after ?? 2 * this.intervalMs;
    store.setStaleAfter(this.name, this.staleAfterMs);
    // Known series exist from start-up, so alerts never depend on absent().
    const job = { job_name: this.name };
    metrics.jobInterval.set(job, this.intervalMs / 1000);
    metrics.jobSuccess.set(job, 0);
    metrics.jobLastSuccess.set(job, 0);
    metrics.jobStale.set(job, 0);
    for (const result of RUN_RESULTS) metrics.jobRuns.inc({ ...job, result }, 0);
    for (const instance_id of opts.instanceIds) {
      metrics.instanceSuccess.set({ ...job, instance_id }, 0);
      metrics.instanceLastSuccess.set({ ...job, instance_id }, 0);
    }
  }

  /** First run now, then on the schedule. */
  start(): void {
    this.task = cron.createTask(this.opts.config.schedule, () => this.onTick(), { name: this.name });
    void this.task.start();
    this.startupRun = this.trigger();
    void this.startupRun.finally(() => (this.startupRun = undefined));
  }

  private async onTick(): Promise<void> {
    const jitter = this.opts.config.jitter;
    if (jitter > 0) await sleep(Math.random() * jitter, this.abort.signal);
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
    const { metrics, store, logger, job } = this.opts;
    const labels = { job_name: this.name };
    const started = this.now();
    const deadlineCtl = new AbortController();
    // Every in-flight cloud call of the run listens to this signal: hundreds at once are expected.
    setMaxListeners(0, deadlineCtl.signal);
    const onStop = () => deadlineCtl.abort();
    this.abort.signal.addEventListener('abort', onStop, { once: true });
    const timer = setTimeout(() => deadlineCtl.abort(), this.timeoutMs);
    let allOk = false;
    try {
      const result = await job.run({ deadline: started + this.timeoutMs, signal: deadlineCtl.signal });
      const finished = this.now();
      allOk = result.targets.length > 0 && result.targets.every((t) => t.ok);
      for (const t of result.targets) {
        const inst = { ...labels, instance_id: t.instanceId };
        metrics.instanceSuccess.set(inst, t.ok ? 1 : 0);
        if (t.ok) {
          store.put(this.name, t.instanceId, t.families, finished);
          metrics.instanceLastSuccess.set(inst, finished / 1000);
        } else {
          logger.error({ instance_id: t.instanceId, err: t.error }, 'poll failed; keeping the last good values until they go stale');
        }
      }
      store.retainInstances(this.name, new Set(result.targets.map((t) => t.instanceId)));
      if (result.inventory) {
        metrics.inventoryEntries.set(labels, result.inventory.valid);
        metrics.inventoryInvalid.set(labels, result.inventory.invalid);
      }
      metrics.jobDuration.set(labels, (finished - started) / 1000);
      if (allOk) metrics.jobLastSuccess.set(labels, finished / 1000);
      logger.debug({ duration_ms: finished - started, ok: allOk }, 'run finished');
    } catch (err) {
      // A job module must not throw, but if one does the exporter keeps going.
      logger.error({ err }, 'run failed unexpectedly');
      metrics.jobDuration.set(labels, (this.now() - started) / 1000);
    } finally {
      clearTimeout(timer);
      this.abort.signal.removeEventListener('abort', onStop);
      metrics.jobSuccess.set(labels, allOk ? 1 : 0);
      metrics.jobRuns.inc({ ...labels, result: allOk ? 'success' : 'failure' });
      if (!this.firstAttemptDone) {
        this.firstAttemptDone = true;
        this.opts.onFirstAttempt?.();
      }
    }
  }

  /** Stops the schedule; waits for the in-flight run up to `graceMs`, then aborts it. */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    if (this.task) await this.task.destroy();
    const inFlight = this.running;
    if (inFlight) {
      const timer = setTimeout(() => this.abort.abort(), graceMs);
      await inFlight;
      clearTimeout(timer);
    }
    this.abort.abort();
    await this.opts.job.close?.();
  }

  /** Removes this job's series from the self-metrics (job deleted by a reload). */
  forgetMetrics(): void {
    const { metrics } = this.opts;
    const labels = { job_name: this.name };
    for (const g of [metrics.jobInterval, metrics.jobSuccess, metrics.jobLastSuccess, metrics.jobStale, metrics.jobDuration, metrics.inventoryEntries, metrics.inventoryInvalid]) g.remove(labels);
    for (const result of RUN_RESULTS) metrics.jobRuns.remove({ ...labels, result });
    for (const instance_id of this.opts.instanceIds) {
      metrics.instanceSuccess.remove({ ...labels, instance_id });
      metrics.instanceLastSuccess.remove({ ...labels, instance_id });
    }
  }
}
