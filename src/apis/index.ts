// Every job type the exporter knows, one line each. Adding a cloud API: its folder under src/apis/, and a line here.
import type { AnyJobType } from '../core/job-type';
import { aliyunMqttSessions } from './aliyun-mqtt-sessions';
import { aliyunMqttProbe } from './aliyun-mqtt-probe';
import { aliyunRedisSessions } from './aliyun-redis-sessions';
import { tencentcloudMongodbConnections } from './tencentcloud-mongodb-connections';

export const JOB_TYPES: readonly AnyJobType[] = [aliyunMqttSessions, aliyunMqttProbe, aliyunRedisSessions, tencentcloudMongodbConnections];
