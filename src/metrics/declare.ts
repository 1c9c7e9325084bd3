// Metric families declared once: name, type, HELP and label names in output order. Builders render samples with
// exactly the declared labels (then a job's static labels), so a label layout is stated in one place; the metrics
// reference (docs/metrics.md) and the benchmark read the same declarations.
import { escapeLabelValue, FamilyBuilder, joinLabels, type MetricFamily, type MetricType } from './family';

/** The suffix of every HELP string of a polled family. */
export const ON_SCHEDULE = 'Refreshed on the job schedule, not at scrape time.';

export interface FamilyDecl<L extends string = string> {
  readonly name: string;
  readonly type: MetricType;
  /** The HELP text, as exposed. */
  readonly help: string;
  /** Label names in output order (a histogram's `le` is implicit). */
  readonly labels: readonly L[];
  /** The meaning column of docs/metrics.md, when it should say more (or less) than HELP. */
  readonly doc?: string;
}

export function declareFamily<const L extends string>(decl: FamilyDecl<L>): FamilyDecl<L> {
  return Object.freeze({ ...decl, labels: Object.freeze([...decl.labels]) });
}

/** `a="x",b="y"` for the declared labels in their declared order. */
function renderDeclaredLabels<L extends string>(decl: FamilyDecl<L>, values: Readonly<Record<L, string>>): string {
  let out = '';
  for (const name of decl.labels) {
    const v = values[name];
    if (v === undefined) throw new Error(`${decl.name}: label ${name} has no value`);
    out += `${out ? ',' : ''}${name}="${escapeLabelValue(v)}"`;
  }
  return out;
}

/**
 * The first declared labels, as many as `values` gives, rendered in order: for lines that differ only in their last
 * labels (rendered per line by the caller, then checked with labelNamesOf).
 */
export function renderDeclaredPrefix<L extends string>(decl: FamilyDecl<L>, values: Readonly<Partial<Record<L, string>>>): string {
  const count = Object.keys(values).length;
  const names = decl.labels.slice(0, count);
  if (names.some((n) => values[n] === undefined)) throw new Error(`${decl.name}: ${Object.keys(values).join()} are not its first ${count} labels (${decl.labels.join()})`);
  return names.map((n) => `${n}="${escapeLabelValue(values[n] as string)}"`).join(',');
}

/** Samples of one declared family, each with the declared labels followed by `staticLabels` (rendered). */
export class DeclaredFamilyBuilder<L extends string> {
  private readonly inner: FamilyBuilder;

  constructor(
    readonly decl: FamilyDecl<L>,
    private readonly staticLabels = '',
  ) {
    this.inner = new FamilyBuilder(decl.name, decl.help, decl.type);
  }

  sample(labels: Readonly<Record<L, string>>, value: number): this {
    this.inner.sample(joinLabels(renderDeclaredLabels(this.decl, labels), this.staticLabels), value);
    return this;
  }

  histogram(labels: Readonly<Record<L, string>>, bounds: readonly number[], counts: readonly number[], sum: number, count: number): this {
    this.inner.histogram(joinLabels(renderDeclaredLabels(this.decl, labels), this.staticLabels), bounds, counts, sum, count);
    return this;
  }

  build(): MetricFamily {
    return this.inner.build();
  }
}

/** A family with one sample. */
export function singleSample<L extends string>(decl: FamilyDecl<L>, labels: Readonly<Record<L, string>>, value: number, staticLabels = ''): MetricFamily {
  return new DeclaredFamilyBuilder(decl, staticLabels).sample(labels, value).build();
}

/**
 * Label names of a rendered line (`name{a="x",b="y"} 1`), in order: used where lines are rendered without a builder
 * (per-device lines) to check them against their declaration once.
 */
export function labelNamesOf(line: string): string[] {
  const names: string[] = [];
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g;
  const open = line.indexOf('{');
  if (open < 0) return names;
  re.lastIndex = open;
  for (let m = re.exec(line); m; m = re.exec(line)) names.push(m[1]);
  return names;
}

/** Every label name the families use (a histogram's `le` included): the names static labels may not take. */
export function labelNamesOfFamilies(families: readonly FamilyDecl[]): string[] {
  const names = new Set<string>();
  for (const f of families) {
    for (const l of f.labels) names.add(l);
    if (f.type === 'histogram') names.add('le');
  }
  return [...names];
}
