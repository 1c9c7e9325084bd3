// Job type tencentcloud_mongodb_connections: connections per client IP of TencentDB for MongoDB instances, via
// DescribeClientConnections (2019-07-25; Limit ≤ 1,000 per page, 5 calls/s per account).
//
// Decisions (see also docs/metrics.md):
// - Region: the call's `region`, which the Tencent transport sends as X-TC-Region (one SDK client per region).
// - Walk (walk.ts): Offset steps by the number of records received, until a page shorter than Limit — whatever
//   TotalCount says, since the documentation's samples disagree (1 with 2 clients; 0; absent) — or a full page that
//   brings no new IP, or a cap of ceil(max(first TotalCount, 100,000) / Limit) + 2 pages.
// - Consistency: the walk is complete only if TotalCount never moved between pages, no IP was seen twice and the
//   walk ended at a short page. Otherwise the whole walk is repeated once; if the second walk is inconsistent too
//   it is accepted with tencentcloud_mongodb_result_complete 0 (if it fails outright, the first walk's data are used,
//   also marked incomplete). pages_fetched counts the pages of both walks. A TotalCount that disagrees with the IPs
//   listed is not a reason to walk again (no extra calls against the 5/s budget): it is reported in
//   tencentcloud_mongodb_total_count_mismatch.
// - Duplicates: an IP listed twice in one walk keeps its latest record (the later page is the fresher reading).
// - Totals: tencentcloud_mongodb_connections is the sum over the (de-duplicated) IPs reported, so the per-IP series
//   always add up to it; tencentcloud_mongodb_client_ips counts those IPs; tencentcloud_mongodb_total_count_reported is the
//   cloud's TotalCount from the last page read, as said (no series when absent).
// - Cap: the top max_client_ips IPs by connections keep their own series; the rest are folded into
//   client_ip="other", split by internal_service so the sum per internal_service value stays exact too. Both
//   "other" series are emitted whenever anything was folded (0 for a side with nothing folded), none otherwise.
// - Unsupported (MongoVersion/Proxy/RegionNotSupportQueryClient): a known state, so the instance's poll is ok with
//   client_query_supported 0, pages_fetched 0 and the folded counter; no per-IP, total or completeness series.
import type { ApiUsage, JobType } from '../../core/job-type';
import { labelNamesOfFamilies } from '../../metrics/declare';
import { CONNECTIONS_API, isFinancialRegion, mongodbEndpoint, shape, type MongoConnectionsConfig } from './config';
import { MONGODB_DOCS } from './docs';
import { MONGODB_FAMILIES } from './families';
import { MongoConnectionsJob } from './job';

export const tencentcloudMongodbConnections: JobType<MongoConnectionsConfig> = {
  type: 'tencentcloud_mongodb_connections',
  provider: 'tencentcloud',
  schema: shape,
  apiQps: { [CONNECTIONS_API]: 5 },
  families: MONGODB_FAMILIES,
  labelNames: labelNamesOfFamilies(MONGODB_FAMILIES),
  instanceIds: (cfg) => cfg.instance_ids,
  docs: MONGODB_DOCS,
  validate(cfg) {
    const problems: Array<[Array<string | number>, string]> = [];
    if (cfg.endpoint) {
      try {
        const u = new URL(cfg.endpoint);
        if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) problems.push([['endpoint'], 'must not have a path or query (the SDK always posts to "/")']);
      } catch {
        // endpointUrl already reported it.
      }
    } else if (cfg.endpoint_type === 'vpc' && isFinancialRegion(cfg.region)) {
      problems.push([['endpoint_type'], `no private endpoint is documented for the financial zone ${cfg.region}: give its endpoint explicitly`]);
    }
    return problems;
  },
  plan(cfg): ApiUsage[] {
    const n = cfg.instance_ids.length;
    return [
      {
        account: cfg.account,
        api: CONNECTIONS_API,
        endpoint: mongodbEndpoint(cfg),
        callsPerRun: n,
        basis: `${n} instance(s) × at least 1 page: floor(client IPs / ${cfg.page_size}) + 1 pages each (the walk ends at a short page), unknown until polled; this counts the minimum`,
      },
    ];
  },
  create(cfg, ctx) {
    return new MongoConnectionsJob(cfg, ctx);
  },
};

