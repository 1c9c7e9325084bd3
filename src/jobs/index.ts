// Every job type the exporter knows. Adding a cloud API: write its module, add it here.
import type { AnyJobType } from './types';
import { aliyunMqttSessions } from './aliyun-mqtt-sessions';
import { aliyunMqttProbe } from './aliyun-mqtt-probe';
import { aliyunRedisSessions } from './aliyun-redis-sessions';
import { tencentcloudMongodbConnections } from './tencentcloud-mongodb-connections';

export const JOB_TYPES: readonly AnyJobType[] = [aliyunMqttSessions, aliyunMqttProbe, aliyunRedisSessions, tencentcloudMongodbConnections];

/** Documented per-account QPS of every API any job type calls. */
export function defaultApiQps(types: readonly AnyJobType[] = JOB_TYPES): Record<string, number> {
  return Object.assign({}, ...types.map((t) => t.apiQps));
}
