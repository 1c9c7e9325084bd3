// The exporter's own health metrics (prom-client): build, config reloads, job runs and per-instance results, each
// declared once (the docs generator reads the same declarations).
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { API_FAMILIES, createApiMetrics, type ApiMetrics } from '../cloud/api-metrics';
import { CREDENTIAL_FAMILIES, createCredentialMetrics, type CredentialMetrics } from '../cloud/credentials/metrics';
import { declareFamily, type FamilyDecl } from './declare';

export const RUN_RESULTS = ['success', 'failure', 'skipped_overlap'] as const;

const SELF = {
  buildInfo: declareFamily({
    name: 'cloud_session_exporter_build_info',
    type: 'gauge',
    help: 'A metric with a constant 1 value labeled by the build of the running exporter.',
    labels: ['version', 'revision', 'nodejs_version'],
    doc: 'build of the running exporter (constant 1)',
  }),
  reloadSuccessful: declareFamily({ name: 'cloud_session_exporter_config_last_reload_successful', type: 'gauge', help: 'Whether the last configuration (re)load succeeded (1) or failed (0).', labels: [] }),
  reloadTimestamp: declareFamily({ name: 'cloud_session_exporter_config_last_reload_success_timestamp_seconds', type: 'gauge', help: 'Time of the last successful configuration load.', labels: [] }),
  webReloadSuccessful: declareFamily({
    name: 'cloud_session_exporter_web_config_last_reload_successful',
    type: 'gauge',
    help: 'Whether the last read of the web configuration file (--web.config.file and the files it names) succeeded (1) or failed (0); 1 without a web configuration file.',
    labels: [],
    doc: 'whether the last read of `--web.config.file` (re-read when it or a certificate, key or CA file it names changes) succeeded; after a failure the previous web configuration stays in force. 1 without a web configuration file',
  }),
  webReloadTimestamp: declareFamily({
    name: 'cloud_session_exporter_web_config_last_reload_success_timestamp_seconds',
    type: 'gauge',
    help: 'Time of the last successful read of the web configuration file (the start of the server without one).',
    labels: [],
  }),
  jobSuccess: declareFamily({ name: 'cloud_session_exporter_job_success', type: 'gauge', help: 'Whether the last run of the job succeeded for every cloud instance (1) or not (0).', labels: ['job_name'] }),
  jobDuration: declareFamily({ name: 'cloud_session_exporter_job_duration_seconds', type: 'gauge', help: 'Wall time of the last completed run of the job.', labels: ['job_name'] }),
  jobLastSuccess: declareFamily({ name: 'cloud_session_exporter_job_last_success_timestamp_seconds', type: 'gauge', help: 'End of the last fully successful run of the job (0 if none yet).', labels: ['job_name'] }),
  jobInterval: declareFamily({
    name: 'cloud_session_exporter_job_interval_seconds',
    type: 'gauge',
    help: 'Shortest interval between two runs of the job on its schedule.',
    labels: ['job_name'],
    doc: 'the schedule\'s interval (shortest gap between two cron firings); `duration / interval` near 1 means the job cannot keep up',
  }),
  jobRuns: declareFamily({
    name: 'cloud_session_exporter_job_runs_total',
    type: 'counter',
    help: 'Runs of the job by result; skipped_overlap counts runs skipped because the previous one was still going.',
    labels: ['job_name', 'result'],
    doc: 'runs by `result` ∈ `success`, `failure`, `skipped_overlap` (skipped because the previous run was still going)',
  }),
  jobStale: declareFamily({
    name: 'cloud_session_exporter_job_stale',
    type: 'gauge',
    help: "Whether some of the job's data are missing because they went stale: dropped for being older than stale_after and not yet replaced by a successful poll (1) or not (0).",
    labels: ['job_name'],
  }),
  instanceSuccess: declareFamily({ name: 'cloud_session_exporter_instance_success', type: 'gauge', help: 'Whether the last poll of this cloud instance succeeded (1) or not (0).', labels: ['job_name', 'instance_id'] }),
  instanceLastSuccess: declareFamily({ name: 'cloud_session_exporter_instance_last_success_timestamp_seconds', type: 'gauge', help: 'Time of the last successful poll of this cloud instance (0 if none yet).', labels: ['job_name', 'instance_id'] }),
  instanceStale: declareFamily({
    name: 'cloud_session_exporter_instance_stale',
    type: 'gauge',
    help: "Whether this cloud instance's data are missing because they went stale: dropped for being older than stale_after and not yet replaced by a successful poll (1) or not (0).",
    labels: ['job_name', 'instance_id'],
  }),
} as const;

/** Every self-metric family the exporter declares itself (job types add their own jobMetrics). */
export const SELF_FAMILIES: readonly FamilyDecl[] = [...Object.values(SELF), ...API_FAMILIES, ...CREDENTIAL_FAMILIES];

type Labels<D> = D extends FamilyDecl<infer L> ? L : never;
type GaugeOf<K extends keyof typeof SELF> = Gauge<Labels<(typeof SELF)[K]>>;

export interface SelfMetrics {
  registry: Registry;
  api: ApiMetrics;
  credentials: CredentialMetrics;
  reloadSuccessful: GaugeOf<'reloadSuccessful'>;
  reloadTimestamp: GaugeOf<'reloadTimestamp'>;
  webReloadSuccessful: GaugeOf<'webReloadSuccessful'>;
  webReloadTimestamp: GaugeOf<'webReloadTimestamp'>;
  jobSuccess: GaugeOf<'jobSuccess'>;
  jobDuration: GaugeOf<'jobDuration'>;
  jobLastSuccess: GaugeOf<'jobLastSuccess'>;
  jobInterval: GaugeOf<'jobInterval'>;
  jobRuns: Counter<Labels<(typeof SELF)['jobRuns']>>;
  jobStale: GaugeOf<'jobStale'>;
  instanceSuccess: GaugeOf<'instanceSuccess'>;
  instanceLastSuccess: GaugeOf<'instanceLastSuccess'>;
  instanceStale: GaugeOf<'instanceStale'>;
  /** The job types' per-job metrics (label job_name), by family name. */
  jobMetrics: ReadonlyMap<string, Gauge<'job_name'>>;
}

const LINT_FAILING_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function createSelfMetrics(
  build: { version: string; revision: string },
  opts: { processMetrics?: boolean; jobMetrics?: readonly FamilyDecl<'job_name'>[] } = {},
): SelfMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (opts.processMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    // Gauges named like counters, which `promtool check metrics` rejects; nodejs_active_{handles,requests,resources}
    // (per type, without _total) carry the same information.
    for (const name of LINT_FAILING_DEFAULT_METRICS) registry.removeSingleMetric(name);
  }
  const gauge = <L extends string>(d: FamilyDecl<L>) => new Gauge<L>({ name: d.name, help: d.help, labelNames: d.labels, registers });
  gauge(SELF.buildInfo).set({ version: build.version, revision: build.revision, nodejs_version: process.version }, 1);
  const registerJobMetrics = () => {
    const byName = new Map<string, Gauge<'job_name'>>();
    for (const d of opts.jobMetrics ?? []) if (!byName.has(d.name)) byName.set(d.name, gauge(d));
    return byName;
  };
  // Registered in this order (the exposition's order): build, API calls, credentials, reloads (config, web config), jobs, instances, job types' own.
  return {
    registry,
    api: createApiMetrics(registry),
    credentials: createCredentialMetrics(registry),
    reloadSuccessful: gauge(SELF.reloadSuccessful),
    reloadTimestamp: gauge(SELF.reloadTimestamp),
    webReloadSuccessful: gauge(SELF.webReloadSuccessful),
    webReloadTimestamp: gauge(SELF.webReloadTimestamp),
    jobSuccess: gauge(SELF.jobSuccess),
    jobDuration: gauge(SELF.jobDuration),
    jobLastSuccess: gauge(SELF.jobLastSuccess),
    jobInterval: gauge(SELF.jobInterval),
    jobRuns: new Counter({ name: SELF.jobRuns.name, help: SELF.jobRuns.help, labelNames: SELF.jobRuns.labels, registers }),
    jobStale: gauge(SELF.jobStale),
    instanceSuccess: gauge(SELF.instanceSuccess),
    instanceLastSuccess: gauge(SELF.instanceLastSuccess),
    instanceStale: gauge(SELF.instanceStale),
    jobMetrics: registerJobMetrics(),
  };
}
