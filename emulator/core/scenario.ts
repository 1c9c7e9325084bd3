// The emulator's scenario file: a strict YAML schema of its core keys (seed, credentials, latency, rate limits, faults)
// composed with the keys each emulated product owns (apis/<product>/). API names, default QPS and the scenario's
// product keys all come from the products (emulator/products.ts), never from a list here.
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import type { EmulatedProduct } from './api';

const ratio = z.number().min(0).max(1);
const nonNegativeInt = z.number().int().min(0);
export const name = z.string().min(1);

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

function faultSpecSchema() {
  return z
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
    .refine((f) => Object.values(f.error_rates).reduce((a, b) => a + b, 0) + f.timeout_rate + f.drip_rate + f.malformed_rate <= 1 + 1e-9, {
      message: 'error_rates, timeout_rate, drip_rate and malformed_rate together must not exceed 1',
    });
}

export type AliyunCredential = z.output<typeof AliyunCredentialSchema>;
export type TencentCredential = z.output<typeof TencentCredentialSchema>;
export type Credential = z.output<typeof CredentialSchema>;
export type FaultSpec = z.output<ReturnType<typeof faultSpecSchema>>;
export type Faults = Record<string, FaultSpec>;

/** The core keys every scenario has; each product's own keys are in the record part (typed by the product). */
export interface Scenario extends Record<string, unknown> {
  seed: number;
  credentials: Credential[];
  latency: { min_ms: number; max_ms: number; per_api: Record<string, { min_ms: number; max_ms: number }> };
  rate_limits: Record<string, number>;
  /** Per product (truth key): calls per second from one source IP to all its APIs, overriding the product's ceiling. */
  source_ip_limits: Record<string, number>;
  /** How long an IP that went over a product's ceiling stays blocked. */
  source_ip_block_seconds: number;
  faults: Faults;
}

/** Credentials by provider, as gateways and products use them. */
export interface Credentials {
  aliyun: AliyunCredential[];
  tencentcloud: TencentCredential[];
}

export function credentialsOf(sc: Scenario): Credentials {
  return {
    aliyun: sc.credentials.filter((c): c is AliyunCredential => c.provider === 'aliyun'),
    tencentcloud: sc.credentials.filter((c): c is TencentCredential => c.provider === 'tencentcloud'),
  };
}

/** Scenario keys of a part of the emulator that is not a product (the identity endpoints), with their cross-checks. */
export type ScenarioSection = Pick<EmulatedProduct, 'scenario' | 'check'>;

/** The scenario schema for these products and sections: core keys and every product's and section's keys, strictly. */
export function scenarioSchema(products: readonly EmulatedProduct[], sections: readonly ScenarioSection[] = []) {
  const apiNames = products.flatMap((p) => p.apis.map((a) => a.name));
  const apiName = z.string().refine((n) => apiNames.includes(n), { message: `not an emulated API (one of: ${apiNames.join(', ')})` });
  const productKeys: z.ZodRawShape = Object.assign({}, ...[...products, ...sections].map((p) => p.scenario));
  const object = z
    .object({
      seed: z.number().int().default(1),
      credentials: z.array(CredentialSchema).default([]),
      latency: z
        .object({ min_ms: nonNegativeInt.default(0), max_ms: nonNegativeInt.default(0), per_api: z.record(apiName, RangeMsSchema).default({}) })
        .strict()
        .refine((r) => r.min_ms <= r.max_ms, { message: 'min_ms must not exceed max_ms' })
        .default({}),
      rate_limits: z.record(apiName, z.number().positive()).default({}),
      source_ip_limits: z
        .record(
          z.string().refine((k) => products.some((p) => p.truthKey === k && p.sourceIpQps !== undefined), {
            message: `not a product with a per-source-IP ceiling (one of: ${products.filter((p) => p.sourceIpQps !== undefined).map((p) => p.truthKey).join(', ')})`,
          }),
          z.number().positive(),
        )
        .default({}),
      source_ip_block_seconds: z.number().positive().default(60),
      faults: faultsSchema(apiNames).default({}),
      ...productKeys,
    })
    .strict();
  return object.superRefine((sc, ctx) => {
    checkCredentials(sc as Scenario, ctx);
    for (const p of [...products, ...sections]) p.check?.(sc as Scenario, ctx);
  });
}

export function faultsSchema(apiNames: readonly string[]) {
  return z.record(
    z.string().refine((n) => apiNames.includes(n), { message: `not an emulated API (one of: ${apiNames.join(', ')})` }),
    faultSpecSchema(),
  );
}

function checkCredentials(sc: Scenario, ctx: z.RefinementCtx): void {
  const providers = new Map<string, string>();
  const keys = new Set<string>();
  sc.credentials.forEach((c, i) => {
    const prior = providers.get(c.account);
    if (prior !== undefined && prior !== c.provider) {
      ctx.addIssue({ code: 'custom', path: ['credentials', i, 'account'], message: `account "${c.account}" is used by two providers` });
    }
    providers.set(c.account, c.provider);
    const key = c.provider === 'aliyun' ? c.access_key_id : c.secret_id;
    if (keys.has(key)) ctx.addIssue({ code: 'custom', path: ['credentials', i], message: `duplicate key id "${key}"` });
    keys.add(key);
  });
}

/** The checks every product's instance list needs: unique IDs, and an `account` that exists with the product's provider. */
export function checkInstances(sc: Scenario, section: string, list: ReadonlyArray<{ instance_id: string; account?: string }>, provider: string, ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  list.forEach((inst, i) => {
    if (seen.has(inst.instance_id)) ctx.addIssue({ code: 'custom', path: [section, 'instances', i, 'instance_id'], message: `duplicate instance_id "${inst.instance_id}"` });
    seen.add(inst.instance_id);
    if (inst.account !== undefined && !sc.credentials.some((c) => c.account === inst.account && c.provider === provider)) {
      ctx.addIssue({ code: 'custom', path: [section, 'instances', i, 'account'], message: `no ${provider} credential has account "${inst.account}"` });
    }
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

function formatPath(path: (string | number)[]): string {
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

/** Validates an already-parsed object (e.g. built by a test) against `schema` and fills in defaults. */
export function validateScenario(schema: ReturnType<typeof scenarioSchema>, input: unknown, sourceName: string): Scenario {
  const result = schema.safeParse(input ?? {});
  if (!result.success) throw new ScenarioError(sourceName, describeZodIssues(result.error));
  return result.data as Scenario;
}

export function parseScenarioText(schema: ReturnType<typeof scenarioSchema>, yamlText: string, sourceName: string): Scenario {
  const doc = YAML.parseDocument(yamlText, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) throw new ScenarioError(sourceName, doc.errors.map((e) => e.message));
  return validateScenario(schema, doc.toJS(), sourceName);
}

export function readScenarioFile(schema: ReturnType<typeof scenarioSchema>, path: string): Scenario {
  return parseScenarioText(schema, readFileSync(path, 'utf8'), path);
}
