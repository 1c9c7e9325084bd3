// The configuration's shape: accounts, and the keys every job shares. Job types add their own keys.
import cron from 'node-cron';
import { z } from 'zod';
import { parseDuration } from './duration';
import { parseByteSize } from './byte-size';
import { parseProxyUrl } from './proxy-url';

export const durationMs = z.union([z.string(), z.number()]).transform((v, ctx) => {
  if (typeof v === 'number') {
    if (v >= 0) return v * 1000;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'a duration must not be negative', fatal: true });
    return z.NEVER;
  }
  try {
    return parseDuration(v);
  } catch (err) {
    // Fatal: refinements of an invalid duration (e.g. "must be longer than 0") would only add noise.
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message, fatal: true });
    return z.NEVER;
  }
});

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
    access_key_id: nonEmpty,
    access_key_secret: nonEmpty,
    security_token: nonEmpty.optional(),
    qps: qpsOverrides.optional(),
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
    secret_id: nonEmpty,
    secret_key: nonEmpty,
    token: nonEmpty.optional(),
    qps: qpsOverrides.optional(),
    request_timeout: positiveDurationMs.default('10s'),
    /** Cloud answers larger than this fail with ResponseTooLarge. */
    max_response_size: byteSize.default(DEFAULT_MAX_RESPONSE_BYTES),
    /** Longest a call is assumed to take to reach the cloud; default 500 ms / QPS, 20–100 ms (README, design notes). */
    rate_limit_margin: durationMs.optional(),
    ...networkShape,
  })
  .strict();

const accountSchema = z.discriminatedUnion('provider', [aliyunAccountSchema, tencentAccountSchema]);
export type AccountConfig = z.infer<typeof accountSchema>;

/** Keys holding credentials: each may instead be given as `<key>_file`, and all are registered for redaction. */
export const SECRET_KEYS = ['access_key_id', 'access_key_secret', 'security_token', 'secret_id', 'secret_key', 'token'] as const;

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
  name: z.string().regex(/^[a-zA-Z0-9_.:-]+$/, 'job names use letters, digits, and _ . : -'),
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
