// Reads the YAML config: strict keys, ${VAR} / ${VAR:-default} interpolation, *_file secrets,
// and every problem reported with its path and line, all at once.
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, type Node } from 'yaml';
import { z } from 'zod';
import { registerSecret } from '../redact';
import type { AnyJobType } from '../jobs/types';
import { accountSchema, commonJobShape, SECRET_KEYS, type AccountConfig, type CommonJobConfig } from './schema';

export interface ExporterConfig {
  source: string;
  dir: string;
  accounts: AccountConfig[];
  jobs: Array<CommonJobConfig & Record<string, unknown>>;
}

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`${source}: ${problems.length} problem(s) in the configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type PathPart = string | number;

export interface LoadOptions {
  env?: Record<string, string | undefined>;
  jobTypes: readonly AnyJobType[];
}

export function loadConfigFile(file: string, opts: LoadOptions): ExporterConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  return parseConfig(text, file, opts);
}

export function parseConfig(text: string, source: string, opts: LoadOptions): ExporterConfig {
  const problems: string[] = [];
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  for (const e of doc.errors) {
    const pos = e.linePos?.[0];
    const msg = `${pos ? `line ${pos.line}: ` : ''}YAML syntax: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`;
    if (!problems.includes(msg)) problems.push(msg);
  }
  if (problems.length) throw new ConfigError(source, problems);

  const where = (p: PathPart[], key?: string) => {
    const loc = locate(doc.contents as Node | null, p, key, lines);
    return `${formatPath(key === undefined ? p : [...p, key])}${loc ? ` (line ${loc})` : ''}`;
  };

  const raw = doc.toJS() ?? {};
  const env = opts.env ?? process.env;
  const dir = path.dirname(path.resolve(source));
  const interpolated = interpolate(raw, [], env, (p, msg) => problems.push(`${where(p)}: ${msg}`));
  // Everything after a missing variable would only repeat it ("must not be empty", "no account named ...").
  if (problems.length) throw new ConfigError(source, problems);
  if (typeof interpolated !== 'object' || interpolated === null || Array.isArray(interpolated)) {
    throw new ConfigError(source, ['the file must be a mapping with `accounts` and `jobs`']);
  }

  const top = interpolated as Record<string, unknown>;
  for (const key of Object.keys(top)) if (!['accounts', 'jobs'].includes(key)) problems.push(`${where([], key)}: unknown key "${key}" (allowed: accounts, jobs)`);

  const accounts: AccountConfig[] = [];
  const rawAccounts = top.accounts ?? [];
  if (!Array.isArray(rawAccounts)) problems.push(`${where(['accounts'])}: must be a list`);
  else
    rawAccounts.forEach((acc, i) => {
      const base: PathPart[] = ['accounts', i];
      const resolved = resolveSecretFiles(acc, dir, (key, msg) => problems.push(`${where(base, key)}: ${msg}`));
      const parsed = accountSchema.safeParse(resolved);
      if (!parsed.success) report(parsed.error, base, where, problems);
      else accounts.push(parsed.data);
    });
  const accountByName = new Map<string, AccountConfig>();
  accounts.forEach((a, i) => {
    if (accountByName.has(a.name)) problems.push(`${where(['accounts', i, 'name'])}: duplicate account name "${a.name}"`);
    accountByName.set(a.name, a);
    for (const key of SECRET_KEYS) registerSecret((a as Record<string, unknown>)[key] as string | undefined);
  });

  const jobs: ExporterConfig['jobs'] = [];
  const rawJobs = top.jobs ?? [];
  const typeByName = new Map(opts.jobTypes.map((t) => [t.type, t]));
  if (!Array.isArray(rawJobs)) problems.push(`${where(['jobs'])}: must be a list`);
  else
    rawJobs.forEach((job, i) => {
      const base: PathPart[] = ['jobs', i];
      const typeName = (job as Record<string, unknown> | null)?.type;
      const jobType = typeof typeName === 'string' ? typeByName.get(typeName) : undefined;
      if (!jobType) {
        problems.push(`${where([...base, 'type'])}: ${typeName === undefined ? 'missing' : `unknown job type "${String(typeName)}"`} (one of: ${[...typeByName.keys()].join(', ')})`);
        return;
      }
      const schema = z.object({ ...commonJobShape, ...jobType.schema }).strict();
      const parsed = schema.safeParse(job);
      if (!parsed.success) {
        report(parsed.error, base, where, problems);
        return;
      }
      const cfg = parsed.data as CommonJobConfig & Record<string, unknown>;
      const account = typeof cfg.account === 'string' ? accountByName.get(cfg.account) : undefined;
      if (typeof cfg.account === 'string') {
        if (!account) problems.push(`${where([...base, 'account'])}: no account named "${cfg.account}" under accounts`);
        else if (account.provider !== jobType.provider) problems.push(`${where([...base, 'account'])}: account "${cfg.account}" is ${account.provider}, but ${jobType.type} needs a ${jobType.provider} account`);
      }
      for (const label of Object.keys(cfg.labels)) {
        if (jobType.labelNames.includes(label)) problems.push(`${where([...base, 'labels'], label)}: static label "${label}" collides with a label of ${jobType.type}`);
      }
      for (const [p, msg] of jobType.validate?.(cfg) ?? []) problems.push(`${where([...base, ...p])}: ${msg}`);
      jobs.push(cfg);
    });
  const seen = new Set<string>();
  jobs.forEach((j) => {
    if (seen.has(j.name)) problems.push(`jobs: duplicate job name "${j.name}"`);
    seen.add(j.name);
  });

  if (problems.length) throw new ConfigError(source, problems);
  return { source, dir, accounts, jobs };
}

function report(error: z.ZodError, base: PathPart[], where: (p: PathPart[], key?: string) => string, problems: string[]): void {
  for (const issue of error.issues) {
    const p = [...base, ...issue.path];
    if (issue.code === z.ZodIssueCode.unrecognized_keys) {
      for (const key of issue.keys) problems.push(`${where(p, key)}: unknown key "${key}"`);
    } else if (issue.code === z.ZodIssueCode.invalid_type && issue.received === 'undefined') {
      problems.push(`${where(p)}: required key is missing`);
    } else {
      problems.push(`${where(p)}: ${issue.message}`);
    }
  }
}

const VAR = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}/g;

function interpolate(value: unknown, p: PathPart[], env: Record<string, string | undefined>, problem: (p: PathPart[], msg: string) => void): unknown {
  if (typeof value === 'string') {
    return value.replace(VAR, (match, name: string | undefined, hasDefault: string | undefined, def: string | undefined) => {
      if (match === '$$') return '$';
      const v = env[name!];
      if (v !== undefined && v !== '') return v;
      if (hasDefault !== undefined) return def ?? '';
      problem(p, `environment variable ${name} is not set (write \${${name}:-default} for a default)`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, [...p, i], env, problem));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, [...p, k], env, problem);
    return out;
  }
  return value;
}

function resolveSecretFiles(acc: unknown, dir: string, problem: (key: string, msg: string) => void): unknown {
  if (!acc || typeof acc !== 'object' || Array.isArray(acc)) return acc;
  const out: Record<string, unknown> = { ...(acc as Record<string, unknown>) };
  for (const key of SECRET_KEYS) {
    const fileKey = `${key}_file`;
    if (!(fileKey in out)) continue;
    const file = out[fileKey];
    delete out[fileKey];
    if (key in out) {
      problem(fileKey, `give either ${key} or ${fileKey}, not both`);
      continue;
    }
    if (typeof file !== 'string' || !file) {
      problem(fileKey, 'must be a file path');
      continue;
    }
    try {
      out[key] = fs.readFileSync(path.resolve(dir, file), 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      problem(fileKey, `cannot read secret file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return out;
}

function formatPath(p: PathPart[]): string {
  if (!p.length) return '(top level)';
  return p.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

/** Line of the node at `p` (or of the key `key` inside it) in the YAML source. */
function locate(root: Node | null, p: PathPart[], key: string | undefined, lines: LineCounter): number | undefined {
  let node: unknown = root;
  let lastRange: [number, number, number] | undefined = (root as { range?: [number, number, number] } | null)?.range ?? undefined;
  const steps = key === undefined ? p : [...p, key];
  for (const step of steps) {
    if (isMap(node)) {
      const pair = node.items.find((it) => (it.key as { value?: unknown })?.value === step);
      if (!pair) break;
      lastRange = (pair.key as { range?: [number, number, number] }).range ?? lastRange;
      node = pair.value;
    } else if (isSeq(node) && typeof step === 'number') {
      node = node.items[step];
      if (!node) break;
      lastRange = (node as { range?: [number, number, number] }).range ?? lastRange;
    } else break;
  }
  return lastRange ? lines.linePos(lastRange[0]).line : undefined;
}
