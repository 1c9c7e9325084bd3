// What the config loader needs to know of a job type: its keys, its provider, the APIs it may rate-limit, the labels
// it owns and the instances a config names. Job types (src/apis/) implement it; the loader imports nothing above it.
import type { z } from 'zod';
import type { AccountConfig, CommonJobConfig } from './schema';

/** A problem found in a job's config: the path below the job, and the message. */
export type JobProblem = [Array<string | number>, string];

export interface JobConfigSpec<C extends CommonJobConfig = CommonJobConfig> {
  /** Value of the config's `type` key. */
  type: string;
  /** Provider the job's account must have. */
  provider: 'aliyun' | 'tencentcloud';
  /** The type's own keys (merged with the common keys, strictly). */
  schema: z.ZodRawShape;
  /** Documented per-account rate limits of the APIs this type calls (calls per second): also the names `qps:` accepts. */
  apiQps: Readonly<Record<string, number>>;
  /**
   * The product's documented ceiling on calls per second from one source IP to all its APIs (ApsaraMQ for MQTT: 300),
   * across every account; `source_ip_qps:` overrides it by product name. Job types of one product state the same one.
   */
  sourceIpCeiling?: { product: string; qps: number };
  /** Label names this type emits: static labels may not reuse them. */
  labelNames: readonly string[];
  /** The cloud instances a job of this config reports on (two jobs of one type must not share one unlabelled). */
  instanceIds(config: C): readonly string[];
  /** Checks across keys, once every key is valid; `accounts`: the valid accounts of the file, by name. */
  validate?(config: C, accounts: ReadonlyMap<string, AccountConfig>): JobProblem[];
  /**
   * --config.check only: reads what the job will read at run time (files) and says what is wrong with it, without
   * calling the cloud.
   */
  inspect?(config: C, configDir: string): { problems: JobProblem[]; notes: string[] };
}

// Type-erased form used by registries; each job type keeps its precise config type internally.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyJobConfigSpec = JobConfigSpec<any>;

/** Per API, the per-source-IP ceiling its calls count against: the job types' documented ones, overridden by `source_ip_qps`. */
export function sourceIpCeilings(types: readonly AnyJobConfigSpec[], overrides: Readonly<Record<string, number>> = {}): Record<string, { product: string; qps: number }> {
  const out: Record<string, { product: string; qps: number }> = {};
  for (const t of types) {
    if (!t.sourceIpCeiling) continue;
    const { product, qps } = t.sourceIpCeiling;
    for (const api of Object.keys(t.apiQps)) out[api] = { product, qps: overrides[product] ?? qps };
  }
  return out;
}
