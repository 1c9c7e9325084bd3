// The Grafana dashboards validated against a focused JSON schema of Grafana's dashboard model
// (dashboard.schema.json), held to the project's conventions, and every PromQL query parsed by promtool.
import fs from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { JOB_TYPES } from '../../src/apis';
import { DASHBOARDS_DIR, ROOT, RULE_FILES, checkPromql, contractMetrics, loadRules, metricRefs, recordRefs, type NamedExpr } from './helpers';

interface DatasourceRef {
  type: string;
  uid: string;
}
interface Target {
  refId: string;
  expr: string;
  datasource: DatasourceRef;
}
interface Thresholds {
  steps: Array<{ color: string; value: number | null }>;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: DatasourceRef;
  targets?: Target[];
  collapsed?: boolean;
  /** A row's panels (a collapsed row holds its panels here). */
  panels?: Panel[];
  fieldConfig?: {
    defaults: { thresholds?: Thresholds };
    overrides: Array<{ properties: Array<{ id: string; value?: unknown }> }>;
  };
}
interface Variable {
  type: string;
  name: string;
  description?: string;
  datasource?: DatasourceRef;
  definition?: string;
  query?: string | { query: string };
  current?: { value?: string | string[] };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
  annotations: { list: { name: string; datasource: DatasourceRef; expr?: string }[] };
}

const DS_UID = '${datasource}';
const files = fs.readdirSync(DASHBOARDS_DIR).filter((f) => f.endsWith('.json')).sort();
const dashboards = files.map((f) => [f, JSON.parse(fs.readFileSync(path.join(DASHBOARDS_DIR, f), 'utf8')) as Dashboard] as const);

const schema = JSON.parse(fs.readFileSync(path.join(__dirname, 'dashboard.schema.json'), 'utf8')) as object;
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

/** Grafana's built-in variables, replaced by values promtool accepts. */
const BUILTINS: Record<string, string> = {
  __rate_interval: '5m',
  __interval: '1m',
  __range: '1h',
  __range_s: '3600',
  __interval_ms: '60000',
};

function variableQuery(v: Variable): string {
  if (typeof v.query === 'string') return v.query;
  return v.query?.query ?? v.definition ?? '';
}

/** A sample value for each dashboard variable, as Grafana would interpolate it into a query. */
function sampleValues(d: Dashboard): Record<string, string> {
  const values: Record<string, string> = { ...BUILTINS };
  for (const v of d.templating.list) {
    const current = Array.isArray(v.current?.value) ? v.current?.value[0] : v.current?.value;
    if (v.type === 'query') values[v.name] = 'sample-value';
    else if (v.type === 'datasource') values[v.name] = 'prometheus';
    else values[v.name] = current && current !== '$__all' ? current : 'sample-value';
  }
  return values;
}

const VAR_REF = /\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g;

function variablesUsed(expr: string): string[] {
  return [...expr.matchAll(VAR_REF)].map((m) => m[1] ?? m[2] ?? m[3]);
}

function interpolate(expr: string, values: Record<string, string>): string {
  return expr.replace(VAR_REF, (all, a?: string, b?: string, c?: string) => values[(a ?? b ?? c) as string] ?? all);
}

/** The series selector of `label_values(selector, label)`; undefined for the one-argument form. */
function labelValuesSelector(query: string): string | undefined {
  const m = /^label_values\(([\s\S]*)\)\s*$/.exec(query.trim());
  if (!m) return undefined;
  const inner = m[1];
  let depth = 0;
  let quoted = false;
  let lastComma = -1;
  for (let i = 0; i < inner.length; i++) {
    const ch = inner[i];
    if (ch === '"' && inner[i - 1] !== '\\') quoted = !quoted;
    if (quoted) continue;
    if (ch === '(' || ch === '{' || ch === '[') depth++;
    else if (ch === ')' || ch === '}' || ch === ']') depth--;
    else if (ch === ',' && depth === 0) lastComma = i;
  }
  return lastComma < 0 ? undefined : inner.slice(0, lastComma).trim();
}

/** Every panel, those inside rows (collapsed or not) included. */
function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

function panelsWithTargets(d: Dashboard): Panel[] {
  return allPanels(d).filter((p) => p.type !== 'row');
}

/** Every PromQL expression of a dashboard, variables replaced by sample values. */
function dashboardExprs(file: string, d: Dashboard): NamedExpr[] {
  const values = sampleValues(d);
  const out: NamedExpr[] = [];
  for (const p of panelsWithTargets(d)) {
    for (const t of p.targets ?? []) out.push({ source: `${file} panel ${p.id} '${p.title}' target ${t.refId}`, expr: interpolate(t.expr, values) });
  }
  for (const v of d.templating.list.filter((x) => x.type === 'query')) {
    const sel = labelValuesSelector(variableQuery(v));
    if (sel) out.push({ source: `${file} variable ${v.name}`, expr: interpolate(sel, values) });
  }
  for (const a of d.annotations.list) if (a.expr) out.push({ source: `${file} annotation ${a.name}`, expr: interpolate(a.expr, values) });
  return out;
}

/**
 * Threshold steps that are status colours, not alert thresholds (the others must be a literal of an alert the panel's
 * description names), with why. Keys: `<file>: <panel title>: <value>`.
 */
const STATUS_COLOURS: Record<string, string> = {
  'aliyun-mqtt.json: Offline devices: 1': 'any offline device is worth a colour; the alerts look at ratios and changes',
  'aliyun-mqtt.json: Offline ≥ $offline_duration: 1': 'any device offline that long is worth a colour; the alert looks at its growth',
  'aliyun-mqtt.json: Canary: 1': 'green for a probe that succeeded (1), red for one that failed (0)',
  'aliyun-mqtt.json: Subscriber: 1': 'green while connected (1), red while not (0)',
  'aliyun-mqtt.json: Devices: 1': 'the Status column: green online (1), red offline (0)',
  'aliyun-mqtt.json: Device status history: 1': 'green online (1), red offline (0)',
  'aliyun-redis.json: Listed: 0.99': 'sessions listed short of the total: a sign of truncation, not an alert',
  'aliyun-redis.json: Blocked: 1': 'any blocked session is worth a colour (the alert fires above 0, i.e. from 1)',
  'overview.json: Scrape: 1': 'green when the target is up (1)',
  'overview.json: Config reloads: 1': 'green when the last reload succeeded (1)',
  'overview.json: Jobs: 1': 'the success column: green when the last run succeeded (1)',
  'overview.json: Cloud instances: 1': 'the success column: green when the last poll of the instance succeeded (1)',
  'overview.json: Quota usage: 0.9': 'quota nearly used: orange from 90% of the QPS limit',
  'overview.json: Quota usage: 1': 'quota used up: red at the QPS limit',
};

const alertRules = loadRules(RULE_FILES).filter((r) => r.alert);

/** The alerts a text names (word by word: AliyunMqttClientFlapping is not AliyunMqttClientsFlapping). */
function alertsNamedIn(text = ''): string[] {
  return [...new Set(alertRules.map((a) => a.alert as string))].filter((name) => new RegExp(`\\b${name}\\b`).test(text));
}

/** Whether one of the named alerts' expressions holds `value` as a number or as a quoted label value. */
function isThresholdOf(value: string, alerts: readonly string[]): boolean {
  const v = value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`(?<![\\w.])${v}(?![\\w.])|"${v}"`);
  return alertRules.some((r) => alerts.includes(r.alert as string) && re.test(r.expr));
}

/** Non-null threshold steps of a panel: its defaults and its overrides. */
function thresholdValues(p: Panel): number[] {
  const overrides = (p.fieldConfig?.overrides ?? []).flatMap((o) => o.properties.filter((x) => x.id === 'thresholds').map((x) => x.value as Thresholds));
  return [p.fieldConfig?.defaults.thresholds, ...overrides].flatMap((t) => t?.steps ?? []).flatMap((step) => (step.value === null ? [] : [step.value]));
}

/** Families with one series per device: a default view must not load them unbounded. */
const PER_DEVICE = JOB_TYPES.flatMap((t) => t.families).filter((f) => f.labels.includes('client_id' as never)).map((f) => f.name);

describe('dashboards', () => {
  it('are the overview and a dashboard for every job type (found by the folder, named after their product)', () => {
    expect(files).toContain('overview.json');
    for (const t of JOB_TYPES) {
      const names = t.families.map((f) => f.name);
      const showing = dashboards.filter(([, d]) => JSON.stringify(d).match(new RegExp(`\\b(${names.join('|')})`)));
      expect(showing.map(([f]) => f), `no dashboard shows ${t.type}`).not.toEqual([]);
    }
  });

  it('have unique uids and titles', () => {
    const uids = dashboards.map(([, d]) => d.uid);
    const titles = dashboards.map(([, d]) => d.title);
    expect(new Set(uids).size).toBe(uids.length);
    expect(new Set(titles).size).toBe(titles.length);
  });

  describe.each(dashboards)('%s', (file, d) => {
    it('matches the dashboard schema (test/rules/dashboard.schema.json)', () => {
      const ok = validate(d);
      expect(ok, JSON.stringify(validate.errors, null, 2)).toBe(true);
    });

    it('has unique panel ids and no overlapping panels', () => {
      const ids = allPanels(d).map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
      const cells = new Map<string, string>();
      // A collapsed row's panels keep the places they take when it is opened: below it, clear of everything else.
      for (const p of allPanels(d)) {
        const { x, y, w, h } = p.gridPos;
        expect(x + w, `panel '${p.title}' is wider than the grid`).toBeLessThanOrEqual(24);
        for (let i = x; i < x + w; i++)
          for (let j = y; j < y + h; j++) {
            const key = `${i},${j}`;
            expect(cells.get(key), `panel '${p.title}' overlaps '${cells.get(key)}'`).toBeUndefined();
            cells.set(key, p.title);
          }
      }
    });

    it('uses the datasource variable in every panel, target, query variable and annotation query', () => {
      const wrong: string[] = [];
      for (const p of panelsWithTargets(d)) {
        if (p.datasource?.uid !== DS_UID) wrong.push(`panel '${p.title}'`);
        for (const t of p.targets ?? []) if (t.datasource?.uid !== DS_UID) wrong.push(`panel '${p.title}' target ${t.refId}`);
      }
      for (const v of d.templating.list) if (v.type === 'query' && v.datasource?.uid !== DS_UID) wrong.push(`variable ${v.name}`);
      for (const a of d.annotations.list) if (a.expr !== undefined && a.datasource.uid !== DS_UID) wrong.push(`annotation ${a.name}`);
      expect(wrong).toEqual([]);
    });

    it('chains its instance_id variable on the variables before it', () => {
      const vars = d.templating.list;
      const idx = vars.findIndex((v) => v.name === 'instance_id' || v.name === 'instance');
      expect(idx, 'no instance_id (or instance) variable').toBeGreaterThan(0);
      const before = vars.slice(0, idx).map((v) => v.name);
      const used = variablesUsed(variableQuery(vars[idx]));
      expect(used.some((u) => before.includes(u) && u !== 'datasource'), `${vars[idx].name} does not depend on ${before.join(', ')}`).toBe(true);
    });

    it('references only variables it defines, and rates over $__rate_interval', () => {
      const defined = new Set([...d.templating.list.map((v) => v.name), ...Object.keys(BUILTINS)]);
      const problems: string[] = [];
      const exprs: [string, string][] = [
        ...panelsWithTargets(d).flatMap((p) => (p.targets ?? []).map((t): [string, string] => [`panel '${p.title}' ${t.refId}`, t.expr])),
        ...d.templating.list.map((v): [string, string] => [`variable ${v.name}`, v.type === 'query' ? variableQuery(v) : '']),
        ...d.annotations.list.map((a): [string, string] => [`annotation ${a.name}`, a.expr ?? '']),
      ];
      for (const [where, expr] of exprs) {
        for (const name of variablesUsed(expr)) if (!defined.has(name)) problems.push(`${where}: undefined variable $${name}`);
        for (const m of expr.matchAll(/\b(?:rate|irate|increase)\s*\([^()[\]]*\[([^\]]+)\]/g))
          if (m[1] !== '$__rate_interval') problems.push(`${where}: range [${m[1]}] instead of [$__rate_interval]`);
      }
      expect(problems).toEqual([]);
    });

    it('queries only metrics of the contract (docs/metrics.md) and recording rules of the rule files', () => {
      const contract = contractMetrics();
      const records = new Set(loadRules(RULE_FILES).map((r) => r.record));
      const unknown = new Set<string>();
      for (const { source, expr } of dashboardExprs(file, d)) {
        for (const m of metricRefs(expr)) if (!contract.has(m)) unknown.add(`${source}: ${m}`);
        for (const m of recordRefs(expr)) if (!records.has(m)) unknown.add(`${source}: ${m}`);
      }
      expect([...unknown]).toEqual([]);
    });

    it('takes its alert thresholds from the rule files: each threshold step is a literal of an alert its panel names, or a status colour', () => {
      const problems: string[] = [];
      for (const p of panelsWithTargets(d)) {
        const named = alertsNamedIn(p.description);
        for (const v of thresholdValues(p)) {
          const key = `${file}: ${p.title}: ${v}`;
          if (key in STATUS_COLOURS) continue;
          if (named.length === 0) problems.push(`${key}: its description names no alert, and it is not in STATUS_COLOURS`);
          else if (!isThresholdOf(String(v), named)) problems.push(`${key}: not a threshold of ${named.join(', ')} in config/prometheus/rules/`);
        }
      }
      expect(problems).toEqual([]);
    });

    it('takes each constant variable from the alert it names', () => {
      for (const v of d.templating.list.filter((x) => x.type === 'constant')) {
        const named = alertsNamedIn(v.description);
        expect(named, `constant ${v.name} names no alert`).not.toEqual([]);
        expect(isThresholdOf(variableQuery(v), named), `constant ${v.name} = ${variableQuery(v)}: not in ${named.join(', ')}`).toBe(true);
      }
    });

    it('loads per-device series only for a client ID pattern that is empty by default, or bounded by topk/bottomk', () => {
      const emptyByDefault = new Set(d.templating.list.filter((v) => v.type === 'textbox' && (Array.isArray(v.current?.value) ? v.current?.value[0] : v.current?.value) === '').map((v) => v.name));
      const problems: string[] = [];
      for (const p of panelsWithTargets(d)) {
        for (const t of p.targets ?? []) {
          if (!PER_DEVICE.some((f) => new RegExp(`\\b${f}\\b`).test(t.expr))) continue;
          const filtered = [...t.expr.matchAll(/client_id=~"\$\{?(\w+)\}?"/g)].some((m) => emptyByDefault.has(m[1]));
          if (!filtered && !/^\s*(topk|bottomk)\(/.test(t.expr)) problems.push(`panel '${p.title}' ${t.refId}: ${t.expr}`);
        }
      }
      expect(problems).toEqual([]);
    });

    it('has PromQL that promtool parses', () => {
      const exprs = dashboardExprs(file, d);
      expect(exprs.length).toBeGreaterThan(5);
      const r = checkPromql(exprs);
      expect(r.ok, r.output).toBe(true);
    });
  });

  it('lists in STATUS_COLOURS only thresholds that exist', () => {
    const present = new Set(dashboards.flatMap(([file, d]) => panelsWithTargets(d).flatMap((p) => thresholdValues(p).map((v) => `${file}: ${p.title}: ${v}`))));
    expect(Object.keys(STATUS_COLOURS).filter((k) => !present.has(k))).toEqual([]);
  });

  it('the threshold check finds numbers and label values, not digits inside other words', () => {
    expect(isThresholdOf('1', ['AliyunMqttClientsFlapping'])).toBe(true);
    expect(isThresholdOf('15', ['AliyunMqttClientsFlapping'])).toBe(false);
    expect(isThresholdOf('24h', ['AliyunMqttLongOfflineClientsGrowing'])).toBe(true);
    expect(alertsNamedIn('AliyunMqttClientFlapping fires')).toEqual(['AliyunMqttClientFlapping']);
  });

  it('the PromQL check rejects a broken query', () => {
    const r = checkPromql([
      { source: 'good', expr: 'sum by (job) (rate(up[5m]))' },
      { source: 'broken', expr: 'sum by (job) (rate(up[5m])' },
    ]);
    expect(r.ok).toBe(false);
    expect(r.output).toContain('broken');
  });

  it('sample interpolation covers ${var}, $var and [[var]] and leaves $__all untouched in regexes', () => {
    const values = { job: 'j', __rate_interval: '5m' };
    expect(interpolate('rate(x{job=~"$job", a="${job}", b="[[job]]"}[$__rate_interval])', values)).toBe('rate(x{job=~"j", a="j", b="j"}[5m])');
    expect(labelValuesSelector('label_values(up{job=~"$job", a=","}, instance)')).toBe('up{job=~"$job", a=","}');
  });
});

describe('grafana provisioning', () => {
  it('has a Prometheus datasource', () => {
    const doc = YAML.parse(fs.readFileSync(path.join(ROOT, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as {
      apiVersion: number;
      datasources: { type: string; url: string }[];
    };
    expect(doc.apiVersion).toBe(1);
    expect(doc.datasources.map((d) => d.type)).toContain('prometheus');
  });

  it('has a file provider for /var/lib/grafana/dashboards', () => {
    const doc = YAML.parse(fs.readFileSync(path.join(ROOT, 'grafana/provisioning/dashboards/dashboards.yml'), 'utf8')) as {
      apiVersion: number;
      providers: { type: string; options: { path: string } }[];
    };
    expect(doc.apiVersion).toBe(1);
    expect(doc.providers).toContainEqual(expect.objectContaining({ type: 'file', options: expect.objectContaining({ path: '/var/lib/grafana/dashboards' }) }));
  });
});
