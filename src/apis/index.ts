// Every job type the exporter knows. Adding a cloud API: write its module, add it here.
import type { AnyJobType } from '../core/job-type';
import { aliyunMqttSessions } from './aliyun-mqtt-sessions/job';
import { aliyunMqttProbe } from './aliyun-mqtt-probe/job';
import { aliyunRedisSessions } from './aliyun-redis-sessions/job';
import { tencentcloudMongodbConnections } from './tencentcloud-mongodb-connections/job';

export const JOB_TYPES: readonly AnyJobType[] = [aliyunMqttSessions, aliyunMqttProbe, aliyunRedisSessions, tencentcloudMongodbConnections];
