// The Prometheus rules and configs checked with promtool/amtool, their unit tests run, and the rules
// held to the project's alert conventions (runbook entries, documented thresholds, tests for every alert).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ALERTING_DOC,
  AMTOOL,
  PROM_DIR,
  PROMTOOL,
  ROOT,
  RULE_FILES,
  contractMetrics,
  metricRefs,
  recordRefs,
  RUNBOOK_URL_LABEL,
  runbookUrlAnnotation,
  RUNBOOK_FILE,
  hasTool,
  loadRules,
  loadUnitTests,
  markdownAnchors,
  run,
  unitTestFiles,
} from './helpers';

const alerts = loadRules(RULE_FILES).filter((r) => r.alert);
const records = loadRules(RULE_FILES).filter((r) => r.record);
const alertNames = [...new Set(alerts.map((a) => a.alert as string))];

describe('promtool', () => {
  it('is installed (Debian package "prometheus")', () => {
    expect(hasTool(PROMTOOL), `${PROMTOOL} not found: apt-get install prometheus, or set PROMTOOL`).toBe(true);
  });

  it('accepts every rule file', () => {
    const r = run(PROMTOOL, ['check', 'rules', ...RULE_FILES]);
    expect(r.ok, r.output).toBe(true);
  });

  it('accepts the example prometheus.yml and the rule files it loads', () => {
    const r = run(PROMTOOL, ['check', 'config', path.join(PROM_DIR, 'prometheus.yml')]);
    expect(r.ok, r.output).toBe(true);
  });

  it.each(unitTestFiles().map((f) => [path.relative(ROOT, f), f]))('passes the unit tests of %s', (_name, file) => {
    const r = run(PROMTOOL, ['test', 'rules', file]);
    expect(r.ok, r.output).toBe(true);
  });
});

describe('amtool (Debian package "prometheus-alertmanager")', () => {
  it('is installed', () => {
    expect(hasTool(AMTOOL), 'amtool not found: apt-get install prometheus-alertmanager, or set AMTOOL').toBe(true);
  });

  it('accepts the example alertmanager.yml', () => {
    const r = run(AMTOOL, ['check-config', path.join(ROOT, 'config/alertmanager/alertmanager.yml')]);
    expect(r.ok, r.output).toBe(true);
  });
});

describe('alert conventions', () => {
  const anchors = markdownAnchors(RUNBOOK_FILE);

  it('finds the alerts', () => {
    expect(alerts.length).toBeGreaterThanOrEqual(20);
  });

  it.each(alerts.map((a) => [a.alert as string, a]))('%s has a prefixed CamelCase name, severity, summary, description and runbook entry', (name, a) => {
    expect(name).toMatch(/^(CloudSessionExporter|AliyunMqtt|TencentMongodb|AliyunRedis)[A-Z][A-Za-z]+$/);
    expect(['critical', 'warning', 'info']).toContain(a.labels?.severity);
    const ann = a.annotations ?? {};
    expect(ann.summary, 'summary').toMatch(/\S/);
    expect(ann.summary, 'summary is a static sentence').not.toContain('{{');
    expect(ann.description, 'description is templated').toContain('{{');
    expect(ann.runbook_url).toBe(runbookUrlAnnotation(name));
    expect(anchors.has(name.toLowerCase()), `docs/runbook.md has no section "${name}"`).toBe(true);
  });

  it('documents the one setting every runbook link depends on, and the fallback is the runbook in this repository', () => {
    expect(fs.readFileSync(ALERTING_DOC, 'utf8')).toContain(`external_labels:\n    ${RUNBOOK_URL_LABEL}: `);
    expect(fs.existsSync(path.join(ROOT, 'docs/runbook.md'))).toBe(true);
  });

  it('has no runbook section without an alert', () => {
    const text = fs.readFileSync(RUNBOOK_FILE, 'utf8');
    const sections = [...text.matchAll(/^###\s+(\S+)\s*$/gm)].map((m) => m[1]);
    expect(sections.filter((s) => !alertNames.includes(s))).toEqual([]);
  });
});

describe('metric contract (docs/metrics.md)', () => {
  const contract = contractMetrics();
  const recordNames = new Set(records.map((r) => r.record as string));

  it.each([...records, ...alerts].map((r) => [r.record ?? r.alert, r]))('%s uses only metrics of the contract and defined recording rules', (_name, r) => {
    expect(metricRefs(r.expr).filter((m) => !contract.has(m))).toEqual([]);
    expect(recordRefs(r.expr).filter((m) => !recordNames.has(m))).toEqual([]);
  });
});

describe('unit test coverage', () => {
  const files = loadUnitTests();
  const alertTests = files.flatMap((f) => f.tests.flatMap((t) => t.alert_rule_test ?? []));
  const exprTests = files.flatMap((f) => f.tests.flatMap((t) => t.promql_expr_test ?? []));

  it('every rule file has its test file, which loads it', () => {
    expect(unitTestFiles().map((f) => path.basename(f, '.test.yml'))).toEqual(RULE_FILES.map((f) => path.basename(f, '.yml')));
    files.forEach((f, i) => expect(f.rule_files.map((p) => path.basename(p))).toEqual([path.basename(RULE_FILES[i])]));
  });

  it.each(alertNames)('%s is tested firing and not firing', (name) => {
    const mine = alertTests.filter((t) => t.alertname === name);
    expect(mine.some((t) => (t.exp_alerts ?? []).length > 0), `no test where ${name} fires`).toBe(true);
    expect(mine.some((t) => (t.exp_alerts ?? []).length === 0), `no test where ${name} stays silent`).toBe(true);
  });

  it('tests only alerts that exist', () => {
    expect([...new Set(alertTests.map((t) => t.alertname))].filter((n) => !alertNames.includes(n))).toEqual([]);
  });

  it.each(records.map((r) => r.record as string))('recording rule %s is named level:metric:operations and has an expression test', (name) => {
    expect(name).toMatch(/^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$/);
    const re = new RegExp(`(^|[^a-z0-9_:])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^a-z0-9_:])`);
    expect(exprTests.some((t) => re.test(t.expr)), `no promql_expr_test evaluates ${name}`).toBe(true);
  });
});

describe('docs/alerting.md threshold table', () => {
  interface Row {
    alert: string;
    literal: string;
    for: string;
  }
  const rows: Row[] = [];
  for (const line of fs.readFileSync(ALERTING_DOC, 'utf8').split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    // | `Alert` | what | `literal` | `for` |
    const m = cells.length === 6 ? /^`([A-Z]\w+)`$/.exec(cells[1]) : null;
    if (!m) continue;
    const lit = /^`(.+)`$/.exec(cells[3]);
    const forCell = /^`(.+)`$/.exec(cells[4]);
    rows.push({ alert: m[1], literal: lit ? lit[1] : cells[3], for: forCell ? forCell[1] : '' });
  }
  const flat = (s: string) => s.replace(/\s+/g, ' ').trim();

  it.each(alertNames)('documents the thresholds of %s', (name) => {
    expect(rows.some((r) => r.alert === name), `no row for ${name}`).toBe(true);
  });

  it.each(rows.map((r) => [r.alert, r.literal, r]))('%s: documented default `%s` is in its expr, and its `for` matches', (_a, _l, row) => {
    const rules = alerts.filter((a) => a.alert === row.alert);
    expect(rules.length, `no alert ${row.alert} in any rule file`).toBeGreaterThan(0);
    const re = new RegExp(`${row.literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/ /g, '\\s*')}(?![\\d.])`);
    for (const a of rules) {
      expect(re.test(flat(a.expr)), `${row.alert}: \`${row.literal}\` not found in expr:\n${a.expr}`).toBe(true);
      expect(a.for ?? '', `${row.alert}: for`).toBe(row.for);
    }
  });
});
