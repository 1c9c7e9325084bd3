// Dashboard queries as Grafana would send them: every targets[].expr, with template variables resolved against a real
// Prometheus (label_values() → the label's values there), Grafana's built-in intervals replaced by fixed ones.
import fs from 'node:fs';
import path from 'node:path';
import type { Prometheus } from './prometheus-process';

export interface DashboardQuery {
  dashboard: string;
  panel: string;
  refId: string;
  /** As written in the dashboard. */
  raw: string;
}

interface Panel {
  title?: string;
  panels?: Panel[];
  targets?: Array<{ expr?: string; refId?: string }>;
}

interface Variable {
  name: string;
  type: string;
  query?: string | { query?: string };
  current?: { value?: string | string[] };
  options?: Array<{ value: string }>;
}

export interface Dashboard {
  file: string;
  title: string;
  variables: Variable[];
  queries: DashboardQuery[];
}

function* allPanels(panels: Panel[] = []): Generator<Panel> {
  for (const p of panels) {
    yield p;
    yield* allPanels(p.panels);
  }
}

export function loadDashboards(dir: string): Dashboard[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const d = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { title: string; panels?: Panel[]; templating?: { list?: Variable[] } };
      const queries: DashboardQuery[] = [];
      for (const p of allPanels(d.panels)) {
        for (const t of p.targets ?? []) if (t.expr) queries.push({ dashboard: f, panel: p.title ?? '(untitled)', refId: t.refId ?? '?', raw: t.expr });
      }
      return { file: f, title: d.title, variables: d.templating?.list ?? [], queries };
    });
}

/** Grafana's regex escaping for Prometheus, inside a PromQL double-quoted string (hence the doubled backslash). */
function escapeRegexValue(v: string): string {
  return v.replace(/[\\^$*+?.()|[\]{}]/g, '\\\\$&');
}

/** Multi-value formatting as Grafana's Prometheus datasource does it: (a|b), regex-escaped. */
function formatValues(values: string[]): string {
  const escaped = values.map(escapeRegexValue);
  return escaped.length === 1 ? escaped[0] : `(${escaped.join('|')})`;
}

const BUILTINS: Record<string, string> = {
  __rate_interval: '1m',
  __interval: '5s',
  __range: '5m',
  __range_s: '300',
  __interval_ms: '5000',
};

/** Replaces $var, ${var}, ${var:fmt} and [[var]] with the given values. */
export function interpolate(expr: string, values: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (m, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c)!;
    if (name in values) return values[name];
    throw new Error(`unknown template variable ${m} in ${expr}`);
  });
}

/**
 * Resolves a dashboard's variables in order (later ones may use earlier ones, as Grafana's chained variables do).
 * Returns the substitution values and, per query variable, the real values found (empty = a problem). `typed` gives
 * text boxes a value, as a person would type one (the default view leaves them as they are).
 */
export async function resolveVariables(prom: Prometheus, d: Dashboard, typed: Record<string, string> = {}): Promise<{ values: Record<string, string>; found: Record<string, string[]> }> {
  const values: Record<string, string> = { ...BUILTINS };
  const found: Record<string, string[]> = {};
  for (const v of d.variables) {
    const q = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
    const current = Array.isArray(v.current?.value) ? v.current?.value[0] : v.current?.value;
    if (v.type === 'textbox' && v.name in typed) {
      values[v.name] = typed[v.name];
      continue;
    }
    switch (v.type) {
      case 'datasource':
        values[v.name] = 'prometheus';
        break;
      case 'query': {
        const m = /^\s*label_values\(\s*(?:(.*),\s*)?(\w+)\s*\)\s*$/s.exec(q);
        if (!m) throw new Error(`${d.file}: variable ${v.name}: unsupported query ${q}`);
        const selector = m[1] ? interpolate(m[1], values) : undefined;
        const vals = await prom.labelValues(m[2], selector);
        found[v.name] = vals;
        values[v.name] = vals.length ? formatValues(vals) : '__no_values__';
        break;
      }
      case 'custom': {
        const first = q.split(',')[0]?.trim();
        values[v.name] = current && current !== '$__all' ? current : (first ?? '');
        break;
      }
      case 'textbox':
      case 'constant':
        values[v.name] = current ?? q;
        break;
      case 'interval':
        values[v.name] = current && !current.startsWith('$') ? current : (q.split(',')[0]?.trim() ?? '1m');
        break;
      default:
        throw new Error(`${d.file}: variable ${v.name}: unsupported type ${v.type}`);
    }
  }
  return { values, found };
}
