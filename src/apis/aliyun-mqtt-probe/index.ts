// Job type aliyun_mqtt_probe: a SendMessage canary. Each run publishes one probe through the cloud API (billed, behind
// the account's SendMessage limiter); in end-to-end mode a long-lived MQTT subscriber confirms delivery and times it.
import type { ApiUsage, JobType } from '../../core/job-type';
import { labelNamesOfFamilies } from '../../metrics/declare';
import { SEND_API, shape, validateProbeConfig, type MqttProbeConfig } from './config';
import { API_DURATION, API_REQUEST_DURATION, DELIVERY_DURATION, ERRORS, LOST, PROBE_SUCCESS, RECEIVED, SENT, SUBSCRIBER_CONNECTED } from './families';
import { MqttProbeJob } from './job';
import { billedOn, MQTT_SOURCE_IP_CEILING, mqttEndpoint } from '../aliyun-mqtt/product';
import { PROBE_DOCS } from './docs';

const FAMILIES = [PROBE_SUCCESS, API_DURATION, API_REQUEST_DURATION, DELIVERY_DURATION, SENT, RECEIVED, LOST, ERRORS, SUBSCRIBER_CONNECTED];

export const aliyunMqttProbe: JobType<MqttProbeConfig> = {
  type: 'aliyun_mqtt_probe',
  provider: 'aliyun',
  schema: shape,
  apiQps: { [SEND_API]: 1000 },
  sourceIpCeiling: MQTT_SOURCE_IP_CEILING,
  families: FAMILIES,
  labelNames: labelNamesOfFamilies(FAMILIES),
  instanceIds: (cfg) => [cfg.instance_id],
  docs: PROBE_DOCS,
  validate: validateProbeConfig,
  plan(cfg): ApiUsage[] {
    return [{ account: cfg.account, api: SEND_API, endpoint: mqttEndpoint(cfg), callsPerRun: 1, basis: `1 probe message to ${cfg.topic} per run`, billed: billedOn(cfg) }];
  },
  create(cfg, ctx) {
    return new MqttProbeJob(cfg, ctx);
  },
};
