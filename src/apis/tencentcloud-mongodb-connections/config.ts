// tencentcloud_mongodb_connections' configuration keys, its API, and the codes that mean "this instance cannot report".
import { z } from 'zod';
import type { CommonJobConfig } from '../../config/schema';
import { endpointUrl, instanceIdList, regionId } from '../shared/endpoint';

export const MONGODB_API_VERSION = '2019-07-25';
export const CONNECTIONS_API = 'DescribeClientConnections';
export const DEFAULT_MONGODB_ENDPOINT = 'https://mongodb.tencentcloudapi.com';
const MAX_PAGE_SIZE = 1000;

/** Codes meaning "this instance cannot report its clients": a known state, not a failure. */
export const UNSUPPORTED_CODES: ReadonlySet<string> = new Set([
  'InvalidParameterValue.MongoVersionNotSupportQueryClient',
  'InvalidParameterValue.ProxyNotSupportQueryClient',
  'InvalidParameterValue.RegionNotSupportQueryClient',
]);

export const shape = {
  account: z.string(),
  region: regionId,
  endpoint: endpointUrl.optional(),
  instance_ids: instanceIdList,
  /** Per-instance cap on client_ip series; the rest is folded into client_ip="other". */
  max_client_ips: z.number().int().min(0).max(100_000).default(300),
  page_size: z.number().int().min(1).max(MAX_PAGE_SIZE).default(MAX_PAGE_SIZE),
};

export type MongoConnectionsConfig = CommonJobConfig & z.infer<z.ZodObject<typeof shape>>;

