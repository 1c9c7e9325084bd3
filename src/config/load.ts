// Reads the YAML config: strict keys, ${VAR} / ${VAR:-default} interpolation, *_file secrets, and every problem
// reported with its path and line, all at once: each key is checked on its own, so a bad value in one key never hides
// a problem in another (an unknown account, a label collision, a duplicate name) until the first is fixed.
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, type Node } from 'yaml';
import { z } from 'zod';
import { durationMs } from './duration';
import { redact, registerSecret } from '../util/redact';
import type { AnyJobConfigSpec } from './spec';
import { parseProxyUrl, registerProxyCredentials } from './proxy-url';
import { scheduleIntervalMs } from '../util/schedule';
import { aliyunAccountSchema, commonJobShape, credentialFormProblems, foldCredentials, SECRET_KEYS, tencentAccountSchema, type AccountConfig, type CommonJobConfig } from './schema';
import { checkCredentialsConfig, describeCredentials } from './credentials';
import { clusterProblems, clusterShape, describeCluster, resolveCluster, type ClusterConfig } from './cluster';

export interface ExporterConfig {
  source: string;
  dir: string;
  accounts: AccountConfig[];
  /** `source_ip_qps:` overrides of the products' per-source-IP ceilings, by product. */
  sourceIpQps: Record<string, number>;
  jobs: Array<CommonJobConfig & Record<string, unknown>>;
  /** The `cluster:` block (replicas coordinated through Redis); absent: this process alone. */
  cluster?: ClusterConfig;
  /** What --config.check found worth saying that is not a problem (e.g. skipped inventory lines). */
  checkNotes: string[];
  /**
   * The file as loaded: ${VAR}s resolved, `*_file` keys still naming their files, no defaults added. It holds secrets:
   * only src/core/config-view.ts shows it, masked.
   */
  document: unknown;
}

export class ConfigError extends Error {
  readonly problems: string[];

  constructor(
    readonly source: string,
    problems: string[],
  ) {
    // A problem's text may quote a value; values that are secrets never leave this object unmasked.
    const safe = problems.map(redact);
    super(`${source}: ${safe.length} problem(s) in the configuration:\n  - ${safe.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = safe;
  }
}

type PathPart = string | number;

export interface LoadOptions {
  env?: Record<string, string | undefined>;
  jobTypes: readonly AnyJobConfigSpec[];
  /** --config.check: also read the files jobs name (inventories) and report what is wrong with them. */
  checkFiles?: boolean;
  /** A config without jobs is an error unless this is set (--config.allow-no-jobs). */
  allowNoJobs?: boolean;
}

export function loadConfigFile(file: string, opts: LoadOptions): ExporterConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (set the path with --config.file)`]);
  }
  return parseConfig(text, file, opts);
}

/** Where a value came from, when not literally from the file: its text must not be echoed in a problem. */
interface Taint {
  value: string;
  source: string;
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

  const lineOf = (p: PathPart[]) => locate(doc.contents as Node | null, p, lines);
  const where = (p: PathPart[]) => {
    const loc = lineOf(p);
    return `${formatPath(p)}${loc ? ` (line ${loc})` : ''}`;
  };
  const taints = new Map<string, Taint[]>();
  const missing: PathPart[][] = [];
  /** Records a problem at `p`, with any value that came from the environment or a file taken out of its text. */
  const problem = (p: PathPart[], msg: string) => {
    // A key whose variable (or secret file) is missing already has its problem; "must not be empty" would repeat it.
    if (missing.some((m) => m.length <= p.length && m.every((part, i) => part === p[i])) && !msg.startsWith('environment variable')) return;
    problems.push(`${where(p)}: ${withoutTaintedValues(msg, taints.get(pathKey(p)))}`);
  };

  if (text.trim() === '' || doc.contents === null) throw new ConfigError(source, ['the file is empty: it needs `accounts` and `jobs`']);
  const raw = doc.toJS() ?? {};
  const env = opts.env ?? process.env;
  const dir = path.dirname(path.resolve(source));
  const interpolated = interpolate(raw, [], env, taints, (p, name) => {
    missing.push(p);
    problem(p, `environment variable ${name} is not set (write \${${name}:-default} for a default)`);
  });
  if (typeof interpolated !== 'object' || interpolated === null || Array.isArray(interpolated)) {
    throw new ConfigError(source, [...problems, 'the file must be a mapping with `accounts` and `jobs`']);
  }

  const top = interpolated as Record<string, unknown>;
  for (const key of Object.keys(top)) if (!TOP_KEYS.includes(key)) problem([key], `unknown key "${key}" (allowed: ${TOP_KEYS.join(', ')})`);

  const knownApis = new Set(opts.jobTypes.flatMap((t) => Object.keys(t.apiQps)));
  const accounts = parseAccounts(top.accounts, dir, knownApis, problem, taints, (p) => missing.push(p), opts.checkFiles ?? false);
  checkQuotaGroups(top.accounts, problem);
  const sourceIpQps = parseSourceIpQps(top.source_ip_qps, opts.jobTypes, problem);
  const cluster = parseCluster(top.cluster, dir, problem);
  const declared = new Set(Array.isArray(top.accounts) ? top.accounts.map((a) => (isObject(a) ? a.name : undefined)).filter((n): n is string => typeof n === 'string') : []);
  const jobs = parseJobs(top.jobs, accounts, declared, opts, dir, problem, lineOf);
  if (!opts.allowNoJobs && (top.jobs === undefined || top.jobs === null || (Array.isArray(top.jobs) && top.jobs.length === 0))) {
    problem(['jobs'], 'no jobs are configured: the exporter would poll nothing (pass --config.allow-no-jobs if that is intended)');
  }
  if (problems.length) throw new ConfigError(source, problems);
  // --config.check names each account's kind of credentials (never a secret: key IDs are registered as secrets).
  const accountNotes = opts.checkFiles ? [...accounts.values()].map((a) => `account ${a.name}: ${describeCredentials(a.credentials)}`) : [];
  const clusterNotes = opts.checkFiles && cluster ? [describeCluster(cluster)] : [];
  return { source, dir, accounts: [...accounts.values()], sourceIpQps, jobs: jobs.parsed, ...(cluster ? { cluster } : {}), checkNotes: [...accountNotes, ...clusterNotes, ...jobs.notes], document: interpolated };
}

type Problem = (p: PathPart[], msg: string) => void;

const TOP_KEYS = ['accounts', 'source_ip_qps', 'jobs', 'cluster'];

/** `cluster:` (config/cluster.ts): each key checked on its own, then the shard within total_shards and the password file. */
function parseCluster(raw: unknown, dir: string, problem: Problem): ClusterConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isObject(raw)) {
    problem(['cluster'], 'must be a mapping with at least redis.url');
    return undefined;
  }
  const fields = parseFields(clusterShape, raw, ['cluster'], problem) as Parameters<typeof clusterProblems>[0] | undefined;
  if (!fields) return undefined;
  const within = (p: string[], msg: string) => problem(['cluster', ...p], msg);
  const crossProblems = clusterProblems(fields);
  for (const [p, msg] of crossProblems) within(p, msg);
  const resolved = resolveCluster(fields, dir, within);
  return crossProblems.length === 0 ? resolved : undefined;
}

/** `source_ip_qps: {<product>: calls per second}`: products are those whose job types state a per-source-IP ceiling. */
function parseSourceIpQps(raw: unknown, jobTypes: LoadOptions['jobTypes'], problem: Problem): Record<string, number> {
  if (raw === undefined || raw === null) return {};
  if (!isObject(raw)) {
    problem(['source_ip_qps'], 'must be a mapping of product to calls per second');
    return {};
  }
  const products = [...new Set(jobTypes.flatMap((t) => (t.sourceIpCeiling ? [t.sourceIpCeiling.product] : [])))];
  const out: Record<string, number> = {};
  for (const [product, qps] of Object.entries(raw)) {
    if (!products.includes(product)) problem(['source_ip_qps', product], `unknown product "${product}" (products with a per-source-IP ceiling: ${products.join(', ')})`);
    else if (typeof qps !== 'number' || !(qps > 0) || qps > 100_000) problem(['source_ip_qps', product], 'must be a number of calls per second, above 0');
    else out[product] = qps;
  }
  return out;
}

/** Accounts sharing a quota group share its limiters: they must be of one provider and agree on the rates and margin. */
function checkQuotaGroups(raw: unknown, problem: Problem): void {
  if (!Array.isArray(raw)) return;
  const first = new Map<string, { index: number; acc: Record<string, unknown> }>();
  raw.forEach((acc, i) => {
    if (!isObject(acc) || typeof acc.quota_group !== 'string') return;
    const prior = first.get(acc.quota_group);
    if (!prior) return void first.set(acc.quota_group, { index: i, acc });
    const where = formatPath(['accounts', prior.index]);
    for (const key of ['provider', 'qps', 'rate_limit_margin'] as const) {
      if (quotaSetting(key, acc[key]) !== quotaSetting(key, prior.acc[key])) {
        problem(['accounts', i, 'quota_group'], `quota group "${acc.quota_group}" is shared with ${where}, whose ${key} differs: accounts sharing a quota must share ${key}`);
      }
    }
  });
}

/** A quota-group setting as it takes effect: "1s" and 1 one margin, qps maps in any key order, {} no overrides. */
function quotaSetting(key: 'provider' | 'qps' | 'rate_limit_margin', v: unknown): string {
  if (key === 'rate_limit_margin') {
    const ms = durationMs.safeParse(v);
    if (ms.success) return String(ms.data);
  }
  if (key === 'qps' && isObject(v)) return JSON.stringify(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)));
  if (key === 'qps' && v === undefined) return '[]';
  return JSON.stringify(v ?? null);
}

function parseAccounts(
  rawAccounts: unknown,
  dir: string,
  knownApis: ReadonlySet<string>,
  problem: Problem,
  taints: Map<string, Taint[]>,
  suppress: (p: PathPart[]) => void,
  checkFiles: boolean,
): Map<string, AccountConfig> {
  const accounts = new Map<string, AccountConfig>();
  if (rawAccounts === undefined || rawAccounts === null) return accounts;
  if (!Array.isArray(rawAccounts)) {
    problem(['accounts'], 'must be a list');
    return accounts;
  }
  const firstIndex = new Map<string, number>();
  rawAccounts.forEach((acc, i) => {
    const base: PathPart[] = ['accounts', i];
    if (!isObject(acc)) return problem(base, 'must be a mapping');
    const resolved = resolveSecretFiles(acc, dir, base, problem, taints, suppress);
    const provider = resolved.provider;
    const schema = provider === 'aliyun' ? aliyunAccountSchema : provider === 'tencentcloud' ? tencentAccountSchema : undefined;
    if (!schema) return problem([...base, 'provider'], provider === undefined ? 'required key is missing (aliyun or tencentcloud)' : 'must be aliyun or tencentcloud');
    const fields = parseFields(schema.shape, resolved, base, problem) as Parameters<typeof foldCredentials>[0] | undefined;
    for (const key of SECRET_KEYS) if (typeof resolved[key] === 'string') registerSecret(resolved[key] as string);
    const block = resolved.credentials;
    if (isObject(block)) for (const key of SECRET_KEYS) if (typeof block[key] === 'string') registerSecret(block[key] as string);
    // Which form the credentials take is judged on the keys present, whatever their values.
    const formProblems = credentialFormProblems(resolved as Parameters<typeof credentialFormProblems>[0]);
    for (const [key, msg] of formProblems) problem([...base, key], msg);
    let parsed: AccountConfig | undefined;
    if (fields && formProblems.length === 0) {
      parsed = foldCredentials(fields);
      // Files of a credentials block are read by its provider at every refresh (a sidecar or the kubelet may write
      // them after start-up): only --config.check insists that they are there now.
      if (fields.credentials && checkFiles) for (const [p, msg] of checkCredentialsConfig(fields.credentials, dir)) problem([...base, 'credentials', ...p], msg);
    }
    // Only the proxy's password is a secret: its address is named in messages (proxy-url.ts).
    const proxy = typeof resolved.proxy_url === 'string' && resolved.proxy_url ? parseProxyUrl(resolved.proxy_url) : undefined;
    if (proxy instanceof URL) registerProxyCredentials(proxy);
    const qps = isObject(resolved.qps) ? resolved.qps : {};
    for (const api of Object.keys(qps)) {
      if (!knownApis.has(api)) problem([...base, 'qps', api], `unknown API "${api}" (known: ${[...knownApis].sort().join(', ')})`);
    }
    const name = resolved.name;
    if (typeof name === 'string') {
      if (firstIndex.has(name)) problem([...base, 'name'], `duplicate account name "${name}" (first at ${formatPath(['accounts', firstIndex.get(name)!])})`);
      else firstIndex.set(name, i);
    }
    if (parsed && !accounts.has(parsed.name)) accounts.set(parsed.name, parsed);
  });
  return accounts;
}

function parseJobs(
  rawJobs: unknown,
  accounts: ReadonlyMap<string, AccountConfig>,
  /** Account names in the file, valid or not: a job naming an invalid account gets that account's problems only. */
  declared: ReadonlySet<string>,
  opts: LoadOptions,
  dir: string,
  problem: Problem,
  lineOf: (p: PathPart[]) => number | undefined,
): { parsed: ExporterConfig['jobs']; notes: string[] } {
  const parsed: ExporterConfig['jobs'] = [];
  const notes: string[] = [];
  if (rawJobs === undefined || rawJobs === null) return { parsed, notes };
  if (!Array.isArray(rawJobs)) {
    problem(['jobs'], 'must be a list');
    return { parsed, notes };
  }
  const typeByName = new Map(opts.jobTypes.map((t) => [t.type, t]));
  const firstIndex = new Map<string, number>();
  /** Per parsed job: its index and the instances it reports, for the duplicate-series check. */
  const reported: Array<{ index: number; job: CommonJobConfig; instances: readonly string[] }> = [];
  rawJobs.forEach((job, i) => {
    const base: PathPart[] = ['jobs', i];
    if (!isObject(job)) return problem(base, 'must be a mapping');
    const name = job.name;
    if (typeof name === 'string') {
      if (firstIndex.has(name)) problem([...base, 'name'], `duplicate job name "${name}" (first at ${where0(['jobs', firstIndex.get(name)!, 'name'], lineOf)})`);
      else firstIndex.set(name, i);
    }
    const jobType = typeof job.type === 'string' ? typeByName.get(job.type) : undefined;
    if (!jobType) {
      problem([...base, 'type'], `${job.type === undefined ? 'required key is missing' : `unknown job type "${String(job.type)}"`} (one of: ${[...typeByName.keys()].join(', ')})`);
      return;
    }
    // Checked on the raw values, so they are reported even when other keys of the job are wrong.
    if (typeof job.account === 'string') {
      const account = accounts.get(job.account);
      if (!declared.has(job.account)) problem([...base, 'account'], `no account named "${job.account}" under accounts`);
      else if (account && account.provider !== jobType.provider) problem([...base, 'account'], `account "${job.account}" is a ${account.provider} account, but ${jobType.type} needs one of provider ${jobType.provider}`);
    }
    if (isObject(job.labels)) {
      for (const label of Object.keys(job.labels)) if (jobType.labelNames.includes(label)) problem([...base, 'labels', label], `static label "${label}" collides with a label of ${jobType.type}`);
    }
    const cfg = parseFields({ ...commonJobShape, ...jobType.schema }, job, base, problem) as (CommonJobConfig & Record<string, unknown>) | undefined;
    if (!cfg) return;
    const intervalMs = scheduleIntervalMs(cfg.schedule);
    if (cfg.jitter >= intervalMs) problem([...base, 'jitter'], `must be shorter than the schedule's interval (${intervalMs / 1000}s): a run could otherwise start after the next tick`);
    for (const [p, msg] of jobType.validate?.(cfg, accounts) ?? []) problem([...base, ...p], msg);
    if (opts.checkFiles && jobType.inspect) {
      const found = jobType.inspect(cfg, dir);
      for (const [p, msg] of found.problems) problem([...base, ...p], msg);
      notes.push(...found.notes.map((n) => `job ${cfg.name}: ${n}`));
    }
    reported.push({ index: i, job: cfg, instances: jobType.instanceIds(cfg) });
    parsed.push(cfg);
  });
  // Two jobs of one type on one instance with the same static labels would emit the same series with different values.
  for (let a = 0; a < reported.length; a++) {
    for (let b = a + 1; b < reported.length; b++) {
      const [x, y] = [reported[a], reported[b]];
      if (x.job.type !== y.job.type || !sameLabels(x.job.labels, y.job.labels)) continue;
      const shared = x.instances.find((id) => y.instances.includes(id));
      if (shared === undefined) continue;
      problem(
        ['jobs', y.index],
        `jobs "${x.job.name}" (${where0(['jobs', x.index], lineOf)}) and "${y.job.name}" both report ${x.job.type} for instance ${shared} with the same labels: their series would collide; give one of them a distinguishing static label (labels:) or merge them`,
      );
    }
  }
  return { parsed, notes };
}

/**
 * Parses an object key by key: unknown keys, and each key's own problems, are reported independently. Returns the
 * typed object only when every key is valid.
 */
function parseFields(shape: z.ZodRawShape, raw: Record<string, unknown>, base: PathPart[], problem: Problem): Record<string, unknown> | undefined {
  let ok = true;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(raw)) {
    if (!(key in shape)) {
      problem([...base, key], `unknown key "${key}"`);
      ok = false;
    }
  }
  for (const [key, schema] of Object.entries(shape)) {
    const result = schema.safeParse(raw[key]);
    if (result.success) {
      if (result.data !== undefined) out[key] = result.data;
      continue;
    }
    ok = false;
    for (const issue of result.error.issues) {
      const p = [...base, key, ...issue.path];
      if (issue.code === z.ZodIssueCode.unrecognized_keys) for (const k of issue.keys) problem([...p, k], `unknown key "${k}"`);
      else if (issue.code === z.ZodIssueCode.invalid_type && issue.received === 'undefined') problem(p, 'required key is missing');
      else problem(p, issue.message);
    }
  }
  return ok ? out : undefined;
}

const VAR = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}/g;

function interpolate(value: unknown, p: PathPart[], env: Record<string, string | undefined>, taints: Map<string, Taint[]>, missingVar: (p: PathPart[], name: string) => void): unknown {
  if (typeof value === 'string') {
    return value.replace(VAR, (match, name: string | undefined, hasDefault: string | undefined, def: string | undefined) => {
      if (match === '$$') return '$';
      const v = env[name!];
      if (v !== undefined && v !== '') {
        addTaint(taints, p, { value: v, source: `the value of \${${name}}` });
        return v;
      }
      if (hasDefault !== undefined) return def ?? '';
      missingVar(p, name!);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, [...p, i], env, taints, missingVar));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, [...p, k], env, taints, missingVar);
    return out;
  }
  return value;
}

/** Replaces each `<key>_file` by `<key>` holding the file's content; `suppress` silences the key a failed read leaves missing. */
function resolveSecretFiles(acc: Record<string, unknown>, dir: string, base: PathPart[], problem: Problem, taints: Map<string, Taint[]>, suppress: (p: PathPart[]) => void): Record<string, unknown> {
  const out: Record<string, unknown> = { ...acc };
  for (const key of SECRET_KEYS) {
    const fileKey = `${key}_file`;
    if (!(fileKey in out)) continue;
    const file = out[fileKey];
    delete out[fileKey];
    if (key in out) {
      problem([...base, fileKey], `give either ${key} or ${fileKey}, not both`);
      continue;
    }
    if (typeof file !== 'string' || !file) {
      problem([...base, fileKey], 'must be a file path');
      continue;
    }
    try {
      const secret = fs.readFileSync(path.resolve(dir, file), 'utf8').replace(/\r?\n$/, '');
      registerSecret(secret);
      addTaint(taints, [...base, key], { value: secret, source: `the content of ${file}` });
      out[key] = secret;
    } catch (err) {
      problem([...base, fileKey], `cannot read secret file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      suppress([...base, key]);
    }
  }
  return out;
}

function addTaint(taints: Map<string, Taint[]>, p: PathPart[], taint: Taint): void {
  const key = pathKey(p);
  const list = taints.get(key) ?? [];
  list.push(taint);
  taints.set(key, list);
}

/** A value from the environment or a file may be a secret in the wrong key: name its source instead of quoting it. */
function withoutTaintedValues(msg: string, taints: Taint[] | undefined): string {
  let out = msg;
  for (const t of taints ?? []) {
    for (const quoted of [JSON.stringify(t.value), `'${t.value}'`, `"${t.value}"`]) out = out.split(quoted).join(`(${t.source})`);
    if (t.value.length >= 4) out = out.split(t.value).join(`(${t.source})`);
  }
  return out;
}

function pathKey(p: PathPart[]): string {
  return JSON.stringify(p);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

function where0(p: PathPart[], lineOf: (p: PathPart[]) => number | undefined): string {
  const loc = lineOf(p);
  return loc ? `line ${loc}` : formatPath(p);
}

function formatPath(p: PathPart[]): string {
  if (!p.length) return '(top level)';
  return p.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

/** Line of the node at `p` (or of its key, for a mapping entry) in the YAML source; the nearest ancestor's if absent. */
function locate(root: Node | null, p: PathPart[], lines: LineCounter): number | undefined {
  let node: unknown = root;
  let lastRange: [number, number, number] | undefined = (root as { range?: [number, number, number] } | null)?.range ?? undefined;
  for (const step of p) {
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
