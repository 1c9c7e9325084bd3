// Shared helpers of the rule and dashboard tests: run promtool/amtool, load the rule files, parse PromQL.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { JOB_TYPES } from '../../src/apis';
import { SELF_FAMILIES } from '../../src/metrics/self-metrics';
import { CLUSTER_FAMILIES } from '../../src/cluster/metrics';

export const ROOT = path.resolve(__dirname, '../..');
export const PROM_DIR = path.join(ROOT, 'config/prometheus');
/** One file per job type (and exporter.yml) under config/prometheus/rules/: its recording rules and alerts. */
export const RULE_FILES = fs
  .readdirSync(path.join(PROM_DIR, 'rules'))
  .filter((f) => f.endsWith('.yml'))
  .sort()
  .map((f) => path.join(PROM_DIR, 'rules', f));
export const DASHBOARDS_DIR = path.join(ROOT, 'grafana/dashboards');
export const RUNBOOK_FILE = path.join(ROOT, 'docs/runbook.md');
export const ALERTING_DOC = path.join(ROOT, 'docs/alerting.md');
/** Prometheus external label giving the runbook's URL (docs/alerting.md, "Runbook links"); without it, the repository path. */
export const RUNBOOK_URL_LABEL = 'cloud_session_exporter_runbook_url';
/** An alert's runbook_url annotation: the runbook's address, then the section of the alert. */
export const runbookUrlAnnotation = (alert: string): string => `{{ or $externalLabels.${RUNBOOK_URL_LABEL} "docs/runbook.md" }}#${alert.toLowerCase()}`;

export const PROMTOOL = process.env.PROMTOOL ?? 'promtool';
export const AMTOOL = process.env.AMTOOL ?? 'amtool';

export interface ToolResult {
  ok: boolean;
  output: string;
}

/** Runs a command; `output` is stdout and stderr together, for failure messages. */
export function run(cmd: string, args: string[], cwd = ROOT): ToolResult {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error) return { ok: false, output: `${cmd} could not run: ${r.error.message}` };
  return { ok: r.status === 0, output: `$ ${cmd} ${args.join(' ')}\n${r.stdout}${r.stderr}` };
}

export function hasTool(cmd: string): boolean {
  return !spawnSync(cmd, ['--version'], { encoding: 'utf8' }).error;
}

export interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The rules of these files, in order. */
export function loadRules(files: readonly string[]): Rule[] {
  return files.flatMap((file) => (YAML.parse(fs.readFileSync(file, 'utf8')) as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap((g) => g.rules));
}

export interface AlertTest {
  alertname: string;
  eval_time: string;
  exp_alerts?: unknown[];
}
export interface ExprTest {
  expr: string;
}
export interface UnitTestFile {
  rule_files: string[];
  tests: { alert_rule_test?: AlertTest[]; promql_expr_test?: ExprTest[] }[];
}

/** Every promtool test file: config/prometheus/tests/<job type>.test.yml. */
export function unitTestFiles(): string[] {
  return fs
    .readdirSync(path.join(PROM_DIR, 'tests'))
    .filter((f) => f.endsWith('.test.yml'))
    .sort()
    .map((f) => path.join(PROM_DIR, 'tests', f));
}

export function loadUnitTests(): UnitTestFile[] {
  return unitTestFiles().map((f) => YAML.parse(fs.readFileSync(f, 'utf8')) as UnitTestFile);
}

/** GitHub's anchor for a Markdown heading. */
function githubSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

export function markdownAnchors(file: string): Set<string> {
  const anchors = new Set<string>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^#{1,6}\s+(.*)$/.exec(line);
    if (m) anchors.add(githubSlug(m[1]));
  }
  return anchors;
}

export interface NamedExpr {
  /** Where the expression comes from, e.g. "overview.json: panel 3 'Jobs' target A". */
  source: string;
  expr: string;
}

/**
 * Parses PromQL expressions with `promtool check rules`, one rule group per expression so that a
 * failure names its source. Returns promtool's verdict and output.
 */
export function checkPromql(exprs: NamedExpr[]): ToolResult {
  const groups = exprs.map((e, i) => ({
    name: `${i}: ${e.source}`,
    rules: [{ record: `dashboard_query_${i}`, expr: e.expr }],
  }));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promql-check-'));
  const file = path.join(dir, 'queries.yml');
  try {
    fs.writeFileSync(file, YAML.stringify({ groups }));
    return run(PROMTOOL, ['check', 'rules', file]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Metric names of the contract: every declared family (histograms by their base name), as docs/metrics.md lists them. */
export function contractMetrics(): Set<string> {
  return new Set([...SELF_FAMILIES, ...CLUSTER_FAMILIES, ...JOB_TYPES.flatMap((t) => [...t.families, ...(t.jobMetrics ?? [])])].map((f) => f.name));
}

/** Exporter metric names an expression uses (histogram series suffixes removed). */
export function metricRefs(expr: string): string[] {
  const names = [...expr.matchAll(/(?<![\w:"])((?:cloud_session_exporter|aliyun|tencentcloud)_[a-z0-9_]+)(?![\w:])/g)].map((m) => m[1]);
  return names.map((n) => n.replace(/_(bucket|sum|count)$/, ''));
}

/** Recording-rule names (level:metric:operations) an expression uses. */
export function recordRefs(expr: string): string[] {
  return [...expr.matchAll(/(?<![\w:])([a-z_]+:[a-z0-9_]+:[a-z0-9_]+)(?![\w:])/g)].map((m) => m[1]);
}
