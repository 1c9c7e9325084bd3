// The exporter's own health metrics (prom-client): build, config reloads, job runs and per-instance results.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { createApiMetrics, type ApiMetrics } from '../cloud/api-metrics';

export interface SelfMetrics {
  registry: Registry;
  api: ApiMetrics;
  reloadSuccessful: Gauge;
  reloadTimestamp: Gauge;
  jobSuccess: Gauge<'job_name'>;
  jobDuration: Gauge<'job_name'>;
  jobLastSuccess: Gauge<'job_name'>;
  jobInterval: Gauge<'job_name'>;
  jobRuns: Counter<'job_name' | 'result'>;
  jobStale: Gauge<'job_name'>;
  instanceSuccess: Gauge<'job_name' | 'instance_id'>;
  instanceLastSuccess: Gauge<'job_name' | 'instance_id'>;
  instanceStale: Gauge<'job_name' | 'instance_id'>;
  inventoryInvalid: Gauge<'job_name'>;
  inventoryEntries: Gauge<'job_name'>;
}

export const RUN_RESULTS = ['success', 'failure', 'skipped_overlap'] as const;

const LINT_FAILING_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function createSelfMetrics(build: { version: string; revision: string }, opts: { processMetrics?: boolean } = {}): SelfMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (opts.processMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    // Gauges named like counters, which `promtool check metrics` rejects; nodejs_active_{handles,requests,resources}
    // (per type, without _total) carry the same information.
    for (const name of LINT_FAILING_DEFAULT_METRICS) registry.removeSingleMetric(name);
  }
  new Gauge({
    name: 'cloud_session_exporter_build_info',
    help: 'A metric with a constant 1 value labeled by the build of the running exporter.',
    labelNames: ['version', 'revision', 'nodejs_version'],
    registers,
  }).set({ version: build.version, revision: build.revision, nodejs_version: process.version }, 1);
  const g = <L extends string>(name: string, help: string, labelNames: L[] = []) => new Gauge<L>({ name, help, labelNames, registers });
  return {
    registry,
    api: createApiMetrics(registry),
    reloadSuccessful: g('cloud_session_exporter_config_last_reload_successful', 'Whether the last configuration (re)load succeeded (1) or failed (0).'),
    reloadTimestamp: g('cloud_session_exporter_config_last_reload_success_timestamp_seconds', 'Time of the last successful configuration load.'),
    jobSuccess: g('cloud_session_exporter_job_success', 'Whether the last run of the job succeeded for every cloud instance (1) or not (0).', ['job_name']),
    jobDuration: g('cloud_session_exporter_job_duration_seconds', 'Wall time of the last completed run of the job.', ['job_name']),
    jobLastSuccess: g('cloud_session_exporter_job_last_success_timestamp_seconds', 'End of the last fully successful run of the job (0 if none yet).', ['job_name']),
    jobInterval: g('cloud_session_exporter_job_interval_seconds', 'Shortest interval between two runs of the job on its schedule.', ['job_name']),
    jobRuns: new Counter({ name: 'cloud_session_exporter_job_runs_total', help: 'Runs of the job by result; skipped_overlap counts runs skipped because the previous one was still going.', labelNames: ['job_name', 'result'], registers }),
    jobStale: g('cloud_session_exporter_job_stale', 'Whether some of the job\'s data are missing because they went stale: dropped for being older than stale_after and not yet replaced by a successful poll (1) or not (0).', ['job_name']),
    instanceSuccess: g('cloud_session_exporter_instance_success', 'Whether the last poll of this cloud instance succeeded (1) or not (0).', ['job_name', 'instance_id']),
    instanceLastSuccess: g('cloud_session_exporter_instance_last_success_timestamp_seconds', 'Time of the last successful poll of this cloud instance (0 if none yet).', ['job_name', 'instance_id']),
    instanceStale: g('cloud_session_exporter_instance_stale', 'Whether this cloud instance\'s data are missing because they went stale: dropped for being older than stale_after and not yet replaced by a successful poll (1) or not (0).', ['job_name', 'instance_id']),
    inventoryInvalid: g('cloud_session_exporter_inventory_invalid_entries', 'Inventory entries rejected in the last run (each is logged once).', ['job_name']),
    inventoryEntries: g('cloud_session_exporter_inventory_entries', 'Valid, de-duplicated inventory entries in the last run.', ['job_name']),
  };
}
