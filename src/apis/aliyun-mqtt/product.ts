// ApsaraMQ for MQTT facts both of its job types rely on: the OpenAPI version, the endpoints, and the client-ID rules
// (`<GroupID>@@@<DeviceID>`, at most 64 characters; the Group ID starts with GID_ or GID-, 7-64 letters, digits,
// '-' and '_'), stated once.
import { z } from 'zod';
import { endpointType, endpointUrl, regionId, type EndpointType } from '../shared/endpoint';

export const MQTT_API_VERSION = '2020-04-20';

/**
 * "Outbound QPS of a single IP address. If this limit is exceeded, the IP address is blocked ... globally applied and
 * is 300 for each API operation" (ApsaraMQ for MQTT, QPS limits). Read the strict way: every OpenAPI call from this
 * process counts, whatever the API and account, so the session fallback at 500 QPS cannot get the IP blocked.
 */
export const MQTT_SOURCE_IP_CEILING = { product: 'onsmqtt', qps: 300 } as const;

/** The OpenAPI endpoint a job calls: its `endpoint`, else the region's public or VPC endpoint. */
export function mqttEndpoint(cfg: { region: string; endpoint?: string; endpoint_type: EndpointType }): string {
  return cfg.endpoint ?? (cfg.endpoint_type === 'vpc' ? `https://onsmqtt-vpc.${cfg.region}.aliyuncs.com` : `https://onsmqtt.${cfg.region}.aliyuncs.com`);
}

/** A Group ID: GID_ or GID-, then letters, digits, '-' or '_', 7-64 characters in all. */
export const GROUP_ID_PATTERN = /^GID[_-][A-Za-z0-9_-]{3,60}$/;
/** A Device ID: letters, digits and `_ . : -`. */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9_.:-]+$/;
export const MAX_CLIENT_ID_LENGTH = 64;

const SEPARATOR = '@@@';

export function clientIdOf(groupId: string, deviceId: string): string {
  return `${groupId}${SEPARATOR}${deviceId}`;
}

/** Characters left for a Device ID under `groupId` within the client ID's limit. */
export function deviceIdRoom(groupId: string): number {
  return MAX_CLIENT_ID_LENGTH - clientIdOf(groupId, '').length;
}

export type ClientIdCheck = { ok: true; groupId: string } | { ok: false; reason: string };

export function checkClientId(id: string): ClientIdCheck {
  if (id.length > MAX_CLIENT_ID_LENGTH) return { ok: false, reason: `longer than ${MAX_CLIENT_ID_LENGTH} characters` };
  const sep = id.indexOf(SEPARATOR);
  if (sep < 0) return { ok: false, reason: `missing the ${SEPARATOR} between Group ID and Device ID` };
  const groupId = id.slice(0, sep);
  const deviceId = id.slice(sep + SEPARATOR.length);
  if (!GROUP_ID_PATTERN.test(groupId)) return { ok: false, reason: `Group ID "${groupId}" must start with GID_ or GID- and be 7-64 letters, digits, - or _` };
  if (!deviceId) return { ok: false, reason: 'empty Device ID' };
  if (!DEVICE_ID_PATTERN.test(deviceId)) return { ok: false, reason: 'Device ID may contain only letters, digits and _ . : -' };
  return { ok: true, groupId };
}

/** Topics (parent topic and sub-topics) are at most 64 characters. */
export const MAX_TOPIC_LENGTH = 64;
/** A message is at most 64 KB as sent (after the Base64 encoding the documentation recommends). */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/**
 * The keys both MQTT job types have: the instance and how to reach it, and its billing. Successful session queries,
 * SendMessage and ApplyToken each count as one messaging TPS of the instance and are billed (onsmqtt 2020-04-20 API
 * reference); `purchased_tps` (the instance's specification) lets --config.check warn when a schedule would take more
 * than `max_tps_share` of it from the devices.
 */
export const mqttInstanceShape = {
  account: z.string(),
  region: regionId,
  endpoint: endpointUrl.optional(),
  endpoint_type: endpointType,
  instance_id: z.string().min(1),
  purchased_tps: z.number().int().positive().optional(),
  max_tps_share: z.number().gt(0).max(1).default(0.25),
};

/** The billing line of an MQTT job's quota plan usage. */
export function billedOn(cfg: { instance_id: string; purchased_tps?: number; max_tps_share: number }): { instance: string; purchasedTps?: number; maxTpsShare: number } {
  return { instance: cfg.instance_id, purchasedTps: cfg.purchased_tps, maxTpsShare: cfg.max_tps_share };
}
