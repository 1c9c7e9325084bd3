// tencentcloud_mongodb_connections' configuration keys, its API, and the codes that mean "this instance cannot report".
import { z } from 'zod';
import type { CommonJobConfig } from '../../config/schema';
import { endpointType, endpointUrl, instanceIdList, regionId, type EndpointType } from '../shared/endpoint';

export const MONGODB_API_VERSION = '2019-07-25';
export const CONNECTIONS_API = 'DescribeClientConnections';
/** Financial-zone regions (ap-shanghai-fsi, ap-shenzhen-fsi) are isolated: the nearest-region domain does not serve them. */
export const isFinancialRegion = (region: string): boolean => region.endsWith('-fsi');

/**
 * The endpoint a job calls: its `endpoint`; else `vpc` is Tencent's private-network domain (from CVM, TKE or any VPC
 * in Tencent Cloud, every region); `public` the nearest-region domain, or the region's own domain for a financial zone.
 * The international site's `https://mongodb.intl.tencentcloudapi.com` is given as `endpoint` (README).
 */
export function mongodbEndpoint(cfg: { region: string; endpoint?: string; endpoint_type: EndpointType }): string {
  if (cfg.endpoint) return cfg.endpoint;
  if (cfg.endpoint_type === 'vpc') return 'https://mongodb.internal.tencentcloudapi.com';
  return isFinancialRegion(cfg.region) ? `https://mongodb.${cfg.region}.tencentcloudapi.com` : 'https://mongodb.tencentcloudapi.com';
}
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
  endpoint_type: endpointType,
  instance_ids: instanceIdList,
  /** Per-instance cap on client_ip series; the rest is folded into client_ip="other". */
  max_client_ips: z.number().int().min(0).max(100_000).default(300),
  page_size: z.number().int().min(1).max(MAX_PAGE_SIZE).default(MAX_PAGE_SIZE),
};

export type MongoConnectionsConfig = CommonJobConfig & z.infer<z.ZodObject<typeof shape>>;

