// The tests' one reader of the Prometheus text format: a scrape as samples, with the lookups tests need.
import { expect } from 'vitest';
export interface Sample {
  name: string;
  /** Label name → value (unescaped). */
  labels: Record<string, string>;
  /** The same labels in the order they were written (label layout checks). */
  pairs: Array<[string, string]>;
  value: number;
  /** The text inside the braces, as written. */
  rawLabels: string;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescape(v: string): string {
  return v.replace(/\\(n|"|\\)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

function toNumber(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'Nan' || text === 'NaN') return NaN;
  return Number(text);
}

export class Scrape {
  constructor(readonly samples: readonly Sample[]) {}

  /** Samples of `name` whose labels include every pair of `match`. */
  all(name: string, match: Record<string, string> = {}): Sample[] {
    return this.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
  }

  /** The one sample matching, or undefined; throws when several match. */
  one(name: string, match: Record<string, string> = {}): Sample | undefined {
    const found = this.all(name, match);
    if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(match)}`);
    return found[0];
  }

  value(name: string, match: Record<string, string> = {}): number | undefined {
    return this.one(name, match)?.value;
  }

  sum(name: string, match: Record<string, string> = {}): number {
    return this.all(name, match).reduce((a, s) => a + s.value, 0);
  }

  /** Label value → sample value, for a family with one varying label; throws on a repeated value. */
  byLabel(name: string, label: string, match: Record<string, string> = {}): Map<string, number> {
    const out = new Map<string, number>();
    for (const s of this.all(name, match)) {
      const v = s.labels[label];
      if (v === undefined) throw new Error(`${name} sample without label ${label}`);
      if (out.has(v)) throw new Error(`${name}: two samples with ${label}="${v}"`);
      out.set(v, s.value);
    }
    return out;
  }

  /** Every series as one key (name and sorted labels), to compare scrapes or find duplicates. */
  keys(): string[] {
    return this.samples.map((s) => `${s.name}{${Object.keys(s.labels).sort().map((k) => `${k}="${s.labels[k]}"`).join(',')}}`);
  }
}

export function parseExposition(text: string): Scrape {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const pairs: Array<[string, string]> = [];
    for (const p of (m[2] ?? '').matchAll(PAIR)) pairs.push([p[1], unescape(p[2])]);
    out.push({ name: m[1], labels: Object.fromEntries(pairs), pairs, value: toNumber(m[3]), rawLabels: m[2] ?? '' });
  }
  return new Scrape(out);
}

/** Series of one metric whose labels include all of `match`, as [labels, value]. */
export function seriesOf(scrape: Scrape, name: string, match: Record<string, string> = {}): Array<[Record<string, string>, number]> {
  return scrape.all(name, match).map((s) => [s.labels, s.value]);
}

/** No series appears twice (same name, same labels): Prometheus would reject the whole scrape. */
export function expectNoDuplicateSeries(m: Scrape): void {
  const keys = m.samples.map((s) => `${s.name}{${s.rawLabels}}`);
  expect(new Set(keys).size).toBe(keys.length);
}
