// What tencentcloud_mongodb_connections publishes, declared once: `region`, `instance_id`, then the metric's own labels.
import { declareFamily, ON_SCHEDULE } from '../../metrics/declare';

const WHERE = ['region', 'instance_id'] as const;

export const CLIENT_CONNECTIONS = declareFamily({
  name: 'tencentcloud_mongodb_client_connections',
  type: 'gauge',
  help: `TencentDB for MongoDB connections per client IP; the top max_client_ips IPs, the rest summed in client_ip="other" per internal_service. ${ON_SCHEDULE}`,
  labels: [...WHERE, 'client_ip', 'internal_service'],
  doc: 'connections per client IP; the top `max_client_ips` IPs, the rest folded into `client_ip="other"` (sums stay exact)',
});
export const CONNECTIONS = declareFamily({
  name: 'tencentcloud_mongodb_connections',
  type: 'gauge',
  help: `Total connections of the TencentDB for MongoDB instance (sum over its client IPs). ${ON_SCHEDULE}`,
  labels: WHERE,
  doc: 'total connections',
});
export const CLIENT_IPS = declareFamily({
  name: 'tencentcloud_mongodb_client_ips',
  type: 'gauge',
  help: `Distinct client IPs the TencentDB for MongoDB instance listed in the last walk. ${ON_SCHEDULE}`,
  labels: WHERE,
  doc: 'distinct client IPs listed in the last walk',
});
export const TOTAL_COUNT = declareFamily({
  name: 'tencentcloud_mongodb_total_count_reported',
  type: 'gauge',
  help: `TotalCount of the last DescribeClientConnections page read, as the cloud said it (absent when it said none). ${ON_SCHEDULE}`,
  labels: WHERE,
  doc: "the cloud's `TotalCount` on the last page read; no series when the answer had none",
});
export const TOTAL_COUNT_MISMATCH = declareFamily({
  name: 'tencentcloud_mongodb_total_count_mismatch',
  type: 'gauge',
  help: `1 if the last walk's TotalCount was absent or differed from the client IPs listed, 0 if they agreed. ${ON_SCHEDULE}`,
  labels: WHERE,
  doc: '1 if `TotalCount` was absent or differed from `tencentcloud_mongodb_client_ips`, else 0',
});
export const CLIENT_IPS_FOLDED = declareFamily({
  name: 'tencentcloud_mongodb_client_ips_folded_total',
  type: 'counter',
  help: `Client IPs folded into client_ip="other", summed over polls. ${ON_SCHEDULE}`,
  labels: WHERE,
  doc: 'client IPs folded into `other`, summed over polls',
});
export const QUERY_SUPPORTED = declareFamily({
  name: 'tencentcloud_mongodb_client_query_supported',
  type: 'gauge',
  help: `0 if the cloud says this instance (MongoDB version, proxy or region) cannot report its clients. ${ON_SCHEDULE}`,
  labels: WHERE,
  doc: '0 if the cloud says this instance (version, proxy or region) cannot report clients',
});
export const PAGES_FETCHED = declareFamily({
  name: 'tencentcloud_mongodb_pages_fetched',
  type: 'gauge',
  help: `DescribeClientConnections pages read in the last poll (a repeated walk included). ${ON_SCHEDULE}`,
  labels: WHERE,
  doc: 'pages read in the last poll',
});
export const RESULT_COMPLETE = declareFamily({
  name: 'tencentcloud_mongodb_result_complete',
  type: 'gauge',
  help: `1 if the last walk saw every client record exactly once (the pages did not change under it). ${ON_SCHEDULE}`,
  labels: WHERE,
  doc: '1 if the last walk saw every record exactly once',
});

export const MONGODB_FAMILIES = [CLIENT_CONNECTIONS, CONNECTIONS, CLIENT_IPS, TOTAL_COUNT, TOTAL_COUNT_MISMATCH, CLIENT_IPS_FOLDED, QUERY_SUPPORTED, PAGES_FETCHED, RESULT_COMPLETE];
