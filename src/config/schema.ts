// The configuration's shape: accounts, and the keys every job shares. Job types add their own keys.
import cron from 'node-cron';
import { z } from 'zod';
import { durationMs } from './duration';
import { identifier } from './identifier';
import { parseByteSize } from './byte-size';
import { aliyunCredentialsSchema, tencentCredentialsSchema, type AliyunCredentialsConfig, type TencentCredentialsConfig } from './credentials';
import { parseProxyUrl } from './proxy-url';

/** A duration that must be more than zero (deadlines, timeouts). */
const positiveDurationMs = durationMs.refine((ms) => ms > 0, { message: 'must be longer than 0' });

/** Largest cloud answer read: far above any real one (a 1,000-client MongoDB page is ~100 KB, a 10,000-session DAS answer ~5 MB). */
const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
const byteSize = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseByteSize(v);
  } catch (err) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message, fatal: true });
    return z.NEVER;
  }
});

const nonEmpty = z.string().min(1, 'must not be empty');

/** A forward proxy for the account's cloud calls (src/cloud/proxy.ts); "" means none, whatever the environment says. */
const proxyUrl = z.string().superRefine((v, ctx) => {
  if (v === '') return;
  const url = parseProxyUrl(v);
  // The problem never quotes the value: it may carry a password.
  if (!(url instanceof URL)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: url.problem });
});
/** Hosts the account reaches without a proxy, in NO_PROXY's syntax; a list is joined. */
const noProxy = z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v.join(',') : v));

/** How an account's calls leave the process (README, "Proxies"). */
const networkShape = { proxy_url: proxyUrl.optional(), no_proxy: noProxy.optional() };
/** Per API, calls per second; the loader checks the names against the job types' APIs. */
const qpsOverrides = z.record(z.string(), z.number().positive().max(100_000));

export const aliyunAccountSchema = z
  .object({
    name: nonEmpty,
    provider: z.literal('aliyun'),
    // The static form: a long-term AccessKey, or a temporary one with its STS token. Or a `credentials:` block.
    access_key_id: nonEmpty.optional(),
    access_key_secret: nonEmpty.optional(),
    security_token: nonEmpty.optional(),
    credentials: aliyunCredentialsSchema.optional(),
    qps: qpsOverrides.optional(),
    /** Accounts naming the same group share one quota (one limiter per API): Alibaba counts per account UID, whatever the AccessKey. */
    quota_group: identifier().optional(),
    request_timeout: positiveDurationMs.default('5s'),
    /** Cloud answers larger than this fail with ResponseTooLarge. */
    max_response_size: byteSize.default(DEFAULT_MAX_RESPONSE_BYTES),
    /** Longest a call is assumed to take to reach the cloud; default 500 ms / QPS, 20–100 ms (README, design notes). */
    rate_limit_margin: durationMs.optional(),
    ...networkShape,
  })
  .strict();

export const tencentAccountSchema = z
  .object({
    name: nonEmpty,
    provider: z.literal('tencentcloud'),
    // The static form: a SecretId/SecretKey pair, or a temporary one with its token. Or a `credentials:` block.
    secret_id: nonEmpty.optional(),
    secret_key: nonEmpty.optional(),
    token: nonEmpty.optional(),
    credentials: tencentCredentialsSchema.optional(),
    qps: qpsOverrides.optional(),
    /** Accounts naming the same group share one quota (one limiter per API): Alibaba counts per account UID, whatever the AccessKey. */
    quota_group: identifier().optional(),
    request_timeout: positiveDurationMs.default('10s'),
    /** Cloud answers larger than this fail with ResponseTooLarge. */
    max_response_size: byteSize.default(DEFAULT_MAX_RESPONSE_BYTES),
    /** Longest a call is assumed to take to reach the cloud; default 500 ms / QPS, 20–100 ms (README, design notes). */
    rate_limit_margin: durationMs.optional(),
    ...networkShape,
  })
  .strict();

/** The keys of the static form, per provider: each may instead be given as `<key>_file`, and all are secrets. */
const STATIC_CREDENTIAL_KEYS = {
  aliyun: { id: 'access_key_id', secret: 'access_key_secret', token: 'security_token' },
  tencentcloud: { id: 'secret_id', secret: 'secret_key', token: 'token' },
} as const;
export const SECRET_KEYS = Object.values(STATIC_CREDENTIAL_KEYS).flatMap((k) => [k.id, k.secret, k.token]);

type StaticKey = (typeof SECRET_KEYS)[number];
/** An account as the exporter uses it: the static form is folded into `credentials` (type access_key/secret or sts). */
export type AliyunAccountConfig = Omit<z.output<typeof aliyunAccountSchema>, StaticKey | 'credentials'> & { credentials: AliyunCredentialsConfig };
export type TencentAccountConfig = Omit<z.output<typeof tencentAccountSchema>, StaticKey | 'credentials'> & { credentials: TencentCredentialsConfig };
export type AccountConfig = AliyunAccountConfig | TencentAccountConfig;

type ParsedAccount = z.output<typeof aliyunAccountSchema> | z.output<typeof tencentAccountSchema>;

/** Problems of the credentials' form, judged on which keys are present: both forms given, or the static form incomplete. */
export function credentialFormProblems(raw: Record<string, unknown> & { provider: ParsedAccount['provider'] }): Array<[string, string]> {
  const keys = STATIC_CREDENTIAL_KEYS[raw.provider];
  const given = [keys.id, keys.secret, keys.token].filter((k) => raw[k] !== undefined);
  if (raw.credentials !== undefined) {
    return given.map((k) => [k, `give either the static keys (${keys.id}, ${keys.secret}) or a credentials: block, not both`]);
  }
  return [keys.id, keys.secret].filter((k) => raw[k] === undefined).map((k) => [k, `required key is missing (or give ${k}_file, or a credentials: block)`]);
}

/** The account with its credentials in one place: a `credentials:` block as given, or the block the static keys stand for. */
export function foldCredentials(parsed: ParsedAccount): AccountConfig {
  const keys = STATIC_CREDENTIAL_KEYS[parsed.provider];
  const raw = parsed as Record<string, unknown>;
  const rest = Object.fromEntries(Object.entries(parsed).filter(([k]) => !(SECRET_KEYS as readonly string[]).includes(k) && k !== 'credentials'));
  if (parsed.credentials) return { ...rest, credentials: parsed.credentials } as AccountConfig;
  const token = raw[keys.token];
  const credentials =
    parsed.provider === 'aliyun'
      ? { type: token === undefined ? 'access_key' : 'sts', access_key_id: raw[keys.id], access_key_secret: raw[keys.secret], ...(token === undefined ? {} : { security_token: token }) }
      : { type: token === undefined ? 'secret' : 'sts', secret_id: raw[keys.id], secret_key: raw[keys.secret], ...(token === undefined ? {} : { token }) };
  return { ...rest, credentials } as AccountConfig;
}

const RESERVED_LABELS = new Set(['instance', 'job', 'job_name', '__name__']);
const staticLabels = z.record(
  z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'label names match [a-zA-Z_][a-zA-Z0-9_]*').refine((n) => !RESERVED_LABELS.has(n) && !n.startsWith('__'), {
    message: 'label name is reserved (instance, job, job_name and __* collide with Prometheus target labels)',
  }),
  z.union([z.string(), z.number(), z.boolean()]).transform(String),
);

/** Largest value of each cron field, seconds first (node-cron accepts a step beyond it, which fires only at the start). */
const CRON_FIELD_MAX = [59, 59, 23, 31, 12, 7];
const CRON_FIELD_NAMES = ['seconds', 'minutes', 'hours', 'day of month', 'month', 'day of week'];

/** A step larger than its field's range ("*\/61") is almost certainly a typo for a shorter interval. */
function cronStepProblem(expression: string): string | undefined {
  const fields = expression.trim().split(/\s+/);
  const offset = fields.length === 5 ? 1 : 0;
  for (let i = 0; i < fields.length; i++) {
    for (const part of fields[i].split(',')) {
      const step = /\/(\d+)$/.exec(part);
      const max = CRON_FIELD_MAX[i + offset];
      if (step && max !== undefined && Number(step[1]) > max) return `the step /${step[1]} of the ${CRON_FIELD_NAMES[i + offset]} field is larger than the field's range (0-${max})`;
    }
  }
  return undefined;
}

const cronSchedule = z.string().superRefine((s, ctx) => {
  if (!cron.validate(s)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'not a valid cron expression (node-cron syntax; a leading seconds field is allowed)' });
  else {
    const problem = cronStepProblem(s);
    if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
  }
});

/** Keys every job has, whatever its type. */
export const commonJobShape = {
  name: identifier('job names'),
  type: z.string(),
  schedule: cronSchedule,
  labels: staticLabels.default({}),
  /** Drop the last good values once they are this old (default: two schedule intervals). */
  stale_after: positiveDurationMs.optional(),
  /** Random delay before each scheduled run, spreading jobs that share a schedule; shorter than the interval. */
  jitter: durationMs.default(0),
  /** A run's deadline (default: defaultRunDeadlineMs, which leaves room for the next tick). */
  timeout: positiveDurationMs.optional(),
};

export interface CommonJobConfig {
  name: string;
  type: string;
  schedule: string;
  labels: Record<string, string>;
  stale_after?: number;
  jitter: number;
  timeout?: number;
}
