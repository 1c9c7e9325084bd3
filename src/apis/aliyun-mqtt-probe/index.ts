// Job type aliyun_mqtt_probe: a SendMessage canary. Each run publishes one probe through the cloud API (billed, behind
// the account's SendMessage limiter); in end-to-end mode a long-lived MQTT subscriber confirms delivery and times it,
// signed in with an AccessKey (Signature mode) or with a token from ApplyToken (billed too) kept fresh.
import type { ApiUsage, JobType } from '../../core/job-type';
import { labelNamesOfFamilies } from '../../metrics/declare';
import { APPLY_TOKEN_API, SEND_API, shape, subscriberAuth, tokenTtlMs, validateProbeConfig, type MqttProbeConfig } from './config';
import { formatDuration } from '../../config/duration';
import { refreshMarginMs } from '../../cloud/credentials/refresh';
import { scheduleIntervalMs } from '../../util/schedule';
import { API_DURATION, API_REQUEST_DURATION, DELIVERY_DURATION, ERRORS, LOST, PROBE_SUCCESS, RECEIVED, SENT, SUBSCRIBER_CONNECTED } from './families';
import { MqttProbeJob } from './job';
import { billedOn, MQTT_SOURCE_IP_CEILING, mqttEndpoint } from '../aliyun-mqtt/product';
import { PROBE_DOCS } from './docs';

const FAMILIES = [PROBE_SUCCESS, API_DURATION, API_REQUEST_DURATION, DELIVERY_DURATION, SENT, RECEIVED, LOST, ERRORS, SUBSCRIBER_CONNECTED];

export const aliyunMqttProbe: JobType<MqttProbeConfig> = {
  type: 'aliyun_mqtt_probe',
  provider: 'aliyun',
  schema: shape,
  apiQps: { [SEND_API]: 1000, [APPLY_TOKEN_API]: 100 },
  sourceIpCeiling: MQTT_SOURCE_IP_CEILING,
  families: FAMILIES,
  labelNames: labelNamesOfFamilies(FAMILIES),
  instanceIds: (cfg) => [cfg.instance_id],
  docs: PROBE_DOCS,
  validate: validateProbeConfig,
  plan(cfg, _configDir, accounts): ApiUsage[] {
    const endpoint = mqttEndpoint(cfg);
    const usage: ApiUsage[] = [{ account: cfg.account, api: SEND_API, endpoint, callsPerRun: 1, basis: `1 probe message to ${cfg.topic} per run`, billed: billedOn(cfg) }];
    if (cfg.subscribe && subscriberAuth(cfg.subscribe, accounts.find((a) => a.name === cfg.account)) === 'token') {
      // One token per period, whatever the schedule: re-applied with a third of its life left, as credentials are.
      const ttl = tokenTtlMs(cfg.subscribe);
      const margin = refreshMarginMs(ttl);
      const seconds = (ms: number) => formatDuration(Math.round(ms / 1000) * 1000);
      const basis = `1 token for ${cfg.topic} every ${seconds(ttl - margin)} (token_ttl ${seconds(ttl)}, renewed ${seconds(margin)} before expiry), and 1 after each refused sign-in`;
      usage.push({ account: cfg.account, api: APPLY_TOKEN_API, endpoint, callsPerRun: scheduleIntervalMs(cfg.schedule) / (ttl - margin), basis, billed: billedOn(cfg) });
    }
    return usage;
  },
  create(cfg, ctx) {
    return new MqttProbeJob(cfg, ctx);
  },
};
