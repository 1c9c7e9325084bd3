// The contract of a job type: its config (JobConfigSpec), the metric families it declares, what a run costs in API
// calls, and how one run produces a result the runner publishes.
import type { Logger } from '../util/log';
import type { CloudAccounts } from '../cloud/accounts';
import type { AccountConfig, CommonJobConfig } from '../config/schema';
import type { JobConfigSpec } from '../config/spec';
import type { FamilyDecl } from '../metrics/declare';
import type { MetricFamily } from '../metrics/family';
import type { Sections } from '../cluster/coordination';
import type { ShardView } from '../cluster/sharding';

/** The outcome for one cloud instance (or the job's single target). */
export interface TargetResult {
  instanceId: string;
  /** Whether the poll of this instance succeeded: its instance_success, and the job's success. */
  ok: boolean;
  /**
   * What to publish for the instance now. Absent: keep what was last published until it goes stale (a failed poll).
   * A job may publish and fail at once (the canary's failed probe is itself data).
   */
  families?: readonly MetricFamily[];
  error?: Error;
}

export interface JobRunResult {
  targets: TargetResult[];
  /** Values of the type's per-job self-metrics (JobType.jobMetrics), by family name. */
  jobMetrics?: Readonly<Record<string, number>>;
  /** Set when the job could not poll at all (its input is missing): the exporter is not ready while it is. */
  blocked?: string;
  /** Sharded: the entries of the shard this run polled (devices); default the number of targets (instances). */
  inventorySize?: number;
}

export interface RunContext {
  /** Absolute deadline (Date.now() ms). */
  deadline: number;
  signal: AbortSignal;
  /**
   * Sharded cluster: the run polls only the inventory entries this replica owns — MQTT devices by client ID, instance
   * lists by instance ID — and reports only those. Absent: everything.
   */
  shard?: Pick<ShardView, 'id' | 'owns'>;
}

export interface JobContext {
  jobName: string;
  /** The job's static labels, rendered (`a="x",b="y"`): appended to every sample of the job. */
  staticLabels: string;
  accounts: CloudAccounts;
  logger: Logger;
  /** Base directory for relative paths in the job's config (the config file's folder). */
  configDir: string;
}

/**
 * One figure the status page shows for a job or one of its instances: what matters for its type (devices online,
 * connections, delivery latency). The job type says what its figures are; core only lays them out.
 */
export interface StatusFigure {
  /** What it is, for a person: "devices online". */
  label: string;
  /** Undefined: not known yet (shown as such, never as 0). */
  value: number | string | undefined;
  /** How a number reads: a count (default), a duration in seconds, or a ratio shown as a percentage. */
  unit?: 'count' | 'seconds' | 'ratio';
  /** A short qualifier after the value, e.g. "600 calls at 100 QPS". */
  note?: string;
  /** The value needs a look (invalid inventory entries, a cycle longer than its quota bound). */
  warn?: boolean;
}

/** What a job tells the status page about itself now (Job.status). */
export interface JobStatus {
  /** Figures about the whole job. */
  figures?: readonly StatusFigure[];
  /** Figures per cloud instance, by instance ID. */
  instances?: Readonly<Record<string, readonly StatusFigure[]>>;
}

export interface Job {
  /** Cloud instances this job reports on; their success series exist from start-up. */
  readonly instanceIds: readonly string[];
  run(ctx: RunContext): Promise<JobRunResult>;
  close?(): Promise<void>;
  /**
   * The figures of its type for the status page at `/`, from what the job already holds (never a cloud call; called
   * on every page view). Optional: without it the page shows the runner's facts only.
   */
  status?(): JobStatus;
  /** Cluster HA: what another replica needs to serve this job's runs and take over from this one. */
  readonly handover?: JobHandover;
}

/**
 * Cluster HA (src/cluster/): one replica polls a job and publishes each completed run; the others serve the same
 * metrics from it and can take over. Core copies a run's families as bytes; the job adds the state another replica
 * needs to continue where this one stopped (counters' bases, last statuses), and may carry its families in a compact
 * form instead (the MQTT status bitset, keyed by the inventory's hash). Sections are named with their version
 * ("counters.v1"): a reader skips names it does not know, so a type can add sections without breaking older replicas.
 */
export interface JobHandover {
  /** The sections of the job's state after its last run (called on the replica that ran it). */
  save(): Sections | Promise<Sections>;
  /**
   * Another replica's run: take over its state and, when the sections carry the families (`rebuildsFamilies`),
   * rebuild them per instance. Undefined when they cannot be (an inventory that differs from the publisher's).
   */
  restore(sections: Sections): Promise<ReadonlyMap<string, readonly MetricFamily[]> | undefined>;
  /** The sections carry the families: they are not copied as bytes. */
  readonly rebuildsFamilies?: boolean;
  /** Another replica polls the job now: let go of what only the poller needs (the canary's MQTT connection). */
  standby?(): Promise<void>;
}

/** One API call pattern of a job, for `--config.check`'s quota plan. */
export interface ApiUsage {
  account: string;
  api: string;
  /** The endpoint the job calls it at (its `endpoint`, else the API's default for its region and endpoint_type). */
  endpoint: string;
  /** May be a fraction: calls not made every run (a token re-applied before it expires) are spread over the runs. */
  callsPerRun: number;
  /** Free-text basis of the estimate, e.g. "6,000 devices / 10 per call". */
  basis: string;
  /**
   * Billed calls: each successful one counts as one messaging TPS of `instance` (ApsaraMQ for MQTT bills SendMessage,
   * ApplyToken and the session queries so). The plan shows them per day and the TPS they take from the instance, and
   * warns above `maxTpsShare` of its purchased TPS when the job states it.
   */
  billed?: { instance: string; purchasedTps?: number; maxTpsShare: number };
}

/** The type's section of docs/metrics.md (scripts/generate-metrics-doc.ts). */
export interface JobTypeDocs {
  title: string;
  /** Markdown before the table. */
  intro?: string;
  /** Markdown after the table. */
  notes?: string;
}

/** A job type: its config (JobConfigSpec, read by the loader), what a run costs, and how a run produces metrics. */
export interface JobType<C extends CommonJobConfig = CommonJobConfig> extends JobConfigSpec<C> {
  /** Every family a job of this type publishes, declared once. */
  families: readonly FamilyDecl[];
  /** Per-job self-metrics the runner keeps (label `job_name` only), set from JobRunResult.jobMetrics. */
  jobMetrics?: readonly FamilyDecl<'job_name'>[];
  docs: JobTypeDocs;
  /** `accounts`: every account of the config (what a job may do can depend on its account's credentials). */
  plan(config: C, configDir: string, accounts: readonly AccountConfig[]): ApiUsage[];
  create(config: C, ctx: JobContext): Job;
}

// Type-erased form used by registries; each job type keeps its precise config type internally.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyJobType = JobType<any>;

/** The documented QPS of every API any of `types` calls, by API name. */
export function documentedQps(types: readonly AnyJobType[]): Record<string, number> {
  return Object.assign({}, ...types.map((t) => t.apiQps));
}
