// The contract of a job type: how its config looks, what it costs in API calls, and how one run produces metrics.
import type { Logger } from '../util/log';
import type { CloudAccounts } from '../cloud/accounts';
import type { CommonJobConfig } from '../config/schema';
import type { JobConfigSpec } from '../config/spec';
import type { MetricFamily } from '../metrics/family';

/** The result for one cloud instance (or the job's single target). Families are rendered only when ok. */
export interface TargetResult {
  instanceId: string;
  ok: boolean;
  families: MetricFamily[];
  error?: Error;
}

export interface JobRunResult {
  targets: TargetResult[];
  /** Inventory figures for jobs that have one (cloud_session_exporter_inventory_*). */
  inventory?: { valid: number; invalid: number };
  /** Set when the job could not poll at all (its input is missing): the exporter is not ready while it is. */
  blocked?: string;
}

export interface RunContext {
  /** Absolute deadline (Date.now() ms). */
  deadline: number;
  signal: AbortSignal;
}

export interface JobContext {
  jobName: string;
  labels: Readonly<Record<string, string>>;
  accounts: CloudAccounts;
  logger: Logger;
  /** Base directory for relative paths in the job's config (the config file's folder). */
  configDir: string;
}

export interface Job {
  /** Cloud instances this job reports on; their success series exist from start-up. */
  readonly instanceIds: readonly string[];
  run(ctx: RunContext): Promise<JobRunResult>;
  close?(): Promise<void>;
}

/** One API call pattern of a job, for `--config.check`'s quota plan. */
export interface ApiUsage {
  account: string;
  api: string;
  callsPerRun: number;
  /** Free-text basis of the estimate, e.g. "6,000 devices / 10 per call". */
  basis: string;
  /** Billed calls, e.g. SendMessage: shown as messages per day. */
  billed?: boolean;
}

/** A job type: its config (JobConfigSpec, read by the loader), what a run costs, and how a run produces metrics. */
export interface JobType<C extends CommonJobConfig = CommonJobConfig> extends JobConfigSpec<C> {
  plan(config: C, configDir: string): ApiUsage[];
  create(config: C, ctx: JobContext): Job;
}

/** The documented QPS of every API any of `types` calls, by API name. */
export function documentedQps(types: readonly AnyJobType[]): Record<string, number> {
  return Object.assign({}, ...types.map((t) => t.apiQps));
}

// Type-erased form used by registries; each module keeps its precise config type internally.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyJobType = JobType<any>;
