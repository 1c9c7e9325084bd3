// The configuration's shape: accounts, and the keys every job shares. Job types add their own keys.
import cron from 'node-cron';
import { z } from 'zod';
import { parseDuration } from './duration';

export const durationMs = z.union([z.string(), z.number()]).transform((v, ctx) => {
  if (typeof v === 'number') {
    if (v >= 0) return v * 1000;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'a duration must not be negative' });
    return z.NEVER;
  }
  try {
    return parseDuration(v);
  } catch (err) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
    return z.NEVER;
  }
});

const nonEmpty = z.string().min(1, 'must not be empty');
const qpsOverrides = z.record(z.string().regex(/^[A-Z][A-Za-z0-9]+$/, 'API names are CamelCase, e.g. BatchQuerySessionByClientIds'), z.number().positive().max(100_000));

export const aliyunAccountSchema = z
  .object({
    name: nonEmpty,
    provider: z.literal('aliyun'),
    access_key_id: nonEmpty,
    access_key_secret: nonEmpty,
    security_token: nonEmpty.optional(),
    qps: qpsOverrides.optional(),
    request_timeout: durationMs.default('5s'),
    /** Longest a call is assumed to take to reach the cloud; default 500 ms / QPS, 20–100 ms (README, design notes). */
    rate_limit_margin: durationMs.optional(),
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
    request_timeout: durationMs.default('10s'),
    /** Longest a call is assumed to take to reach the cloud; default 500 ms / QPS, 20–100 ms (README, design notes). */
    rate_limit_margin: durationMs.optional(),
  })
  .strict();

export const accountSchema = z.discriminatedUnion('provider', [aliyunAccountSchema, tencentAccountSchema]);
export type AccountConfig = z.infer<typeof accountSchema>;
export type AliyunAccountConfig = z.infer<typeof aliyunAccountSchema>;
export type TencentAccountConfig = z.infer<typeof tencentAccountSchema>;

/** Keys holding credentials: each may instead be given as `<key>_file`, and all are registered for redaction. */
export const SECRET_KEYS = ['access_key_id', 'access_key_secret', 'security_token', 'secret_id', 'secret_key', 'token'] as const;

const RESERVED_LABELS = new Set(['instance', 'job', 'job_name', '__name__']);
export const staticLabels = z.record(
  z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'label names match [a-zA-Z_][a-zA-Z0-9_]*').refine((n) => !RESERVED_LABELS.has(n) && !n.startsWith('__'), {
    message: 'label name is reserved (instance, job, job_name and __* collide with Prometheus target labels)',
  }),
  z.union([z.string(), z.number(), z.boolean()]).transform(String),
);

export const cronSchedule = z.string().refine((s) => cron.validate(s), { message: 'not a valid cron expression (node-cron syntax; a leading seconds field is allowed)' });

/** Keys every job has, whatever its type. */
export const commonJobShape = {
  name: z.string().regex(/^[a-zA-Z0-9_.:-]+$/, 'job names use letters, digits, and _ . : -'),
  type: z.string(),
  schedule: cronSchedule,
  labels: staticLabels.default({}),
  /** Drop the last good values once they are this old (default: two schedule intervals). */
  stale_after: durationMs.optional(),
  /** Random delay before each scheduled run, spreading jobs that share a schedule. */
  jitter: durationMs.default(0),
  /** A run's deadline (default: the schedule interval, so a run never overlaps the next). */
  timeout: durationMs.optional(),
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
