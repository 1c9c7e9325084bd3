// The cluster's self-metrics (only with a `cluster:` block), declared once: docs/metrics.md and the alerts read them.
import { Gauge, Histogram, type Registry } from 'prom-client';
import { declareFamily, type FamilyDecl } from '../metrics/declare';

const CLUSTER = {
  degraded: declareFamily({
    name: 'cloud_session_exporter_cluster_degraded',
    type: 'gauge',
    help: 'Whether this replica keeps to its local share of the quotas (1): Redis cannot be reached, or the cluster settles after an outage or a lost replica; 0 when it shares the quotas through Redis.',
    labels: [],
    doc: 'whether this replica keeps to its local share of every quota (quota ÷ the replicas it last saw, at least 2): 1 while Redis cannot be reached and for a few seconds after it is back, or while another replica is silent; 0 when the quotas are shared through Redis. Leaders keep polling only within their lease; every replica keeps serving its last data until `stale_after`',
  }),
  replicas: declareFamily({ name: 'cloud_session_exporter_cluster_replicas', type: 'gauge', help: 'Replicas registered in Redis at the last contact, this one included.', labels: [] }),
  leader: declareFamily({
    name: 'cloud_session_exporter_cluster_leader',
    type: 'gauge',
    help: "Whether this replica holds the job's lease and polls it (1) or serves the runs the leader publishes (0). Without sharding only.",
    labels: ['job_name'],
    doc: "1 on the replica that holds the job's lease and polls it, 0 on the others, which serve the runs it publishes; summed over the replicas, 1 per job (alerts `CloudSessionExporterClusterNoLeader` and `...ClusterTwoLeaders` otherwise). Without sharding only",
  }),
  publishedBytes: declareFamily({
    name: 'cloud_session_exporter_cluster_published_bytes',
    type: 'gauge',
    help: 'Size of the job\'s last run as published in Redis (by this replica, or adopted from the leader).',
    labels: ['job_name'],
    doc: "size of the job's last run as published in Redis, by the leader or as adopted from it (a million MQTT devices: about 125 KB). Without sharding only",
  }),
  grantDuration: declareFamily({
    name: 'cloud_session_exporter_cluster_grant_duration_seconds',
    type: 'histogram',
    help: 'Round trip of a rate-limit grant through Redis: what sharing the quota adds to a call that need not wait.',
    labels: [],
  }),
  shardOrdinal: declareFamily({
    name: 'cloud_session_exporter_shard_ordinal',
    type: 'gauge',
    help: "This replica's shard (value and label): static, or its rank among the live replicas with sharding: auto.",
    labels: ['shard_ordinal'],
    doc: "this replica's shard, as value and label (as kube-state-metrics' `kube_state_metrics_shard_ordinal`): `sharding.shard`, or with `sharding: auto` its rank among the live replicas; absent while it takes no entries (auto: its first `lease` after joining). Sharded only",
  }),
  totalShards: declareFamily({
    name: 'cloud_session_exporter_total_shards',
    type: 'gauge',
    help: 'Shards the inventories are split into: total_shards, or the live replicas with sharding: auto.',
    labels: [],
    doc: 'shards the inventories are split into: `sharding.total_shards`, or with `sharding: auto` the live replicas that take entries; replicas that disagree fire `CloudSessionExporterShardingMismatch`. Sharded only',
  }),
  shardInventorySize: declareFamily({
    name: 'cloud_session_exporter_shard_inventory_size',
    type: 'gauge',
    help: "Entries of the job's inventory this replica's shard polled in its last run: devices of an MQTT job, instances of the others.",
    labels: ['job_name'],
    doc: "entries of the job's inventory in this replica's shard at its last run: devices (`aliyun_mqtt_sessions`) or instances; summed over the replicas, the whole inventory. Sharded only",
  }),
} as const;

export const CLUSTER_FAMILIES: readonly FamilyDecl[] = Object.values(CLUSTER);

export interface ClusterMetrics {
  leader: Gauge<'job_name'>;
  publishedBytes: Gauge<'job_name'>;
  grantDuration: Histogram;
  shardInventorySize: Gauge<'job_name'>;
}

/** Registers the cluster's families; `read` gives the values known only at scrape time. */
export function createClusterMetrics(
  registry: Registry,
  read: { degraded(): boolean; replicas(): number; shard(): { ordinal: number | undefined; total: number } | undefined },
): ClusterMetrics {
  const registers = [registry];
  new Gauge({
    name: CLUSTER.degraded.name,
    help: CLUSTER.degraded.help,
    registers,
    collect() {
      this.set(read.degraded() ? 1 : 0);
    },
  });
  new Gauge({
    name: CLUSTER.replicas.name,
    help: CLUSTER.replicas.help,
    registers,
    collect() {
      this.set(read.replicas());
    },
  });
  const sharded = read.shard() !== undefined;
  if (sharded) {
    new Gauge({
      name: CLUSTER.shardOrdinal.name,
      help: CLUSTER.shardOrdinal.help,
      labelNames: CLUSTER.shardOrdinal.labels,
      registers,
      collect() {
        this.reset();
        const s = read.shard();
        if (s?.ordinal !== undefined) this.set({ shard_ordinal: String(s.ordinal) }, s.ordinal);
      },
    });
    new Gauge({
      name: CLUSTER.totalShards.name,
      help: CLUSTER.totalShards.help,
      registers,
      collect() {
        this.set(read.shard()?.total ?? 0);
      },
    });
  }
  return {
    leader: new Gauge({ name: CLUSTER.leader.name, help: CLUSTER.leader.help, labelNames: CLUSTER.leader.labels, registers }),
    publishedBytes: new Gauge({ name: CLUSTER.publishedBytes.name, help: CLUSTER.publishedBytes.help, labelNames: CLUSTER.publishedBytes.labels, registers }),
    grantDuration: new Histogram({ name: CLUSTER.grantDuration.name, help: CLUSTER.grantDuration.help, buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers }),
    shardInventorySize: new Gauge({ name: CLUSTER.shardInventorySize.name, help: CLUSTER.shardInventorySize.help, labelNames: CLUSTER.shardInventorySize.labels, registers }),
  };
}
