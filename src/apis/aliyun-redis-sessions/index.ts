// Job type aliyun_redis_sessions: the current sessions of ApsaraDB for Redis instances via DAS GetRedisAllSession
// (das 2020-01-16, called in cn-shanghai whatever the instance's region), exported as bounded aggregates.
import type { ApiUsage, JobType } from '../../core/job-type';
import { labelNamesOfFamilies } from '../../metrics/declare';
import { dasEndpoint, DEFAULT_REDIS_SESSIONS_QPS, REDIS_SESSIONS_API, shape, type RedisSessionsConfig } from './config';
import { REDIS_FAMILIES } from './families';
import { RedisSessionsJob } from './job';

export const aliyunRedisSessions: JobType<RedisSessionsConfig> = {
  type: 'aliyun_redis_sessions',
  provider: 'aliyun',
  schema: shape,
  apiQps: { [REDIS_SESSIONS_API]: DEFAULT_REDIS_SESSIONS_QPS },
  families: REDIS_FAMILIES,
  labelNames: labelNamesOfFamilies(REDIS_FAMILIES),
  instanceIds: (cfg) => cfg.instance_ids,
  docs: { title: 'ApsaraDB for Redis — sessions via DAS' },
  plan(cfg): ApiUsage[] {
    const n = cfg.instance_ids.length;
    return [{ account: cfg.account, api: REDIS_SESSIONS_API, endpoint: dasEndpoint(cfg), callsPerRun: n, basis: `${n} instance${n === 1 ? '' : 's'}, one call each` }];
  },
  create(cfg, ctx) {
    return new RedisSessionsJob(cfg, ctx);
  },
};
