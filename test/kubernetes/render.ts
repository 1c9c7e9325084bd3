// Shared helpers of the Kubernetes manifest tests: render an overlay with `kubectl kustomize`, check objects
// against the Kubernetes and Prometheus Operator schemas (kubernetes-models), and look objects up.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import YAML from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';

export const ROOT = path.resolve(__dirname, '../..');
export const K8S_DIR = path.join(ROOT, 'deploy/kubernetes');
export const OVERLAYS = ['single', 'ha', 'web-security'] as const;
export type OverlayName = (typeof OVERLAYS)[number];

export const KUBECTL = process.env.KUBECTL ?? 'kubectl';
export const MISSING_KUBECTL =
  `${KUBECTL} not found: the Kubernetes tests render the overlays with \`kubectl kustomize\`. ` +
  'Install the Debian package kubernetes-client (apt-get install kubernetes-client), or set KUBECTL to a kubectl binary.';

/** Version line of a kubectl binary, or undefined when it cannot run. */
export function kubectlVersion(kubectl = KUBECTL): string | undefined {
  const r = spawnSync(kubectl, ['version', '--client'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error || r.status !== 0) return undefined;
  return r.stdout.trim().split('\n').join('; ');
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** `kubectl kustomize <dir>`, parsed. Throws with kubectl's output when it fails. */
export function kustomize(dir: string, kubectl = KUBECTL): K8sObject[] {
  const r = spawnSync(kubectl, ['kustomize', dir], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(r.error.message.includes('ENOENT') ? MISSING_KUBECTL : `${kubectl}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${kubectl} kustomize ${path.relative(ROOT, dir)} failed:\n${r.stderr}`);
  return YAML.parseAllDocuments(r.stdout).map((d) => {
    if (d.errors.length) throw new Error(`${kubectl} kustomize ${dir}: unparsable output: ${d.errors[0].message}`);
    return d.toJS() as K8sObject;
  });
}

export function overlayDir(name: OverlayName): string {
  return path.join(K8S_DIR, 'overlays', name);
}

type Validating = new (data: never) => { validate(): void };

const MODELS: Record<string, Validating> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

/** Schema problems of one object (empty when valid); an apiVersion/kind without a model is a problem too. */
export function schemaProblems(obj: K8sObject): string[] {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!Model) return [`no schema known for ${obj.apiVersion} ${obj.kind}`];
  // kustomize v5 wraps a Secret's base64 values over lines; the API server's decoder skips the newlines, the
  // schema's "byte" format does not.
  const data = obj.kind === 'Secret' && obj.data ? Object.fromEntries(Object.entries(obj.data as Record<string, string>).map(([k, v]) => [k, v.replace(/\s+/g, '')])) : undefined;
  try {
    new Model((data ? { ...obj, data } : obj) as never).validate();
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

export function ref(obj: K8sObject): string {
  return `${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
}

export function find<T = Record<string, any>>(objs: K8sObject[], kind: string, name: string | RegExp): K8sObject & T {
  const found = objs.filter((o) => o.kind === kind && (typeof name === 'string' ? o.metadata.name === name : name.test(o.metadata.name)));
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${found.length}: ${objs.map(ref).join(', ')}`);
  return found[0] as K8sObject & T;
}

export function all(objs: K8sObject[], kind: string): Array<K8sObject & Record<string, any>> {
  return objs.filter((o) => o.kind === kind) as Array<K8sObject & Record<string, any>>;
}

/** Whether a label selector's matchLabels all hold on `labels`. */
export function selects(selector: { matchLabels?: Record<string, string> } | undefined, labels: Record<string, string> | undefined): boolean {
  const want = selector?.matchLabels ?? {};
  return Object.keys(want).length > 0 && Object.entries(want).every(([k, v]) => labels?.[k] === v);
}

/** Name of a generated ConfigMap/Secret without kustomize's content hash (which differs between kustomize versions). */
export function unhashed(name: string): string {
  return name.replace(/-[a-z0-9]{10}$/, '');
}

/**
 * An object list made comparable across kustomize versions: generated names without their hash, references to
 * them likewise, Secret data decoded (v5 wraps base64 lines), empty annotation maps (v2.0.3 adds them) dropped,
 * sorted by kind/namespace/name.
 */
export function normalised(objs: K8sObject[]): unknown[] {
  const generated = new Set(objs.filter((o) => (o.kind === 'ConfigMap' || o.kind === 'Secret') && unhashed(o.metadata.name) !== o.metadata.name).map((o) => o.metadata.name));
  const rename = (v: unknown): unknown => {
    if (typeof v === 'string') return generated.has(v) ? unhashed(v) : v;
    if (Array.isArray(v)) return v.map(rename);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rename(x)]));
    return v;
  };
  return objs
    .map((o) => {
      const copy = rename(structuredClone(o)) as K8sObject;
      if (copy.metadata.annotations && Object.keys(copy.metadata.annotations).length === 0) delete copy.metadata.annotations;
      if (copy.kind === 'Secret' && copy.data) {
        copy.data = Object.fromEntries(Object.entries(copy.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
      }
      return copy;
    })
    .sort((a, b) => ref(a).localeCompare(ref(b)));
}
