// What a job's runner (core/job-runner.ts) and the cluster (cluster.ts) tell each other: whether this replica polls
// the job now and which part of its inventory, the runs it completes (published for the others), and the runs the
// others publish (served here). Without a cluster there is no coordination: the process polls every job alone.
import type { MetricFamily } from '../metrics/family';
import type { ShardView } from './sharding';

/** Named, versioned parts of a job's published state ("status.v1"); a reader skips names it does not know. */
export type Sections = ReadonlyMap<string, Uint8Array>;

/** A completed run as the replica that polled publishes it, and as the others receive it. */
export interface PublishedRun {
  /** Date.now() on the polling replica when the run ended: staleness counts from here on every replica. */
  producedAt: number;
  durationMs: number;
  /**
   * Per target: whether its poll succeeded and what the run published for it — its families, or (received, when the
   * job's sections carry them) `inSections` — or nothing (a failed poll: the last data are kept until stale).
   */
  targets: Array<{ instanceId: string; ok: boolean; families?: readonly MetricFamily[]; inSections?: boolean }>;
  /** Values of the job type's per-job self-metrics. */
  jobMetrics?: Readonly<Record<string, number>>;
  /** The job's own sections (core/job-type.ts JobHandover.save). */
  sections: Sections;
}

export interface CoordinationHooks {
  /** This replica must run the job now (it became the leader and the last published run is older than an interval). */
  runNow(): void;
  /** A run another replica published: serve it, and take over its state. */
  adopt(run: PublishedRun): Promise<void>;
  /** The start-up decision is made (a first run started, or the latest published run adopted or found missing). */
  started(): void;
  /** Another replica polls the job now. */
  standby(): void;
}

export interface JobCoordination {
  /** Sharded: every replica polls its part and serves only that, so instance series follow the shard. */
  readonly sharded: boolean;
  /** Whether this replica calls the cloud for the job now (HA: it holds the job's lease). */
  polls(): boolean;
  /** This replica's part of the inventory for the next run; undefined: all of it. */
  shard(): ShardView | undefined;
  start(hooks: CoordinationHooks): void;
  /** A run of this replica completed; `copyFamilies` false when the job's sections carry its families. */
  completed(run: PublishedRun & { inventorySize?: number }, copyFamilies: boolean): Promise<void>;
  /** The runner stopped (its last run ended): let another replica take over at once. */
  stop(): Promise<void>;
}
