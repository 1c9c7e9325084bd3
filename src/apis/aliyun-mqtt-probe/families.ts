// What aliyun_mqtt_probe publishes, declared once.
import { declareFamily } from '../../metrics/declare';

const NOTE = 'Updated by each probe run, not at scrape time.';
const WHERE = ['region', 'instance_id', 'topic'] as const;

export const PROBE_SUCCESS = declareFamily({
  name: 'aliyun_mqtt_probe_success',
  type: 'gauge',
  help: `1 if the last probe was published (and, in end-to-end mode, received back within its timeout on a subscription that stayed connected from send to receipt), else 0. ${NOTE}`,
  labels: WHERE,
  doc: '1 if the last probe was published (and, in end-to-end mode, received in time, the subscription connected throughout)',
});
export const API_DURATION = declareFamily({ name: 'aliyun_mqtt_probe_api_duration_seconds', type: 'gauge', help: `SendMessage latency of the last probe. ${NOTE}`, labels: WHERE });
export const API_REQUEST_DURATION = declareFamily({ name: 'aliyun_mqtt_probe_api_request_duration_seconds', type: 'histogram', help: `SendMessage latency of the probes. ${NOTE}`, labels: WHERE });
export const DELIVERY_DURATION = declareFamily({
  name: 'aliyun_mqtt_probe_delivery_duration_seconds',
  type: 'histogram',
  help: `Time from sending a probe to receiving it on the MQTT subscription. ${NOTE}`,
  labels: WHERE,
  doc: 'send → receive, end-to-end mode',
});
export const SENT = declareFamily({ name: 'aliyun_mqtt_probe_sent_total', type: 'counter', help: `Probes published with SendMessage. ${NOTE}`, labels: WHERE });
export const RECEIVED = declareFamily({ name: 'aliyun_mqtt_probe_received_total', type: 'counter', help: `Probes received back on the MQTT subscription within the timeout. ${NOTE}`, labels: WHERE, doc: 'probes received back (end-to-end mode)' });
export const LOST = declareFamily({ name: 'aliyun_mqtt_probe_lost_total', type: 'counter', help: `Published probes not received within the probe's timeout. ${NOTE}`, labels: WHERE, doc: 'probes not received within `timeout` (end-to-end mode)' });
export const ERRORS = declareFamily({
  name: 'aliyun_mqtt_probe_errors_total',
  type: 'counter',
  help: `Probe errors by code: the cloud's error code, Timeout, SubscriberDisconnected, SubscriberAuthFailed, ... ${NOTE}`,
  labels: [...WHERE, 'code'],
  doc: 'errors by `code` (below)',
});
export const SUBSCRIBER_CONNECTED = declareFamily({
  name: 'aliyun_mqtt_probe_subscriber_connected',
  type: 'gauge',
  help: `1 while the probe's MQTT subscriber is connected and subscribed, as of the last run. ${NOTE}`,
  labels: WHERE,
  doc: '1 while the end-to-end subscriber holds its MQTT connection',
});
