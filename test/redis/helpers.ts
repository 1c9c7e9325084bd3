// Shared by the Redis tests: build the exporter app from YAML, scrape it, and read samples out of the exposition.
import { createApp, type App } from '../../src/core/app';
import type { TransportFactory } from '../../src/cloud/accounts';
import { parseConfig } from '../../src/config/load';
import { JOB_TYPES } from '../../src/apis';
import { createLogger } from '../../src/util/log';
import { snapshotExposition } from '../../src/metrics/exposition';

export interface Sample {
  name: string;
  /** Label pairs in the order they were written. */
  labels: Array<[string, string]>;
  value: number;
}

export function makeApp(yamlText: string, opts: { env?: Record<string, string>; transports?: Record<string, TransportFactory> } = {}): { app: App; logs: string[] } {
  const logs: string[] = [];
  const config = parseConfig(yamlText, '/tmp/redis-test.yml', { env: opts.env ?? {}, jobTypes: JOB_TYPES });
  const app = createApp(config, { jobTypes: JOB_TYPES, logger: createLogger({ level: 'warn', write: (l) => void logs.push(l) }), processMetrics: false, transports: opts.transports });
  return { app, logs };
}

export async function scrape(app: App): Promise<string> {
  return [...snapshotExposition(await app.metrics.registry.metrics(), app.store)].join('');
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Array<[string, string]> = [];
    for (const p of (m[2] ?? '').matchAll(PAIR)) labels.push([p[1], p[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\')]);
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** Samples of `name` whose labels include every pair of `match`. */
export function find(samples: Sample[], name: string, match: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels.some(([lk, lv]) => lk === k && lv === v)));
}

/** The one value of `name` with these labels; throws if there is none or several. */
export function value(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  const found = find(samples, name, match);
  if (found.length !== 1) throw new Error(`expected one sample of ${name} ${JSON.stringify(match)}, found ${found.length}`);
  return found[0].value;
}

/** label value → sample value, for a family with one varying label. */
export function byLabel(samples: Sample[], name: string, label: string, match: Record<string, string> = {}): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of find(samples, name, match)) {
    const v = s.labels.find(([k]) => k === label);
    if (!v) throw new Error(`${name} sample without label ${label}`);
    if (m.has(v[1])) throw new Error(`${name}: two samples with ${label}="${v[1]}"`);
    m.set(v[1], s.value);
  }
  return m;
}
