// Pre-rendered metric families: lines are rendered once when a poll completes, so a scrape is a concatenation.
// The text is byte-identical to prom-client's text format (same escaping, HELP/TYPE lines and value formatting).
// Chunks are UTF-8 Buffers, encoded when the poll builds them: a scrape writes bytes without encoding or flattening
// strings, and a million lines live outside the V8 heap (no per-line string objects for the GC to trace).

export type MetricType = 'gauge' | 'counter' | 'histogram';

export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  /** Complete sample lines (UTF-8), each ending in "\n", grouped into chunks of roughly CHUNK_BYTES bytes. */
  readonly chunks: readonly Buffer[];
  readonly samples: number;
  /** Called by a scrape before it streams `chunks`; the returned function when it is done (see BinaryGaugeLines). */
  readonly retain?: () => () => void;
}

export const CHUNK_BYTES = 64 * 1024;

export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'Nan';
  if (!Number.isFinite(value)) return value < 0 ? '-Inf' : '+Inf';
  return `${value}`;
}

/** `a="x",b="y"` in the given order; callers cache this for label sets reused across polls. */
export function renderLabels(labels: Readonly<Record<string, string>>): string {
  let out = '';
  for (const key in labels) {
    if (out) out += ',';
    out += `${key}="${escapeLabelValue(labels[key])}"`;
  }
  return out;
}

export function joinLabels(...parts: string[]): string {
  let out = '';
  for (const p of parts) if (p) out = out ? `${out},${p}` : p;
  return out;
}

export function familyHeader(name: string, help: string, type: MetricType): string {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
}

export class FamilyBuilder {
  private readonly chunks: Buffer[] = [];
  private current = '';
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
  ) {}

  /** `labels` is the rendered inside of the braces (see renderLabels), or '' for none. */
  sample(labels: string, value: number, nameSuffix = ''): this {
    this.current += labels
      ? `${this.name}${nameSuffix}{${labels}} ${formatValue(value)}\n`
      : `${this.name}${nameSuffix} ${formatValue(value)}\n`;
    this.count++;
    if (this.current.length >= CHUNK_BYTES) this.flush();
    return this;
  }

  /** Cumulative histogram lines in prom-client's order: buckets (le first), +Inf, sum, count. */
  histogram(labels: string, bounds: readonly number[], counts: readonly number[], sum: number, count: number): this {
    let cumulative = 0;
    for (let i = 0; i < bounds.length; i++) {
      cumulative += counts[i];
      this.sample(joinLabels(`le="${formatValue(bounds[i])}"`, labels), cumulative, '_bucket');
    }
    this.sample(joinLabels('le="+Inf"', labels), count, '_bucket');
    this.sample(labels, sum, '_sum');
    this.sample(labels, count, '_count');
    return this;
  }

  get samples(): number {
    return this.count;
  }

  build(): MetricFamily {
    this.flush();
    return Object.freeze({ name: this.name, help: this.help, type: this.type, chunks: Object.freeze(this.chunks.slice()), samples: this.count });
  }

  private flush(): void {
    if (this.current) {
      this.chunks.push(Buffer.from(this.current, 'utf8'));
      this.current = '';
    }
  }
}

/** Cumulative-histogram state kept by a job between runs. */
export class HistogramState {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array(bounds.length).fill(0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) {
      if (value <= this.bounds[i]) {
        this.counts[i]++;
        return;
      }
    }
  }
}
