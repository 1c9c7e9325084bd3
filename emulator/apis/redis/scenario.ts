// The `redis:` section of a scenario: DAS-visible Redis instances, synthetic or read from a real redis-server, and
// the answer quirks to reproduce (string codes, Success:false business failures).
import { z } from 'zod';
import { checkInstances, name, type Scenario } from '../../core/scenario';

const ratio = z.number().min(0).max(1);
const nonNegativeInt = z.number().int().min(0);

const BytesRangeSchema = z
  .object({ min: nonNegativeInt.default(0), max: nonNegativeInt.default(0) })
  .strict()
  .refine((r) => r.min <= r.max, { message: 'min must not exceed max' });

const IdleBucketSchema = z
  .object({ weight: z.number().positive(), min_s: nonNegativeInt, max_s: nonNegativeInt })
  .strict()
  .refine((r) => r.min_s <= r.max_s, { message: 'min_s must not exceed max_s' });

const RealRedisSchema = z
  .object({
    host: name.default('127.0.0.1'),
    port: z.number().int().min(1).max(65535),
    username: name.optional(),
    password: name.optional(),
    node_id: name.optional(),
    timeout_ms: z.number().int().min(1).default(2000),
  })
  .strict();

const RedisInstanceSchema = z
  .object({
    instance_id: name,
    account: name.optional(),
    nodes: z.union([z.number().int().min(1), z.array(name).min(1)]).default(1),
    sessions: nonNegativeInt.default(0),
    client_ips: z.union([z.number().int().min(1), z.array(name).min(1)]).default(1),
    commands: z
      .record(name, z.number().positive())
      .default({ GET: 40, SET: 20, HGETALL: 10, PING: 10, INFO: 5, EVALSHA: 5, MGET: 10 }),
    idle: z
      .array(IdleBucketSchema)
      .min(1)
      .default([
        { weight: 60, min_s: 0, max_s: 59 },
        { weight: 25, min_s: 60, max_s: 299 },
        { weight: 10, min_s: 300, max_s: 3599 },
        { weight: 5, min_s: 3600, max_s: 86_400 },
      ]),
    blocked_ratio: ratio.default(0.02),
    pubsub_ratio: ratio.default(0.03),
    multi_ratio: ratio.default(0.01),
    omem_bytes: BytesRangeSchema.default({ min: 0, max: 16_384 }),
    qbuf_bytes: BytesRangeSchema.default({ min: 0, max: 4_096 }),
    total_extra: nonNegativeInt.default(0),
    max_listed: nonNegativeInt.optional(),
    code_as_string: z.boolean().default(false),
    success_as_string: z.boolean().default(false),
    business_failure: z.enum(['none', 'code', 'success_false']).default('none'),
    business_failure_code: name.default('-1001'),
    no_permission: z.boolean().default(false),
    redis: RealRedisSchema.optional(),
  })
  .strict();

export const REDIS_SCENARIO = { redis: z.object({ instances: z.array(RedisInstanceSchema).default([]) }).strict().default({}) };

export type RedisInstanceConfig = z.output<typeof RedisInstanceSchema>;

export function redisInstances(sc: Scenario): RedisInstanceConfig[] {
  return (sc.redis as { instances: RedisInstanceConfig[] }).instances;
}

export function checkRedisScenario(sc: Scenario, ctx: z.RefinementCtx): void {
  checkInstances(sc, 'redis', redisInstances(sc), 'aliyun', ctx);
}
