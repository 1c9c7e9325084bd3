// The compose stack without a Docker engine: its services and profiles, and that everything it
// mounts or points at exists in the repository and agrees (ports, aliases, paths inside containers).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadScenario } from '../../emulator/scenario';
import { JOB_TYPES } from '../../src/apis';
import { parseConfig } from '../../src/config/load';

const repo = path.resolve(__dirname, '../..');
const readYaml = (file: string): any => parse(fs.readFileSync(path.join(repo, file), 'utf8'), { merge: true });

const compose = readYaml('docker-compose.yml');
const services: Record<string, any> = compose.services;

/** `${VAR:-default}` / `${VAR-default}` as compose would resolve them with VAR unset. */
const withDefaults = (s: string): string => s.replace(/\$\{[A-Z0-9_]+:?-([^}]*)\}/g, '$1');

interface Mount {
  source: string;
  target: string;
  bind: boolean;
}
function mountsOf(service: any): Mount[] {
  return (service.volumes ?? []).map((v: string | { type: string; source: string; target: string }) => {
    if (typeof v !== 'string') return { source: v.source, target: v.target, bind: v.type === 'bind' };
    const [source, target] = withDefaults(v).split(':');
    return { source, target, bind: source.startsWith('.') || source.startsWith('/') };
  });
}
/** Host path (repo-relative) mounted at `target` in `service`. */
function hostPathAt(service: string, target: string): string | undefined {
  return mountsOf(services[service]).find((m) => m.bind && m.target === target)?.source;
}
/** Host path (repo-relative) of a file inside `service`, mounted itself or within a mounted directory. */
function hostPathOf(service: string, file: string): string | undefined {
  const m = mountsOf(services[service]).find((m) => m.bind && (m.target === file || file.startsWith(`${m.target}/`)));
  return m && `${m.source}${file.slice(m.target.length)}`;
}
const CONFIG_IN_CONTAINER = '/etc/cloud-session-exporter/config.yaml';
const envOf = (service: string): Record<string, string> => services[service].environment ?? {};

describe('docker-compose.yml', () => {
  it('has the exporter, Prometheus, Alertmanager and Grafana, a demo profile with the emulator, and an ha profile with Redis and two replicas', () => {
    expect(Object.keys(services).sort()).toEqual(['alertmanager', 'emulator', 'exporter', 'exporter-demo', 'exporter-ha-1', 'exporter-ha-2', 'grafana', 'prometheus', 'redis']);
    for (const always of ['prometheus', 'alertmanager', 'grafana']) expect(services[always].profiles, always).toBeUndefined();
    expect(services.emulator.profiles).toEqual(['demo', 'ha']);
    expect(services['exporter-demo'].profiles).toEqual(['demo']);
    expect(services.exporter.profiles).toEqual(['cloud']);
    for (const name of ['exporter-ha-1', 'exporter-ha-2', 'redis']) expect(services[name].profiles, name).toEqual(['ha']);
  });

  it('mounts only paths that exist in the repository, and declares its named volumes', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const [name, service] of Object.entries(services)) {
      for (const m of mountsOf(service)) {
        if (m.bind) expect(fs.existsSync(path.join(repo, m.source)), `${name}: ${m.source}`).toBe(true);
        else expect(declared, `${name}: volume ${m.source}`).toContain(m.source);
      }
    }
  });

  it('builds the exporter and the emulator from the Dockerfile, pins every other image', () => {
    for (const name of ['exporter', 'exporter-demo', 'exporter-ha-1', 'exporter-ha-2', 'emulator']) expect(services[name].build, name).toBe('.');
    for (const name of ['prometheus', 'alertmanager', 'grafana', 'redis']) expect(services[name].image, name).toMatch(/:v?\d+\.\d+\.\d+$/);
  });

  it('lets Prometheus find every exporter that runs under the alias exporter, on the port the image exposes', () => {
    const dockerfile = fs.readFileSync(path.join(repo, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^EXPOSE 10780$/m);
    const hostPorts = new Set<string>();
    for (const name of ['exporter', 'exporter-demo', 'exporter-ha-1', 'exporter-ha-2']) {
      expect(services[name].networks.default.aliases, name).toContain('exporter');
      const ports: string[] = services[name].ports.map(withDefaults);
      expect(ports, name).toHaveLength(1);
      expect(ports[0], name).toMatch(/^127\.0\.0\.1:\d+:10780$/);
      if (name.startsWith('exporter-ha')) hostPorts.add(ports[0]);
    }
    expect(hostPorts.size, 'the two ha replicas publish different host ports').toBe(2);
    const prometheus = readYaml(hostPathAt('prometheus', '/etc/prometheus/prometheus.yml')!);
    // One target per container behind the alias: both ha replicas, or the one exporter of the other profiles.
    const job = prometheus.scrape_configs.find((sc: any) => sc.dns_sd_configs);
    expect(job.dns_sd_configs).toEqual([expect.objectContaining({ names: ['exporter'], type: 'A', port: 10780 })]);
    // Same job name as the project's example scrape config, which the alerts select on.
    const example = readYaml('config/prometheus/prometheus.yml');
    const exampleJob = example.scrape_configs.find((sc: any) => sc.static_configs.some((c: any) => c.targets.some((t: string) => t.endsWith(':10780')))).job_name;
    expect(job.job_name).toBe(exampleJob);
    expect(prometheus.alerting.alertmanagers[0].static_configs[0].targets).toEqual(['alertmanager:9093']);
  });

  it("loads the project's recording rules and alerts into Prometheus", () => {
    const prometheus = readYaml(hostPathAt('prometheus', '/etc/prometheus/prometheus.yml')!);
    const mounted = Object.fromEntries(mountsOf(services.prometheus).map((m) => [m.target, m.source]));
    // One file per job type (and the exporter's own), found by the glob: a new API adds its file, nothing else.
    expect(mounted['/etc/prometheus/rules']).toBe('./config/prometheus/rules');
    expect(prometheus.rule_files).toEqual(['/etc/prometheus/rules/*.yml']);
    expect(fs.readdirSync(path.join(repo, 'config/prometheus/rules')).filter((f) => f.endsWith('.yml')).length).toBeGreaterThanOrEqual(5);
  });

  it('provisions Grafana with the Prometheus service and the dashboards at the path they are mounted', () => {
    const datasources = readYaml(hostPathAt('grafana', '/etc/grafana/provisioning/datasources/cloud-session-exporter.yml')!);
    expect(datasources.datasources).toEqual([expect.objectContaining({ type: 'prometheus', url: 'http://prometheus:9090' })]);
    const providers = readYaml(hostPathAt('grafana', '/etc/grafana/provisioning/dashboards/cloud-session-exporter.yml')!).providers;
    expect(hostPathAt('grafana', providers[0].options.path)).toBe('./grafana/dashboards');
  });

  it('runs the demo configuration, every job type, against the emulator service: its endpoints, broker, instances, devices and credentials', () => {
    const configPath = hostPathAt('exporter-demo', CONFIG_IN_CONTAINER)!;
    // The same file as `npm run demo`, so the compose demo shows whatever the demo shows (test/core/demo.test.ts runs it).
    expect(configPath).toBe('./config/demo.yaml');
    const env = Object.fromEntries(Object.entries(envOf('exporter-demo')).map(([k, v]) => [k, withDefaults(String(v))]));
    // Variables resolve as compose passes them (a ${VAR:-default} left unset would point a job away from the emulator).
    const config = parseConfig(fs.readFileSync(path.join(repo, configPath), 'utf8'), CONFIG_IN_CONTAINER, { env, jobTypes: JOB_TYPES });
    expect(new Set(config.jobs.map((j) => j.type))).toEqual(new Set(JOB_TYPES.map((t) => t.type)));

    const command: string[] = services.emulator.command;
    const argOf = (flag: string) => command[command.indexOf(flag) + 1]!;
    const portOf = (listen: string) => listen.split(':').pop();
    expect(argOf('--listen')).toMatch(/^0\.0\.0\.0:\d+$/);
    expect(argOf('--broker-listen')).toMatch(/^0\.0\.0\.0:\d+$/);
    const scenario = loadScenario(path.join(repo, argOf('--scenario'))) as unknown as Record<string, unknown> & { credentials: Array<Record<string, string>> };
    const emulated = new Set(Object.values(scenario).flatMap((section) => ((section as { instances?: Array<{ instance_id: string }> })?.instances ?? []).map((i) => i.instance_id)));

    for (const job of config.jobs as Array<Record<string, any>>) {
      expect(new URL(job.endpoint).host, job.name).toBe(`emulator:${portOf(argOf('--listen'))}`);
      const instances = JOB_TYPES.find((t) => t.type === job.type)!.instanceIds(job as any);
      expect(instances.length, job.name).toBeGreaterThan(0);
      for (const id of instances) expect(emulated.has(id), `${job.name}: instance ${id} is in the emulator's scenario`).toBe(true);
      if (job.client_ids_file) {
        const host = hostPathOf('exporter-demo', path.posix.resolve(path.posix.dirname(CONFIG_IN_CONTAINER), job.client_ids_file));
        expect(host !== undefined && fs.existsSync(path.join(repo, host)), `${job.name}: ${job.client_ids_file} is mounted`).toBe(true);
      }
      // The canary subscribes to the emulator's broker, listening on the service network at that port.
      if (job.subscribe) expect(new URL(job.subscribe.url).host, job.name).toBe(`emulator:${portOf(argOf('--broker-listen'))}`);
    }
    // Every account signs with keys the emulator's scenario accepts.
    const KEYS = ['access_key_id', 'access_key_secret', 'secret_id', 'secret_key'];
    for (const account of config.accounts) {
      const keys = account.credentials as unknown as Record<string, string>;
      const match = scenario.credentials.some((c) => c.provider === account.provider && KEYS.every((k) => c[k] === keys[k]));
      expect(match, `account ${account.name}: the emulator knows its keys`).toBe(true);
    }
    expect(services['exporter-demo'].depends_on.emulator.condition).toBe('service_healthy');
  });

  it('runs the ha profile: two replicas of one cluster (the redis service, distinct replica ids and probe devices) against the emulator', () => {
    for (const name of ['exporter-ha-1', 'exporter-ha-2']) {
      const service = services[name];
      expect(hostPathAt(name, CONFIG_IN_CONTAINER), name).toBe('./config/compose/ha.yaml');
      expect(service.depends_on, name).toEqual({ emulator: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
      const env = { ...Object.fromEntries(Object.entries(envOf(name)).map(([k, v]) => [k, String(v)])), HOSTNAME: service.hostname };
      const config = parseConfig(fs.readFileSync(path.join(repo, './config/compose/ha.yaml'), 'utf8'), CONFIG_IN_CONTAINER, { env, jobTypes: JOB_TYPES });
      const cluster = config.cluster!;
      const url = new URL(cluster.redis.url);
      expect([url.hostname, url.port]).toEqual(['redis', '6379']);
      expect(cluster.replica_id).toBe(service.hostname);
      expect(cluster.sharding, 'HA: every replica serves everything').toBeUndefined();
      for (const job of config.jobs as Array<Record<string, any>>) {
        expect(new URL(job.endpoint).host, job.name).toBe('emulator:18080');
        if (job.client_ids_file) expect(fs.existsSync(path.join(repo, hostPathOf(name, job.client_ids_file)!)), job.client_ids_file).toBe(true);
        if (job.subscribe) expect(job.subscribe.device_id).toContain(service.hostname);
      }
    }
    expect(services['exporter-ha-1'].hostname).not.toBe(services['exporter-ha-2'].hostname);
    expect(services.redis.healthcheck.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(services.redis.command).toEqual(expect.arrayContaining(['--save', '', '--appendonly', 'no']));
  });

  it('takes the cloud exporter credentials from the environment, never from the compose file', () => {
    // A key without a value passes the variable through from the shell that runs compose.
    const env = envOf('exporter');
    expect(Object.keys(env)).toEqual(expect.arrayContaining(['ALIBABA_CLOUD_ACCESS_KEY_ID', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET']));
    for (const [name, value] of Object.entries(env)) expect(value, name).toBeNull();
    const raw = fs.readFileSync(path.join(repo, hostPathAt('exporter', CONFIG_IN_CONTAINER)!), 'utf8');
    // Every credential line the config has (there must be some) takes its value from a variable.
    const credentialLines = raw.split('\n').filter((l) => /^\s*(access_key_id|access_key_secret|secret_id|secret_key):/.test(l));
    expect(credentialLines.length).toBeGreaterThan(0);
    for (const line of credentialLines) expect(line).toMatch(/\$\{[A-Z0-9_]+\}\s*$/);
  });
});

describe('Dockerfile', () => {
  const dockerfile = fs.readFileSync(path.join(repo, 'Dockerfile'), 'utf8');

  it('builds on one pinned Node.js slim base in both stages', () => {
    const bases = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(bases).toHaveLength(2);
    expect(new Set(bases).size).toBe(1);
    expect(bases[0]).toMatch(/^node:\d+\.\d+\.\d+-bookworm-slim$/);
  });

  it('runs node as a non-root user under an init, with a node-based healthcheck', () => {
    expect(dockerfile).toMatch(/^USER node(:node)?$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m);
    expect(dockerfile).toMatch(/^CMD \["node", "dist\/src\/main\.js", "--config\.file=\/etc\/cloud-session-exporter\/config\.yaml"\]$/m);
    expect(dockerfile).toMatch(/^ {2}CMD \["node", "-e", ".*\/-\/healthy/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
  });
});
