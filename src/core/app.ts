// createApp wires config, cloud accounts, jobs, metrics and HTTP; main only parses flags and listens.
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ExporterConfig } from '../config/load';
import { LimiterPool, TransportPool, type TransportFactory } from '../cloud/accounts';
import { CredentialsPool } from '../cloud/credentials/pool';
import type { ProxyEnv } from '../cloud/proxy';
import type { AnyJobType } from './job-type';
import type { JobRunner } from './job-runner';
import { JobSet } from './reconcile';
import { createLogger, type Logger } from '../util/log';
import { createSelfMetrics, type SelfMetrics } from '../metrics/self-metrics';
import { SnapshotStore } from '../metrics/snapshot-store';
import { createHttpHandler } from './http';
import { BUILD } from './build-info';
import { snapshotExposition, type Exposition } from '../metrics/exposition';
import { buildQuotaPlan } from './quota-plan';
import { createWebServer, type WebServer } from '../web/web-server';
import { redact } from '../util/redact';
import { collectStatus, notReadyReasons, type LoadRecord, type StatusModel } from './status-model';
import { refreshFrom, renderConfigPage, renderStatusPage } from './status-page';
import { maskedConfigYaml } from './config-view';
import { Cluster } from '../cluster/cluster';
import { boundedWait } from '../util/bounded-wait';
import { splitHostPort } from '../util/host-port';

export interface AppDeps {
  logger?: Logger;
  /** The job types the config may use (src/apis/index.ts). */
  jobTypes: readonly AnyJobType[];
  transports?: Readonly<Record<string, TransportFactory>>;
  /** The SDK transports shared across reloads (tests inspect it). */
  transportPool?: TransportPool;
  /** The accounts' credentials providers, shared across reloads (tests inspect it and tune its pacing). */
  credentialsPool?: CredentialsPool;
  /** Where proxy variables (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) are read; default process.env. */
  proxyEnv?: ProxyEnv;
  /** Reads the config again for POST /-/reload and SIGHUP; throws ConfigError on a bad file. */
  loadConfig?: () => ExporterConfig;
  telemetryPath?: string;
  /** --web.config.file: TLS, client certificates, basic auth, headers and rate limit for every endpoint. */
  webConfigFile?: string;
  /** --web.enable-lifecycle: whether POST /-/reload is served (default true); SIGHUP reloads either way. */
  lifecycle?: boolean;
  processMetrics?: boolean;
  now?: () => number;
}

export interface App {
  readonly metrics: SelfMetrics;
  readonly store: SnapshotStore;
  readonly logger: Logger;
  start(): void;
  isReady(): boolean;
  /** Resolves once every job finished its first attempt and none is blocked. */
  whenReady(): Promise<void>;
  reload(): Promise<{ ok: boolean; error?: string }>;
  /** The exposition text, in chunks, after dropping data older than stale_after: one consistent snapshot. */
  exposition(): Promise<Exposition>;
  /** Runs every job now (tests, benchmarks). */
  runAllNow(): Promise<void>;
  runner(jobName: string): JobRunner | undefined;
  /** What the status page at `/` shows, now. */
  status(): StatusModel;
  handler: http.RequestListener;
  /** Reads the web config file (throws its WebConfigError when it is invalid), then listens. */
  listen(address: string): Promise<AddressInfo>;
  stop(graceMs?: number): Promise<void>;
}

export function createApp(initial: ExporterConfig, deps: AppDeps): App {
  const logger = deps.logger ?? createLogger();
  const jobTypes = deps.jobTypes;
  const now = deps.now ?? Date.now;
  const startedAt = now();
  const telemetryPath = deps.telemetryPath ?? '/metrics';
  const metrics = createSelfMetrics(BUILD, { processMetrics: deps.processMetrics, jobMetrics: jobTypes.flatMap((t) => t.jobMetrics ?? []) });
  const store = new SnapshotStore();
  // Replicas coordinated through Redis: the quotas' windows there, and each job's coordination (src/cluster/).
  const cluster = initial.cluster ? new Cluster(initial.cluster, logger, metrics.registry) : undefined;
  const limiters = new LimiterPool(metrics.api, cluster);
  const transports = deps.transportPool ?? new TransportPool(deps.transports, deps.proxyEnv);
  const credentials = deps.credentialsPool ?? new CredentialsPool({ logger, metrics: metrics.credentials, proxyEnv: deps.proxyEnv });
  const jobs = new JobSet({
    jobTypes,
    store,
    metrics,
    limiters,
    transports,
    credentials,
    logger,
    now: deps.now,
    onRunEnd: notifyIfReady,
    ...(cluster ? { coordinate: (job, jobLogger) => cluster.coordinate(job, jobLogger) } : {}),
  });
  let config = initial;
  let lastReload: LoadRecord = { ok: true, at: startedAt };
  let lastGoodLoadAt = startedAt;
  let webRead: LoadRecord | undefined;
  let server: WebServer | undefined;
  const readyWaiters: Array<() => void> = [];

  function build(cfg: ExporterConfig): void {
    jobs.apply(cfg);
    // The quota plan's warnings at every load, not only under --config.check.
    for (const warning of buildQuotaPlan(cfg, jobTypes, deps.proxyEnv).warnings) logger.warn({ warning }, 'quota plan');
  }

  function notifyIfReady(): void {
    if (isReady()) readyWaiters.splice(0).forEach((w) => w());
  }

  function isReady(): boolean {
    return notReadyReasons(jobs.runners()).length === 0;
  }

  function refreshStaleness(): void {
    for (const [job_name, instance_id] of store.expire(now())) logger.warn({ job_name, instance_id }, 'dropping data older than stale_after');
    for (const runner of jobs.runners()) {
      let any = false;
      for (const instance_id of runner.servedInstanceIds) {
        const stale = store.isStale(runner.name, instance_id);
        metrics.instanceStale.set({ job_name: runner.name, instance_id }, stale ? 1 : 0);
        any ||= stale;
      }
      metrics.jobStale.set({ job_name: runner.name }, any ? 1 : 0);
    }
  }

  const app: App = {
    metrics,
    store,
    logger,
    start() {
      cluster?.start();
      jobs.start();
    },
    isReady,
    whenReady() {
      return isReady() ? Promise.resolve() : new Promise((resolve) => readyWaiters.push(resolve));
    },
    async reload() {
      if (!deps.loadConfig) return { ok: false, error: 'reload is not available: no config file' };
      try {
        const next = deps.loadConfig();
        // The replica's place in a cluster (its Redis, id, shards) is fixed for its life: a restart changes it.
        if (JSON.stringify(next.cluster ?? null) !== JSON.stringify(config.cluster ?? null)) {
          throw new Error('cluster: the block changed; it takes effect at a restart (the running configuration is kept)');
        }
        build(next);
        config = next;
        lastReload = { ok: true, at: now() };
        lastGoodLoadAt = lastReload.at;
        metrics.reloadSuccessful.set(1);
        metrics.reloadTimestamp.set(Date.now() / 1000);
        logger.info({ jobs: config.jobs.length }, 'configuration reloaded');
        return { ok: true };
      } catch (err) {
        metrics.reloadSuccessful.set(0);
        const message = (err as Error).message;
        lastReload = { ok: false, at: now(), error: redact(message) };
        logger.error({ err }, 'configuration reload failed; keeping the previous configuration');
        return { ok: false, error: message };
      }
    },
    async exposition() {
      refreshStaleness();
      const selfText = await metrics.registry.metrics();
      // Taken after the last await: the families of one moment, retained before any poll can patch them.
      return snapshotExposition(selfText, store);
    },
    async runAllNow() {
      await Promise.all(jobs.runners().map((r) => r.trigger()));
    },
    runner(name) {
      return jobs.runner(name);
    },
    status() {
      return collectStatus({
        now: now(),
        build: BUILD,
        startedAt,
        config,
        lastReload,
        lastGoodLoadAt,
        web: deps.webConfigFile && webRead ? { file: deps.webConfigFile, lastRead: webRead } : undefined,
        telemetryPath,
        runners: jobs.runners(),
        store,
        limiters,
        activity: metrics.api.activity,
        credentials,
      });
    },
    handler: undefined as unknown as http.RequestListener,
    async listen(address) {
      const { host, port } = parseListenAddress(address);
      server = createWebServer({
        webConfigFile: deps.webConfigFile,
        handler: app.handler,
        logger,
        // The web config file follows its own changes (and those of the certificates it names), not /-/reload.
        onReload(ok, error) {
          metrics.webReloadSuccessful.set(ok ? 1 : 0);
          if (ok) metrics.webReloadTimestamp.set(Date.now() / 1000);
          webRead = { ok, at: now(), error: error === undefined ? undefined : redact(error) };
        },
      });
      webRead = { ok: true, at: now() };
      metrics.webReloadSuccessful.set(1);
      metrics.webReloadTimestamp.set(Date.now() / 1000);
      return server.listen(host, port);
    },
    async stop(graceMs = 10_000) {
      // Each runner ends within graceMs + ABANDON_AFTER_MS + its close budget, whatever its calls do.
      await jobs.stop(graceMs);
      // Idle connections end at once, a scrape still streaming gets 100 ms (not the whole grace period again), and
      // connections still in a TLS handshake are ended too. Meanwhile this replica leaves the cluster (the others
      // stop counting it at once), or, if Redis does not answer in time, its entry expires.
      await Promise.all([server?.close(), cluster && boundedWait(cluster.stop(), CLUSTER_LEAVE_BUDGET_MS)]);
    },
  };
  app.handler = createHttpHandler({
    telemetryPath,
    contentType: metrics.registry.contentType,
    exposition: () => app.exposition(),
    isReady,
    reload: deps.lifecycle === false ? undefined : () => app.reload(),
    logger,
    statusPage: (query) => renderStatusPage(app.status(), refreshFrom(query)),
    configPage: () => renderConfigPage({ telemetryPath, configFile: config.source }, maskedConfigYaml(config.document)),
  });

  build(config);
  metrics.reloadSuccessful.set(1);
  metrics.reloadTimestamp.set(Date.now() / 1000);
  metrics.webReloadSuccessful.set(1);
  metrics.webReloadTimestamp.set(Date.now() / 1000);
  return app;
}

/** Leaving the cluster within the exit budget (main.ts: grace + 950 ms; jobs take up to grace + 700 ms). */
const CLUSTER_LEAVE_BUDGET_MS = 150;

function parseListenAddress(address: string): { host: string; port: number } {
  const a = splitHostPort(address);
  if (!a) throw new Error(`invalid listen address "${address}": use host:port, :port or [::1]:port`);
  if (a.port > 65535) throw new Error(`invalid port in listen address "${address}"`);
  return { host: a.host || '0.0.0.0', port: a.port };
}
