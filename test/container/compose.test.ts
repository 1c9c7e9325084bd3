// The compose stack without a Docker engine: its services and profiles, and that everything it
// mounts or points at exists in the repository and agrees (ports, aliases, paths inside containers).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

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
const envOf = (service: string): Record<string, string> => services[service].environment ?? {};

describe('docker-compose.yml', () => {
  it('has the exporter, Prometheus, Alertmanager and Grafana, and a demo profile with the emulator', () => {
    expect(Object.keys(services).sort()).toEqual(['alertmanager', 'emulator', 'exporter', 'exporter-demo', 'grafana', 'prometheus']);
    for (const always of ['prometheus', 'alertmanager', 'grafana']) expect(services[always].profiles, always).toBeUndefined();
    expect(services.emulator.profiles).toEqual(['demo']);
    expect(services['exporter-demo'].profiles).toEqual(['demo']);
    expect(services.exporter.profiles).toEqual(['cloud']);
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
    for (const name of ['exporter', 'exporter-demo', 'emulator']) expect(services[name].build, name).toBe('.');
    for (const name of ['prometheus', 'alertmanager', 'grafana']) expect(services[name].image, name).toMatch(/:v?\d+\.\d+\.\d+$/);
  });

  it('lets Prometheus reach whichever exporter runs at exporter:10780, the port the image exposes', () => {
    const dockerfile = fs.readFileSync(path.join(repo, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^EXPOSE 10780$/m);
    for (const name of ['exporter', 'exporter-demo']) {
      expect(services[name].networks.default.aliases, name).toContain('exporter');
      expect(services[name].ports.map(withDefaults), name).toContain('127.0.0.1:10780:10780');
    }
    const prometheus = readYaml(hostPathAt('prometheus', '/etc/prometheus/prometheus.yml')!);
    const targets = prometheus.scrape_configs.flatMap((sc: any) => sc.static_configs.flatMap((c: any) => c.targets));
    expect(targets).toContain('exporter:10780');
    // Same job name as the project's example scrape config, which the alerts select on.
    const example = readYaml('config/prometheus/prometheus.yml');
    const exporterJob = (cfg: any) => cfg.scrape_configs.find((sc: any) => sc.static_configs.some((c: any) => c.targets.some((t: string) => t.endsWith(':10780')))).job_name;
    expect(exporterJob(prometheus)).toBe(exporterJob(example));
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

  it('points the demo exporter at the emulator, with the files and credentials its config names', () => {
    const configPath = hostPathAt('exporter-demo', '/etc/cloud-session-exporter/config.yaml')!;
    const config = readYaml(configPath);
    const listen = services.emulator.command[services.emulator.command.indexOf('--listen') + 1] as string;
    const scenario = services.emulator.command[services.emulator.command.indexOf('--scenario') + 1] as string;
    expect(fs.existsSync(path.join(repo, scenario)), scenario).toBe(true);
    for (const job of config.jobs) {
      expect(new URL(job.endpoint).host, job.name).toBe(`emulator:${listen.split(':').pop()}`);
      if (job.client_ids_file) expect(hostPathAt('exporter-demo', job.client_ids_file), job.client_ids_file).toBeDefined();
    }
    // The canary subscribes to the emulator's broker, which must listen on the service network at that port.
    const brokerListen = services.emulator.command[services.emulator.command.indexOf('--broker-listen') + 1] as string;
    const canary = config.jobs.find((j: { type: string }) => j.type === 'aliyun_mqtt_probe');
    expect(canary, 'a canary job in the compose demo').toBeDefined();
    expect(brokerListen).toMatch(/^0\.0\.0\.0:\d+$/);
    expect(new URL(canary.subscribe.url).host).toBe(`emulator:${brokerListen.split(':').pop()}`);
    const raw = fs.readFileSync(path.join(repo, configPath), 'utf8');
    const referenced = [...raw.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]);
    expect(referenced.length).toBeGreaterThan(0);
    for (const name of referenced) expect(envOf('exporter-demo')[name], name).toBeTruthy();
    expect(services['exporter-demo'].depends_on.emulator.condition).toBe('service_healthy');
  });

  it('takes the cloud exporter credentials from the environment, never from the compose file', () => {
    // A key without a value passes the variable through from the shell that runs compose.
    const env = envOf('exporter');
    expect(Object.keys(env)).toEqual(expect.arrayContaining(['ALIBABA_CLOUD_ACCESS_KEY_ID', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET']));
    for (const [name, value] of Object.entries(env)) expect(value, name).toBeNull();
    const raw = fs.readFileSync(path.join(repo, hostPathAt('exporter', '/etc/cloud-session-exporter/config.yaml')!), 'utf8');
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
