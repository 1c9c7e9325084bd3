// aliyun_redis_sessions' configuration keys and its one API.
import { z } from 'zod';
import type { CommonJobConfig } from '../../config/schema';
import { durationMs } from '../../config/duration';
import { endpointType, endpointUrl, instanceIdList, type EndpointType } from '../shared/endpoint';

export const REDIS_SESSIONS_API = 'GetRedisAllSession';
export const DAS_API_VERSION = '2020-01-16';
/** DAS is called in cn-shanghai whatever the instance's region; from a VPC, through its VPC proxy domain. */
export function dasEndpoint(cfg: { endpoint?: string; endpoint_type: EndpointType }): string {
  return cfg.endpoint ?? (cfg.endpoint_type === 'vpc' ? 'https://das.vpc-proxy.aliyuncs.com' : 'https://das.cn-shanghai.aliyuncs.com');
}
/**
 * GetRedisAllSession has no documented QPS. Each call makes DAS run CLIENT LIST on every proxy and data node of the
 * instance, so it is a diagnostics call, not a lookup: 5 calls/s per account is far below what a gateway default
 * would allow, yet polls 300 instances a minute. Raise it with `accounts[].qps.GetRedisAllSession` if Alibaba
 * grants more; every job of the account shares the limit.
 */
export const DEFAULT_REDIS_SESSIONS_QPS = 5;
/** Seconds: a number of seconds, or a duration string ("5m"). */
const idleThreshold = durationMs.transform((ms) => ms / 1000);

export const shape = {
  account: z.string(),
  instance_ids: instanceIdList,
  endpoint: endpointUrl.optional(),
  endpoint_type: endpointType,
  /** Source IPs with their own series; the rest are summed into client_ip="other". */
  max_client_ips: z.number().int().min(1).max(100_000).default(200),
  /** Commands with their own series; the rest are summed into command="other". */
  max_commands: z.number().int().min(1).max(10_000).default(50),
  /** Idle thresholds (seconds or durations) for aliyun_redis_idle_sessions. */
  idle_thresholds: z.array(idleThreshold).max(32).default([60, 300, 3600]),
};

export type RedisSessionsConfig = CommonJobConfig & z.infer<z.ZodObject<typeof shape>>;

