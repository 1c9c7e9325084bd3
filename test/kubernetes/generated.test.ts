// The generated objects of deploy/kubernetes/base/generated/: up to date with config/prometheus/ and
// grafana/dashboards/ (regenerated in memory and compared), holding exactly their rules and dashboards; and the
// generator's file discovery on the per-API layout the rule files are moving to.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DASHBOARD_LABEL,
  dashboardConfigMapName,
  dashboardFiles,
  generateK8s,
  GENERATED_DIR,
  outOfDate,
  renderDashboardConfigMaps,
  renderPrometheusRule,
  ruleFiles,
} from '../../scripts/generate-k8s';
import { ROOT } from './render';

type Obj = Record<string, any>;
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';
const tempDirs: string[] = [];
afterAll(() => tempDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tempTree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cse-generate-k8s-'));
  tempDirs.push(root);
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  return root;
}

/** YAML files under config/prometheus/ at any depth, parsed, with their root-relative paths. */
function promYamlFiles(): Array<{ rel: string; doc: Obj }> {
  const out: Array<{ rel: string; doc: Obj }> = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.posix.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (/\.ya?ml$/.test(e.name)) out.push({ rel, doc: YAML.parse(fs.readFileSync(path.join(ROOT, rel), 'utf8')) as Obj });
    }
  };
  walk('config/prometheus');
  return out;
}

const checkedIn = (name: string) => fs.readFileSync(path.join(ROOT, GENERATED_DIR, name), 'utf8');
const prometheusRule = () => YAML.parse(checkedIn('prometheusrule.yaml')) as Obj;
const rulesOf = (groups: Obj[]) => groups.flatMap((g) => g.rules as Obj[]);

describe('deploy/kubernetes/base/generated/', () => {
  it('is up to date with config/prometheus/ and grafana/dashboards/ (else: npm run generate:k8s)', () => {
    expect(outOfDate(ROOT), 'run `npm run generate:k8s` and commit the result').toEqual([]);
    expect(generateK8s(ROOT).map((f) => f.path).sort()).toEqual(fs.readdirSync(path.join(ROOT, GENERATED_DIR)).map((f) => `${GENERATED_DIR}/${f}`).sort());
  });

  it('holds in its PrometheusRule exactly the rule groups, alerts and recording rules of config/prometheus/', () => {
    const sources = promYamlFiles().filter(({ doc }) => doc && 'groups' in doc && !('rule_files' in doc) && !('tests' in doc));
    expect(sources.length).toBeGreaterThanOrEqual(2);
    const expected = sources.flatMap(({ doc }) => doc.groups as Obj[]);
    const rule = prometheusRule();
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(rule.kind).toBe('PrometheusRule');
    expect(rule.spec.groups).toEqual(expected);
    const names = (groups: Obj[], key: 'alert' | 'record') => rulesOf(groups).filter((r) => r[key]).map((r) => r[key] as string).sort();
    expect(names(rule.spec.groups, 'alert')).toEqual(names(expected, 'alert'));
    expect(names(rule.spec.groups, 'record')).toEqual(names(expected, 'record'));
    expect(names(rule.spec.groups, 'alert').length).toBeGreaterThanOrEqual(20);
  });

  it('includes every rule file that the promtool unit tests load, and every alert they test', () => {
    const tests = promYamlFiles().filter(({ doc }) => doc && 'rule_files' in doc && 'tests' in doc);
    expect(tests.length).toBeGreaterThan(0);
    const included = new Set(ruleFiles(ROOT));
    const alerts = new Set(rulesOf(prometheusRule().spec.groups).map((r) => r.alert));
    for (const { rel, doc } of tests) {
      for (const f of doc.rule_files as string[]) expect(included, `${rel} loads ${f}`).toContain(path.posix.join(path.posix.dirname(rel), f));
      for (const t of doc.tests as Obj[]) for (const a of (t.alert_rule_test ?? []) as Obj[]) expect(alerts, `${rel} tests ${a.alertname}`).toContain(a.alertname);
    }
  });

  it('has rule groups that promtool accepts', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cse-prometheusrule-'));
    tempDirs.push(dir);
    const file = path.join(dir, 'rules.yml');
    fs.writeFileSync(file, YAML.stringify({ groups: prometheusRule().spec.groups }));
    const r = spawnSync(PROMTOOL, ['check', 'rules', file], { encoding: 'utf8', timeout: 60_000 });
    expect(r.error, `${PROMTOOL} not found: apt-get install prometheus, or set PROMTOOL`).toBeUndefined();
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  });

  it('has one Grafana sidecar ConfigMap per dashboard, holding the JSON file verbatim', () => {
    const maps = YAML.parseAllDocuments(checkedIn('grafana-dashboards.yaml')).map((d) => d.toJS() as Obj);
    const files = dashboardFiles(ROOT);
    expect(files.length).toBeGreaterThanOrEqual(4);
    expect(maps.map((m) => m.metadata.name)).toEqual(files.map(dashboardConfigMapName));
    maps.forEach((m, i) => {
      expect(m.kind).toBe('ConfigMap');
      expect(m.metadata.labels).toMatchObject({ grafana_dashboard: '1' });
      expect(m.data).toEqual({ [path.posix.basename(files[i])]: fs.readFileSync(path.join(ROOT, files[i]), 'utf8') });
    });
  });
});

describe('scripts/generate-k8s.ts', () => {
  const group = (name: string, rule: Obj) => YAML.stringify({ groups: [{ name, rules: [rule] }] });
  const layout = {
    // The per-API layout: config/prometheus/<api>/{rules,alerts}.yml, tests in their own tree.
    'config/prometheus/aliyun-mqtt/rules.yml': group('mqtt.rules', { record: 'a:b:c', expr: 'vector(1)' }),
    'config/prometheus/aliyun-mqtt/alerts.yml': 'groups:\n  - name: mqtt.alerts\n    rules:\n      # comment kept\n      - alert: AliyunMqttX\n        expr: vector(1)\n',
    'config/prometheus/tencentcloud-mongodb/alerts.yaml': group('mongodb.alerts', { alert: 'TencentMongodbX', expr: 'vector(1)' }),
    'config/prometheus/exporter/anchors.yml': 'x: &e vector(1)\ngroups:\n  - name: anchored\n    rules:\n      - record: x:y:z\n        expr: *e\n',
    'config/prometheus/tests/aliyun-mqtt/alerts.test.yml': 'rule_files: [../../aliyun-mqtt/alerts.yml]\ntests: []\n',
    'config/prometheus/tests/odd.yml': 'groups: []\ntests: []\n',
    'config/prometheus/prometheus.yml': 'rule_files: [aliyun-mqtt/rules.yml]\nscrape_configs: []\n',
    'config/prometheus/README.yml': 'note: not rules\n',
    'grafana/dashboards/overview.json': '{"uid": "a"}\n',
    'grafana/dashboards/MQTT/Fleet Health.json': '{"uid": "b"}\n',
  };

  it('finds rule-group files at any depth, .yml and .yaml, and skips promtool tests and prometheus.yml', () => {
    const root = tempTree(layout);
    expect(ruleFiles(root)).toEqual([
      'config/prometheus/aliyun-mqtt/alerts.yml',
      'config/prometheus/aliyun-mqtt/rules.yml',
      'config/prometheus/exporter/anchors.yml',
      'config/prometheus/tencentcloud-mongodb/alerts.yaml',
    ]);
    const text = renderPrometheusRule(root);
    expect(text).toContain('# comment kept');
    expect(text).toContain('# From config/prometheus/aliyun-mqtt/rules.yml');
    const rule = YAML.parse(text) as Obj;
    expect(rule.spec.groups.map((g: Obj) => g.name)).toEqual(['mqtt.alerts', 'mqtt.rules', 'anchored', 'mongodb.alerts']);
    expect(rule.spec.groups[2].rules[0].expr, 'aliases resolved').toBe('vector(1)');
  });

  it('refuses a group name used twice (Prometheus would refuse the rule file)', () => {
    const root = tempTree({ ...layout, 'config/prometheus/aliyun-redis/rules.yml': group('mqtt.rules', { record: 'd:e:f', expr: 'vector(1)' }) });
    expect(() => renderPrometheusRule(root)).toThrow(/rule group "mqtt.rules" is in both config\/prometheus\/aliyun-mqtt\/rules.yml and config\/prometheus\/aliyun-redis\/rules.yml/);
  });

  it('makes one ConfigMap per dashboard at any depth, named after its path, with the sidecar label', () => {
    const maps = YAML.parseAllDocuments(renderDashboardConfigMaps(tempTree(layout))).map((d) => d.toJS() as Obj);
    expect(maps.map((m) => [m.metadata.name, Object.keys(m.data)])).toEqual([
      ['cloud-session-exporter-dashboard-mqtt-fleet-health', ['Fleet_Health.json']],
      ['cloud-session-exporter-dashboard-overview', ['overview.json']],
    ]);
    for (const m of maps) expect(m.metadata.labels).toMatchObject(DASHBOARD_LABEL);
  });

  it('reports checked-in files that a rule or dashboard change left behind', () => {
    const root = tempTree(layout);
    for (const f of generateK8s(root)) {
      fs.mkdirSync(path.dirname(path.join(root, f.path)), { recursive: true });
      fs.writeFileSync(path.join(root, f.path), f.content);
    }
    expect(outOfDate(root)).toEqual([]);
    fs.writeFileSync(path.join(root, 'config/prometheus/aliyun-mqtt/rules.yml'), group('mqtt.rules', { record: 'a:b:c', expr: 'vector(2)' }));
    expect(outOfDate(root)).toEqual([`${GENERATED_DIR}/prometheusrule.yaml`]);
    fs.writeFileSync(path.join(root, 'grafana/dashboards/new.json'), '{}');
    expect(outOfDate(root)).toEqual([`${GENERATED_DIR}/prometheusrule.yaml`, `${GENERATED_DIR}/grafana-dashboards.yaml`]);
  });

  it('refuses a dashboard that is not JSON', () => {
    expect(() => renderDashboardConfigMaps(tempTree({ ...layout, 'grafana/dashboards/broken.json': '{' }))).toThrow(/broken.json: not valid JSON/);
  });
});
