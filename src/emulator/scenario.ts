// The emulator's scenario file: a strict YAML schema describing credentials, instances, limits and faults.
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { BrokerScenarioSchema, checkBrokerReferences } from './mqtt-broker-scenario';

export const API_NAMES = [
  'QuerySessionByClientId',
  'BatchQuerySessionByClientIds',
  'SendMessage',
  'GetRedisAllSession',
  'DescribeClientConnections',
] as const;
export type ApiName = (typeof API_NAMES)[number];
const ApiNameSchema = z.enum(API_NAMES);

const ratio = z.number().min(0).max(1);
const nonNegativeInt = z.number().int().min(0);
const name = z.string().min(1);

const AliyunCredentialSchema = z
  .object({
    account: name,
    provider: z.literal('aliyun'),
    access_key_id: name,
    access_key_secret: name,
    security_token: name.optional(),
  })
  .strict();

const TencentCredentialSchema = z
  .object({
    account: name,
    provider: z.literal('tencentcloud'),
    secret_id: name,
    secret_key: name,
    token: name.optional(),
  })
  .strict();

const CredentialSchema = z.discriminatedUnion('provider', [AliyunCredentialSchema, TencentCredentialSchema]);

const RangeMsSchema = z
  .object({ min_ms: nonNegativeInt.default(0), max_ms: nonNegativeInt.default(0) })
  .strict()
  .refine((r) => r.min_ms <= r.max_ms, { message: 'min_ms must not exceed max_ms' });

const LatencySchema = z
  .object({
    min_ms: nonNegativeInt.default(0),
    max_ms: nonNegativeInt.default(0),
    per_api: z.record(ApiNameSchema, RangeMsSchema).default({}),
  })
  .strict()
  .refine((r) => r.min_ms <= r.max_ms, { message: 'min_ms must not exceed max_ms' });

const FaultSpecSchema = z
  .object({
    error_rates: z.record(name, ratio).default({}),
    // Only needed for Alibaba codes the emulator does not know; Tencent errors are always HTTP 200.
    http_status: z.record(name, z.number().int().min(200).max(599)).default({}),
    timeout_rate: ratio.default(0),
    /** Share of calls answered with headers at once and then one body byte per second, forever (until the client gives up). */
    drip_rate: ratio.default(0),
    malformed_rate: ratio.default(0),
    timeout_ms: z.number().int().min(1).default(10_000),
  })
  .strict()
  .refine(
    (f) => Object.values(f.error_rates).reduce((a, b) => a + b, 0) + f.timeout_rate + f.drip_rate + f.malformed_rate <= 1 + 1e-9,
    { message: 'error_rates, timeout_rate, drip_rate and malformed_rate together must not exceed 1' },
  );

export const FaultsSchema = z.record(ApiNameSchema, FaultSpecSchema);

const FleetSchema = z
  .object({
    group_id: name.refine((g) => !g.includes('@@@'), { message: 'must not contain "@@@"' }),
    prefix: z.string().default('dev-'),
    size: z.number().int().min(0).max(100_000_000),
    digits: z.number().int().min(1).max(12).optional(),
    online_ratio: ratio.default(0.8),
    // Expected share of the fleet's devices that change status per minute.
    churn_per_minute: ratio.default(0),
  })
  .strict();

const MqttClientSchema = z.object({ client_id: name, online: z.boolean() }).strict();

const MqttInstanceSchema = z
  .object({
    instance_id: name,
    region: name.default('cn-hangzhou'),
    account: name.optional(),
    batch_supported: z.boolean().default(true),
    fleets: z.array(FleetSchema).default([]),
    clients: z.array(MqttClientSchema).default([]),
    // Online status from the embedded broker's real connections instead of the simulation (needs `broker:`).
    status_from_broker: z.boolean().optional(),
  })
  .strict();

const MongoClientSchema = z
  .object({ ip: name, count: z.number().int().min(0), internal_service: z.boolean().default(false) })
  .strict();

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
    internal_service_ratio: ratio.default(0),
    clients: z.array(MongoClientSchema).default([]),
    // Share of IPs whose connection count is re-drawn each minute.
    churn_per_minute: ratio.default(0),
    mutate_between_pages: z.enum(['none', 'insert_front', 'remove_front', 'append']).default('none'),
    unsupported: z.enum(['MongoVersion', 'Proxy', 'Region']).optional(),
    permission_denied: z.boolean().default(false),
  })
  .strict();

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

const ScenarioObjectSchema = z
  .object({
    seed: z.number().int().default(1),
    credentials: z.array(CredentialSchema).default([]),
    latency: LatencySchema.default({}),
    rate_limits: z.record(ApiNameSchema, z.number().positive()).default({}),
    faults: FaultsSchema.default({}),
    mqtt: z.object({ instances: z.array(MqttInstanceSchema).default([]) }).strict().default({}),
    mongodb: z.object({ instances: z.array(MongoInstanceSchema).default([]) }).strict().default({}),
    redis: z.object({ instances: z.array(RedisInstanceSchema).default([]) }).strict().default({}),
    broker: BrokerScenarioSchema.optional(),
  })
  .strict();

export const ScenarioSchema = ScenarioObjectSchema.superRefine(checkCrossReferences).superRefine(checkBrokerReferences);

export type Scenario = z.output<typeof ScenarioObjectSchema>;
export type ScenarioInput = z.input<typeof ScenarioObjectSchema>;
export type Credential = Scenario['credentials'][number];
export type AliyunCredential = z.output<typeof AliyunCredentialSchema>;
export type TencentCredential = z.output<typeof TencentCredentialSchema>;
export type FaultSpec = z.output<typeof FaultSpecSchema>;
export type Faults = z.output<typeof FaultsSchema>;
export type FaultsInput = z.input<typeof FaultsSchema>;
export type MqttInstanceConfig = Scenario['mqtt']['instances'][number];
export type FleetConfig = MqttInstanceConfig['fleets'][number];
export type MongoInstanceConfig = Scenario['mongodb']['instances'][number];
export type RedisInstanceConfig = Scenario['redis']['instances'][number];

function checkCrossReferences(sc: Scenario, ctx: z.RefinementCtx): void {
  const accounts = new Map<string, string>();
  const keys = new Set<string>();
  sc.credentials.forEach((c, i) => {
    const prior = accounts.get(c.account);
    if (prior !== undefined && prior !== c.provider) {
      ctx.addIssue({ code: 'custom', path: ['credentials', i, 'account'], message: `account "${c.account}" is used by two providers` });
    }
    accounts.set(c.account, c.provider);
    const key = c.provider === 'aliyun' ? c.access_key_id : c.secret_id;
    if (keys.has(key)) {
      ctx.addIssue({ code: 'custom', path: ['credentials', i], message: `duplicate key id "${key}"` });
    }
    keys.add(key);
  });
  const checkInstances = (
    section: 'mqtt' | 'mongodb' | 'redis',
    list: { instance_id: string; account?: string }[],
    provider: string,
  ): void => {
    const seen = new Set<string>();
    list.forEach((inst, i) => {
      if (seen.has(inst.instance_id)) {
        ctx.addIssue({ code: 'custom', path: [section, 'instances', i, 'instance_id'], message: `duplicate instance_id "${inst.instance_id}"` });
      }
      seen.add(inst.instance_id);
      if (inst.account !== undefined && accounts.get(inst.account) !== provider) {
        ctx.addIssue({ code: 'custom', path: [section, 'instances', i, 'account'], message: `no ${provider} credential has account "${inst.account}"` });
      }
    });
  };
  checkInstances('mqtt', sc.mqtt.instances, 'aliyun');
  checkInstances('mongodb', sc.mongodb.instances, 'tencentcloud');
  checkInstances('redis', sc.redis.instances, 'aliyun');
  sc.mqtt.instances.forEach((inst, i) => {
    const fleets = new Set<string>();
    inst.fleets.forEach((f, j) => {
      const k = `${f.group_id}@@@${f.prefix}`;
      if (fleets.has(k)) {
        ctx.addIssue({ code: 'custom', path: ['mqtt', 'instances', i, 'fleets', j], message: `two fleets share group_id "${f.group_id}" and prefix "${f.prefix}"` });
      }
      fleets.add(k);
      const digits = f.digits ?? Math.max(6, String(f.size).length);
      if (String(f.size).length > digits) {
        ctx.addIssue({ code: 'custom', path: ['mqtt', 'instances', i, 'fleets', j, 'digits'], message: `${digits} digits cannot number ${f.size} devices` });
      }
    });
  });
}

export class ScenarioError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`${source}: invalid scenario:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ScenarioError';
  }
}

export function formatPath(path: (string | number)[]): string {
  let out = '';
  for (const p of path) {
    out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  }
  return out === '' ? '(root)' : out;
}

export function describeZodIssues(error: z.ZodError): string[] {
  const problems: string[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push(`${formatPath([...issue.path, key])}: unknown key`);
    } else if (issue.code === 'invalid_union_discriminator') {
      problems.push(`${formatPath(issue.path)}: must be one of ${issue.options.map(String).join(', ')}`);
    } else {
      problems.push(`${formatPath(issue.path)}: ${issue.message}`);
    }
  }
  return problems;
}

/** Validates an already-parsed object (e.g. built by a test) and fills in defaults. */
export function normalizeScenario(input: unknown, sourceName = 'scenario'): Scenario {
  const result = ScenarioSchema.safeParse(input ?? {});
  if (!result.success) throw new ScenarioError(sourceName, describeZodIssues(result.error));
  return result.data;
}

export function parseScenario(yamlText: string, sourceName = 'scenario'): Scenario {
  const doc = YAML.parseDocument(yamlText, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ScenarioError(sourceName, doc.errors.map((e) => e.message));
  }
  return normalizeScenario(doc.toJS(), sourceName);
}

export function loadScenario(path: string): Scenario {
  return parseScenario(readFileSync(path, 'utf8'), path);
}

export function parseFaults(input: unknown, sourceName = 'faults'): Faults {
  const result = FaultsSchema.safeParse(input ?? {});
  if (!result.success) throw new ScenarioError(sourceName, describeZodIssues(result.error));
  return result.data;
}
