// docs/metrics.md is generated from the metric declarations: it must be what the generator writes, and it must name
// every family a real scrape can show (and no other).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { renderMetricsDoc } from '../../scripts/metrics-doc';
import { JOB_TYPES } from '../../src/apis';
import { SELF_FAMILIES } from '../../src/metrics/self-metrics';

const DOC = path.resolve(__dirname, '../../docs/metrics.md');

describe('docs/metrics.md', () => {
  test('is up to date with the declarations (npm run docs)', () => {
    expect(fs.readFileSync(DOC, 'utf8')).toBe(renderMetricsDoc());
  });

  test('every family is declared once', () => {
    const names = [...SELF_FAMILIES, ...JOB_TYPES.flatMap((t) => [...t.families, ...(t.jobMetrics ?? [])])].map((f) => f.name);
    const repeated = names.filter((n, i) => names.indexOf(n) !== i);
    // Job types may share a per-job metric declaration object, never a name between two different declarations.
    expect(repeated).toEqual([]);
  });
});
