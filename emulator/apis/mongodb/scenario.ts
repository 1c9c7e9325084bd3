// The `mongodb:` section of a scenario: instances with their client IPs, churn, page mutations and documented refusals.
import { z } from 'zod';
import { checkInstances, name, type Scenario } from '../../core/scenario';

const nonNegativeInt = z.number().int().min(0);

const MongoClientSchema = z.object({ ip: name, count: z.number().int().min(0), internal_service: z.boolean().default(false) }).strict();

const MongoInstanceSchema = z
  .object({
    instance_id: name,
    region: name.default('ap-guangzhou'),
    account: name.optional(),
    client_ips: nonNegativeInt.max(4_000_000).default(0),
    connections_per_ip: z
      .object({ min: z.number().int().min(1).default(1), max: z.number().int().min(1).default(20) })
      .strict()
      .refine((r) => r.min <= r.max, { message: 'min must not exceed max' })
      .default({}),
    internal_service_ratio: z.number().min(0).max(1).default(0),
    clients: z.array(MongoClientSchema).default([]),
    // Share of IPs whose connection count is re-drawn each minute.
    churn_per_minute: z.number().min(0).max(1).default(0),
    mutate_between_pages: z.enum(['none', 'insert_front', 'remove_front', 'append']).default('none'),
    // What the answers say in TotalCount (the documentation's samples disagree): the real number of records,
    // `zero`, no TotalCount at all, or the real number plus off_by (at least 0; the sample "1 with 2 clients" is -1).
    total_count: z
      .union([z.enum(['correct', 'zero', 'absent']), z.object({ off_by: z.number().int() }).strict()])
      .default('correct'),
    unsupported: z.enum(['MongoVersion', 'Proxy', 'Region']).optional(),
    permission_denied: z.boolean().default(false),
  })
  .strict();

export const MONGODB_SCENARIO = { mongodb: z.object({ instances: z.array(MongoInstanceSchema).default([]) }).strict().default({}) };

export type MongoInstanceConfig = z.output<typeof MongoInstanceSchema>;

export function mongodbInstances(sc: Scenario): MongoInstanceConfig[] {
  return (sc.mongodb as { instances: MongoInstanceConfig[] }).instances;
}

export function checkMongodbScenario(sc: Scenario, ctx: z.RefinementCtx): void {
  checkInstances(sc, 'mongodb', mongodbInstances(sc), 'tencentcloud', ctx);
}
