// A real Prometheus (the Debian binary) for the end-to-end test: config in a temp dir, a free port, the HTTP API.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { freePort } from '../helpers/servers';

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? 'prometheus';
export const PROMTOOL_BIN = process.env.PROMTOOL_BIN ?? 'promtool';

export function haveBinary(bin: string): boolean {
  return spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0;
}


export async function waitUntil<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 250): Promise<T> {
  const until = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * A copy of an alerting-rules file with every `for:` shortened, so alerts fire within seconds. The expressions, labels
 * and annotations stay as they are.
 */
export function fastAlerts(text: string, forDuration = '1s'): string {
  const doc = YAML.parse(text) as { groups: Array<{ rules: Array<Record<string, unknown>> }> };
  for (const g of doc.groups) for (const r of g.rules) if (r.alert && r.for !== undefined) r.for = forDuration;
  return YAML.stringify(doc);
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
  value: string;
}

export interface Prometheus {
  url: string;
  dir: string;
  /** Instant query; throws on an API error (bad PromQL included). */
  query(expr: string): Promise<PromSample[]>;
  alerts(): Promise<PromAlert[]>;
  /** Values of a label over the series matching a selector (what Grafana's label_values() does). */
  labelValues(label: string, match?: string): Promise<string[]>;
  targets(): Promise<Array<{ health: string; lastError: string; scrapeUrl: string; labels: Record<string, string> }>>;
  ruleGroups(): Promise<Array<{ name: string; rules: Array<{ name: string; health: string; lastError?: string; type: string }> }>>;
  output(): string;
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  dir: string;
  /** One plain-HTTP job (named jobName) scraping this target… */
  target?: string;
  /** …or these scrape configs as they are (HTTPS, client certificates, basic auth). */
  scrapeConfigs?: object[];
  ruleFiles?: string[];
  jobName?: string;
  interval?: string;
  externalLabels?: Record<string, string>;
}

export async function startPrometheus(o: PrometheusOptions): Promise<Prometheus> {
  const configFile = path.join(o.dir, 'prometheus.yml');
  const interval = o.interval ?? '1s';
  fs.writeFileSync(
    configFile,
    YAML.stringify({
      global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval, external_labels: o.externalLabels },
      rule_files: o.ruleFiles ?? [],
      scrape_configs: o.scrapeConfigs ?? [{ job_name: o.jobName ?? 'cloud-session-exporter', static_configs: [{ targets: [o.target] }] }],
    }),
  );
  const check = spawnSync(PROMTOOL_BIN, ['check', 'config', configFile], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`promtool check config failed:\n${check.stdout}\n${check.stderr}`);

  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    let out = '';
    const child: ChildProcess = spawn(
      PROMETHEUS_BIN,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(o.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d: Buffer) => void (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => void (out += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await waitUntil(
        'Prometheus to be ready',
        async () => {
          if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${out}`);
          const res = await fetch(`${url}/-/ready`);
          return res.ok;
        },
        20_000,
        100,
      );
    } catch (err) {
      lastErr = err;
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      continue;
    }
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const api = async (p: string): Promise<any> => {
      const res = await fetch(`${url}${p}`);
      const body = (await res.json()) as { status: string; data: unknown; error?: string; errorType?: string };
      if (body.status !== 'success') throw new Error(`${p}: ${body.errorType}: ${body.error}`);
      return body.data;
    };
    return {
      url,
      dir: o.dir,
      async query(expr) {
        const data = await api(`/api/v1/query?query=${encodeURIComponent(expr)}`);
        if (data.resultType === 'scalar') return [{ metric: {}, value: data.result }];
        return data.result;
      },
      async alerts() {
        return (await api('/api/v1/alerts')).alerts;
      },
      async labelValues(label, match) {
        return api(`/api/v1/label/${encodeURIComponent(label)}/values${match ? `?match[]=${encodeURIComponent(match)}` : ''}`);
      },
      async targets() {
        return (await api('/api/v1/targets')).activeTargets;
      },
      async ruleGroups() {
        return (await api('/api/v1/rules')).groups;
      },
      output: () => out,
      async stop() {
        if (child.exitCode !== null) return;
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(t);
      },
    };
  }
  throw lastErr;
}
