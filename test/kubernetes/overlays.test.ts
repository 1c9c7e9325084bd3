// The Kustomize overlays of deploy/kubernetes/, rendered with `kubectl kustomize` (KUBECTL, default kubectl from
// PATH; Debian 12's kubernetes-client is kubectl 1.20 with kustomize v2.0.3): every object valid against its
// schema, the hardening every container needs, probes, ports, selectors, the exporter config that the ConfigMap
// holds loading in the exporter's own config loader, and what each overlay adds.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load';
import { JOB_TYPES } from '../../src/apis';
import { parseFlags } from '../../src/main';
import {
  all,
  find,
  K8S_DIR,
  KUBECTL,
  kubectlVersion,
  kustomize,
  MISSING_KUBECTL,
  normalised,
  OVERLAYS,
  overlayDir,
  ref,
  ROOT,
  schemaProblems,
  selects,
  unhashed,
  type K8sObject,
  type OverlayName,
} from './render';

const version = kubectlVersion();
const rendered = new Map<OverlayName, K8sObject[]>();
/** The overlay's objects; kubectl runs once per overlay. */
function objects(name: OverlayName): K8sObject[] {
  if (!version) throw new Error(MISSING_KUBECTL);
  if (!rendered.has(name)) rendered.set(name, kustomize(overlayDir(name)));
  return rendered.get(name)!;
}

const tempDirs: string[] = [];
afterAll(() => tempDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

type Obj = Record<string, any>;
const exporter = (name: OverlayName) => find(objects(name), 'Deployment', 'cloud-session-exporter');
const exporterContainer = (name: OverlayName): Obj => {
  const c = exporter(name).spec.template.spec.containers as Obj[];
  expect(c.map((x) => x.name)).toEqual(['exporter']);
  return c[0];
};
const arg = (container: Obj, flag: string): string | undefined =>
  (container.args as string[]).find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);

/** The volume mounted at `dir` in the exporter container. */
function volumeAt(name: OverlayName, dir: string): Obj {
  const mount = (exporterContainer(name).volumeMounts as Obj[]).find((m) => m.mountPath === dir);
  expect(mount, `a volume mounted at ${dir}`).toBeDefined();
  const volume = (exporter(name).spec.template.spec.volumes as Obj[]).find((v) => v.name === mount!.name);
  expect(volume, `volume ${mount!.name}`).toBeDefined();
  return volume!;
}

/** The exporter's config.yaml and its sibling files, from the ConfigMap mounted where --config.file points. */
function exporterConfigFiles(name: OverlayName): { file: string; files: Record<string, string> } {
  const file = arg(exporterContainer(name), '--config.file');
  expect(file, '--config.file').toBeDefined();
  const volume = volumeAt(name, path.posix.dirname(file!));
  const cm = find(objects(name), 'ConfigMap', volume.configMap.name);
  const files = cm.data as Record<string, string>;
  expect(Object.keys(files)).toContain(path.posix.basename(file!));
  return { file: file!, files };
}

/** Every string value in a parsed YAML tree. */
function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (v && typeof v === 'object') return Object.values(v).flatMap(strings);
  return [];
}

function dockerfileCmd(): string[] {
  const text = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const cmds = [...text.matchAll(/^CMD (\[.*\])$/gm)];
  return JSON.parse(cmds[cmds.length - 1][1]) as string[];
}

describe('kubectl', () => {
  it('is installed (Debian package kubernetes-client, or KUBECTL)', () => {
    expect(version, MISSING_KUBECTL).toBeDefined();
    console.log(`rendering with ${KUBECTL}: ${version}`);
  });
});

describe.each(OVERLAYS)('overlay %s', (name) => {
  it('renders, and every object is valid against its schema (kubernetes-models)', () => {
    const objs = objects(name);
    expect(objs.length).toBeGreaterThan(10);
    const problems = objs.flatMap((o) => schemaProblems(o).map((p) => `${ref(o)}: ${p}`));
    expect(problems).toEqual([]);
  });

  it('puts every object in the namespace it creates', () => {
    const objs = objects(name);
    const ns = find(objs, 'Namespace', /.*/).metadata.name;
    for (const o of objs.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace, ref(o)).toBe(ns);
  });

  it('keeps every object small enough for client-side kubectl apply (last-applied annotation < 256 KiB)', () => {
    for (const o of objects(name)) expect(JSON.stringify(o).length, ref(o)).toBeLessThan(262_144);
  });

  it('runs every container non-root, read-only, without privileges or capabilities, under RuntimeDefault seccomp', () => {
    for (const d of all(objects(name), 'Deployment')) {
      const pod = d.spec.template.spec;
      expect(pod.hostNetwork ?? false, ref(d)).toBe(false);
      expect(pod.automountServiceAccountToken, `${ref(d)} automountServiceAccountToken`).toBe(false);
      // Volume types the Pod Security "restricted" profile allows (hostPath among those it does not).
      for (const v of (pod.volumes ?? []) as Obj[]) {
        const type = Object.keys(v).filter((k) => k !== 'name');
        expect(['configMap', 'secret', 'emptyDir', 'projected', 'downwardAPI'], `${ref(d)} volume ${v.name}`).toEqual(expect.arrayContaining(type));
      }
      for (const c of pod.containers as Obj[]) {
        const sc = c.securityContext ?? {};
        const at = `${ref(d)} container ${c.name}`;
        expect(sc.allowPrivilegeEscalation, `${at} allowPrivilegeEscalation`).toBe(false);
        expect(sc.readOnlyRootFilesystem, `${at} readOnlyRootFilesystem`).toBe(true);
        expect(sc.privileged ?? false, `${at} privileged`).toBe(false);
        expect(sc.capabilities?.drop, `${at} capabilities.drop`).toEqual(['ALL']);
        expect(sc.capabilities?.add ?? [], `${at} capabilities.add`).toEqual([]);
        expect(sc.runAsNonRoot, `${at} runAsNonRoot`).toBe(true);
        expect(sc.seccompProfile?.type, `${at} seccompProfile`).toBe('RuntimeDefault');
        expect(pod.securityContext?.runAsNonRoot, `${ref(d)} pod runAsNonRoot`).toBe(true);
        expect(pod.securityContext?.seccompProfile?.type, `${ref(d)} pod seccompProfile`).toBe('RuntimeDefault');
        expect(sc.runAsUser ?? pod.securityContext.runAsUser, `${at} runAsUser`).toBeGreaterThan(0);
        expect(c.resources?.requests?.cpu, `${at} cpu request`).toBeDefined();
        expect(c.resources?.requests?.memory, `${at} memory request`).toBeDefined();
        expect(c.resources?.limits?.memory, `${at} memory limit`).toBeDefined();
        expect(c.command, `${at} keeps the image's entrypoint`).toBeUndefined();
      }
    }
  });

  it("runs the exporter as the image's user node (1000:1000) with a writable emptyDir /tmp", () => {
    const pod = exporter(name).spec.template.spec;
    const c = exporterContainer(name);
    expect([c.securityContext.runAsUser, c.securityContext.runAsGroup]).toEqual([1000, 1000]);
    expect([pod.securityContext.runAsUser, pod.securityContext.runAsGroup]).toEqual([1000, 1000]);
    expect(volumeAt(name, '/tmp').emptyDir).toBeDefined();
    const tmp = (c.volumeMounts as Obj[]).find((m) => m.mountPath === '/tmp');
    expect(tmp!.readOnly ?? false).toBe(false);
    for (const m of (c.volumeMounts as Obj[]).filter((x) => x.mountPath !== '/tmp')) expect(m.readOnly, m.mountPath).toBe(true);
  });

  it("starts the image's command through its tini entrypoint, with the config file, port and shutdown grace", () => {
    const c = exporterContainer(name);
    expect(c.args.slice(0, 2)).toEqual(dockerfileCmd().slice(0, 2));
    expect(arg(c, '--web.listen-address')).toBe(':10780');
    expect(c.ports).toEqual([{ name: 'metrics', containerPort: 10780, protocol: 'TCP' }]);
  });

  it("passes only flags the exporter's own parser accepts (a misspelt one would stop it at start-up)", () => {
    const args = (exporterContainer(name).args as string[]).slice(2);
    expect(() => parseFlags(args)).not.toThrow();
    expect(parseFlags(args)['web.config.file']).toBe(name === 'web-security' ? '/etc/cloud-session-exporter/web/web-config.yml' : '');
  });

  it('gives the pod more time to stop than --web.shutdown-grace-period, with a margin', () => {
    const grace = arg(exporterContainer(name), '--web.shutdown-grace-period') ?? '15s';
    const seconds = Number(/^(\d+)s$/.exec(grace)?.[1]);
    expect(seconds).toBeGreaterThan(0);
    expect(exporter(name).spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(seconds + 10);
  });

  it('serves port 10780 as "metrics" through the Service, which selects the exporter pods only', () => {
    const objs = objects(name);
    const svc = find(objs, 'Service', 'cloud-session-exporter');
    expect(svc.spec.ports).toEqual([{ name: 'metrics', port: 10780, targetPort: 'metrics', protocol: 'TCP' }]);
    for (const d of all(objs, 'Deployment')) {
      expect(selects({ matchLabels: svc.spec.selector }, d.spec.template.metadata.labels), ref(d)).toBe(d.metadata.name === 'cloud-session-exporter');
    }
    expect(selects(exporter(name).spec.selector, exporter(name).spec.template.metadata.labels)).toBe(true);
  });

  it('has a ServiceMonitor on the metrics port whose job label is the job the alerts select', () => {
    const objs = objects(name);
    const sm = find(objs, 'ServiceMonitor', 'cloud-session-exporter');
    const svc = find(objs, 'Service', 'cloud-session-exporter');
    expect(selects(sm.spec.selector, svc.metadata.labels)).toBe(true);
    expect(sm.spec.namespaceSelector).toBeUndefined();
    expect(sm.spec.endpoints).toHaveLength(1);
    expect(sm.spec.endpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics' });
    const rule = find(objs, 'PrometheusRule', 'cloud-session-exporter');
    const down = (rule.spec.groups as Obj[]).flatMap((g) => g.rules as Obj[]).find((r) => r.alert === 'CloudSessionExporterDown');
    const job = /up\{job="([^"]+)"\}/.exec(down!.expr)?.[1];
    expect(job).toBeDefined();
    expect(svc.metadata.labels?.[sm.spec.jobLabel], `Service label ${sm.spec.jobLabel}, the job name`).toBe(job);
  });

  it('admits Prometheus from the monitoring namespace on the metrics port, and lets out DNS, HTTPS, Redis, MQTT/TLS', () => {
    const np = find(all(objects(name), 'NetworkPolicy').filter((n) => n.metadata.name === 'cloud-session-exporter') as K8sObject[], 'NetworkPolicy', /.*/);
    expect(selects(np.spec.podSelector, exporter(name).spec.template.metadata.labels)).toBe(true);
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(np.spec.ingress).toEqual([
      { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ protocol: 'TCP', port: 10780 }] },
    ]);
    const egress = (np.spec.egress as Obj[]).flatMap((r) => {
      expect(r.to, 'no destination: cloud endpoints have no fixed addresses').toBeUndefined();
      return (r.ports as Obj[]).map((p) => `${p.protocol}/${p.port}`);
    });
    expect(egress.sort()).toEqual(['TCP/443', 'TCP/53', 'TCP/6379', 'TCP/8883', 'UDP/53']);
  });

  it('probes liveness on /-/healthy and readiness on /-/ready of port 10780', () => {
    const c = exporterContainer(name);
    for (const [probe, endpoint] of [
      [c.livenessProbe, '/-/healthy'],
      [c.readinessProbe, '/-/ready'],
    ] as const) {
      if (name === 'web-security') {
        // TLS and basic auth: an exec probe that authenticates (probe.test.ts runs the script).
        expect(probe.httpGet).toBeUndefined();
        expect(probe.exec.command).toEqual(['node', '/etc/cloud-session-exporter/probe/probe.js', '10780', endpoint, '/etc/cloud-session-exporter/probe-auth']);
      } else {
        expect(probe.httpGet).toEqual({ path: endpoint, port: 'metrics' });
        expect(probe.exec).toBeUndefined();
      }
      expect(probe.timeoutSeconds).toBeGreaterThanOrEqual(5);
    }
  });

  it('takes every credential from a Secret: no literal secret in env, config or Secret data', () => {
    const objs = objects(name);
    const c = exporterContainer(name);
    for (const e of c.env as Obj[]) {
      if (/KEY|SECRET|TOKEN|PASSWORD/i.test(e.name)) expect(e.valueFrom?.secretKeyRef, `env ${e.name}`).toBeDefined();
    }
    const config = YAML.parse(exporterConfigFiles(name).files['config.yaml']) as Obj;
    for (const acc of config.accounts as Obj[]) {
      for (const key of ['access_key_id', 'access_key_secret', 'security_token', 'secret_id', 'secret_key', 'token']) {
        if (key in acc) expect(acc[key], `accounts ${acc.name}.${key}`).toMatch(/^\$\{[A-Z0-9_]+\}$/);
        if (`${key}_file` in acc) expect(acc[`${key}_file`], `accounts ${acc.name}.${key}_file`).toMatch(/^\/etc\/cloud-session-exporter\/secrets\/[a-z0-9-]+$/);
      }
    }
    const secrets = all(objs, 'Secret');
    expect(secrets.map((s) => unhashed(s.metadata.name))).toEqual(name === 'web-security' ? ['cloud-session-exporter-web-config'] : []);
    for (const s of secrets) {
      const web = YAML.parse(Buffer.from(s.data['web-config.yml'], 'base64').toString('utf8')) as Obj;
      for (const [user, hash] of Object.entries(web.basic_auth_users as Record<string, string>)) {
        expect(hash, `basic_auth_users.${user} is a placeholder, not a real bcrypt hash`).toMatch(/^REPLACE_/);
        expect(hash).not.toMatch(/^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$/);
      }
    }
  });

  it('holds an exporter config that the exporter loads, its ${VARs} set by the container and *_file keys in the Secret mount', () => {
    const c = exporterContainer(name);
    const { file, files } = exporterConfigFiles(name);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cse-k8s-config-'));
    tempDirs.push(dir);
    for (const [key, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, key), text);
    // *_file keys point into the credentials Secret's mount: give each a placeholder file at the same path in dir.
    const secretsDir = '/etc/cloud-session-exporter/secrets';
    expect(volumeAt(name, secretsDir).secret.secretName).toBe('cloud-session-exporter-credentials');
    let text = files[path.posix.basename(file)];
    for (const m of text.matchAll(new RegExp(`${secretsDir}/([a-z0-9-]+)`, 'g'))) {
      fs.mkdirSync(path.join(dir, 'secrets'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'secrets', m[1]), `placeholder-${m[1]}\n`);
    }
    text = text.replaceAll(secretsDir, path.join(dir, 'secrets'));
    // Every ${VAR} in a value (comments aside) must be set by the container; the values are placeholders.
    const envNames = new Set((c.env as Obj[]).map((e) => e.name));
    const env: Record<string, string> = {};
    for (const value of strings(YAML.parse(text))) {
      for (const m of value.replaceAll('$$', '').matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}/g)) {
        expect(envNames.has(m[1]) || m[2] !== undefined, `\${${m[1]}} of config.yaml is set in the container's env`).toBe(true);
        env[m[1]] = `placeholder-${m[1].toLowerCase()}`;
      }
    }
    expect(Object.keys(env).length).toBeGreaterThan(0);
    parseConfig(text, path.join(dir, 'config.yaml'), { env, jobTypes: JOB_TYPES });
  });

  it('names in docs/kubernetes.md every key of the credentials Secret it reads', () => {
    const docs = fs.readFileSync(path.join(ROOT, 'docs/kubernetes.md'), 'utf8');
    const c = exporterContainer(name);
    const keys = (c.env as Obj[]).filter((e) => e.valueFrom?.secretKeyRef?.name === 'cloud-session-exporter-credentials').map((e) => e.valueFrom.secretKeyRef.key as string);
    keys.push(...[...exporterConfigFiles(name).files['config.yaml'].matchAll(/\/etc\/cloud-session-exporter\/secrets\/([a-z0-9-]+)/g)].map((m) => m[1]));
    expect(keys.length).toBeGreaterThanOrEqual(4);
    for (const key of keys) expect(docs, `docs/kubernetes.md mentions the Secret key ${key}`).toContain(key);
  });
});

describe('overlay single', () => {
  it('runs one replica, replaced rather than rolled (per-process rate limiters), and lets a drain evict it', () => {
    const objs = objects('single');
    const d = exporter('single');
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy).toEqual({ type: 'Recreate' });
    expect(find(objs, 'PodDisruptionBudget', 'cloud-session-exporter').spec).toMatchObject({ maxUnavailable: 1 });
    expect(find(objs, 'PodDisruptionBudget', 'cloud-session-exporter').spec.minAvailable).toBeUndefined();
    expect(all(objs, 'Deployment').map((x) => x.metadata.name)).toEqual(['cloud-session-exporter']);
    expect(YAML.parse(exporterConfigFiles('single').files['config.yaml']).cluster).toBeUndefined();
  });
});

describe('overlay ha', () => {
  it('runs two replicas spread over nodes, rolls one at a time, and keeps one up during disruptions', () => {
    const objs = objects('ha');
    const d = exporter('ha');
    expect(d.spec.replicas).toBe(2);
    expect(d.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    const anti = d.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution as Obj[];
    expect(anti).toHaveLength(1);
    expect(anti[0].podAffinityTerm.topologyKey).toBe('kubernetes.io/hostname');
    expect(selects(anti[0].podAffinityTerm.labelSelector, d.spec.template.metadata.labels)).toBe(true);
    const pdb = find(objs, 'PodDisruptionBudget', 'cloud-session-exporter');
    expect(pdb.spec.minAvailable).toBe(1);
    expect(pdb.spec.maxUnavailable).toBeUndefined();
    expect(selects(pdb.spec.selector, d.spec.template.metadata.labels)).toBe(true);
  });

  it("has the base config plus the cluster block of the contract, replica_id from the pod's name", () => {
    const base = YAML.parse(fs.readFileSync(path.join(K8S_DIR, 'base/config/config.yaml'), 'utf8')) as Obj;
    const ha = YAML.parse(exporterConfigFiles('ha').files['config.yaml']) as Obj;
    const { cluster, ...rest } = ha;
    expect(rest, 'everything but cluster: equals deploy/kubernetes/base/config/config.yaml').toEqual(base);
    expect(Object.keys(cluster).sort()).toEqual(['redis', 'replica_id']);
    expect(Object.keys(cluster.redis).sort()).toEqual(['key_prefix', 'url']);
    expect(cluster.redis.key_prefix).toBe('cse');
    expect(cluster.replica_id).toBe('${HOSTNAME}');
    const hostname = (exporterContainer('ha').env as Obj[]).find((e) => e.name === 'HOSTNAME');
    expect(hostname?.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(exporterConfigFiles('ha').files['devices.txt'], 'devices.txt kept from the base').toBeDefined();
  });

  it('runs the Redis that cluster.redis.url names, hardened, reachable from the exporter pods only', () => {
    const objs = objects('ha');
    const url = new URL(YAML.parse(exporterConfigFiles('ha').files['config.yaml']).cluster.redis.url as string);
    expect(url.protocol).toBe('redis:');
    const svc = find(objs, 'Service', url.hostname);
    expect(svc.spec.ports).toEqual([{ name: 'redis', port: Number(url.port), targetPort: 'redis', protocol: 'TCP' }]);
    const redis = all(objs, 'Deployment').filter((d) => selects({ matchLabels: svc.spec.selector }, d.spec.template.metadata.labels));
    expect(redis.map((d) => d.metadata.name)).toEqual(['cloud-session-exporter-redis']);
    const c = redis[0].spec.template.spec.containers[0];
    expect(c.image).toMatch(/^redis:\d+\.\d+\.\d+$/);
    expect(c.ports).toEqual([{ name: 'redis', containerPort: 6379, protocol: 'TCP' }]);
    expect(c.args).toEqual(expect.arrayContaining(['redis-server', '--save', '', '--appendonly', 'no']));
    const np = find(objs, 'NetworkPolicy', 'cloud-session-exporter-redis');
    expect(selects(np.spec.podSelector, redis[0].spec.template.metadata.labels)).toBe(true);
    expect(np.spec.ingress).toHaveLength(1);
    expect(selects(np.spec.ingress[0].from[0].podSelector, exporter('ha').spec.template.metadata.labels)).toBe(true);
    expect(np.spec.ingress[0].ports).toEqual([{ protocol: 'TCP', port: 6379 }]);
    expect(np.spec.egress).toEqual([]);
  });
});

describe('overlay web-security', () => {
  const web = () => {
    const volume = volumeAt('web-security', '/etc/cloud-session-exporter/web');
    const secret = find(objects('web-security'), 'Secret', volume.secret.secretName);
    return YAML.parse(Buffer.from(secret.data['web-config.yml'], 'base64').toString('utf8')) as Obj;
  };

  it('passes --web.config.file, mounted from the generated Secret of web-config.yml', () => {
    const c = exporterContainer('web-security');
    expect(arg(c, '--web.config.file')).toBe('/etc/cloud-session-exporter/web/web-config.yml');
    const text = fs.readFileSync(path.join(overlayDir('web-security'), 'web-config.yml'), 'utf8');
    expect(web()).toEqual(YAML.parse(text));
    expect(exporterContainer('single').args).toEqual((c.args as string[]).filter((a) => !a.startsWith('--web.config.file=')));
  });

  it('serves TLS from the mounted TLS Secret and asks for basic auth (exporter-toolkit format)', () => {
    const cfg = web();
    const tls = volumeAt('web-security', '/etc/cloud-session-exporter/tls');
    expect(tls.secret.secretName).toBe('cloud-session-exporter-tls');
    expect(cfg.tls_server_config).toEqual({ cert_file: '/etc/cloud-session-exporter/tls/tls.crt', key_file: '/etc/cloud-session-exporter/tls/tls.key' });
    expect(Object.keys(cfg.basic_auth_users)).toEqual(['prometheus']);
  });

  it('scrapes over HTTPS with the CA of that TLS Secret, the Service DNS name and basic auth from the scrape-auth Secret', () => {
    const objs = objects('web-security');
    const ep = find(objs, 'ServiceMonitor', 'cloud-session-exporter').spec.endpoints[0];
    const svc = find(objs, 'Service', 'cloud-session-exporter');
    expect(ep.scheme).toBe('https');
    expect(ep.tlsConfig).toEqual({ ca: { secret: { name: 'cloud-session-exporter-tls', key: 'ca.crt' } }, serverName: `${svc.metadata.name}.${svc.metadata.namespace}.svc` });
    const auth = volumeAt('web-security', '/etc/cloud-session-exporter/probe-auth').secret.secretName;
    expect(ep.basicAuth).toEqual({ username: { name: auth, key: 'username' }, password: { name: auth, key: 'password' } });
  });

  it('mounts probe.js from a ConfigMap, as it is in the overlay', () => {
    const volume = volumeAt('web-security', '/etc/cloud-session-exporter/probe');
    const cm = find(objects('web-security'), 'ConfigMap', volume.configMap.name);
    expect(cm.data['probe.js']).toBe(fs.readFileSync(path.join(overlayDir('web-security'), 'probe.js'), 'utf8'));
  });
});

describe('kustomize versions', () => {
  // Debian's kubectl (1.20, kustomize v2.0.3), unpacked by npm test's pretest step, against the kubectl on PATH
  // (v1.32 / kustomize v5 on some machines): the overlays must render the same with both. KUBECTL_ALT overrides.
  const alt = process.env.KUBECTL_ALT ?? path.resolve(__dirname, '../../.cache/debian-kubectl/usr/bin/kubectl');
  it.each(OVERLAYS)('%s renders the same with Debian\'s kubectl, up to generated-name hashes and formatting', (name) => {
    expect(kubectlVersion(alt), `${alt} must run: npm test's pretest step (scripts/test-prereqs.sh) unpacks it`).toBeDefined();
    expect(normalised(kustomize(overlayDir(name), alt))).toEqual(normalised(objects(name)));
  });
});
