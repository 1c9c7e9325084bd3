// Job type tencentcloud_mongodb_connections: connections per client IP of TencentDB for MongoDB instances, via
// DescribeClientConnections (2019-07-25; Limit ≤ 1,000 per page, 5 calls/s per account).
//
// Decisions (see also docs/metrics.md):
// - Region: passed to the transport as the pseudo-parameter `Region`, which becomes the SDK client's region (one SDK
//   client per region inside the transport) and is never sent in the body.
// - Walk: Offset steps by the number of records received (equal to Limit on a full page), until Offset reaches the
//   latest TotalCount, an empty page arrives, or a hard cap of ceil(first TotalCount / page size) + 2 pages is hit
//   (page size = Limit, or the first page's size if the server returned fewer records than asked).
// - Consistency: the walk is complete only if TotalCount never moved, no IP was seen twice, the walk ended normally
//   and the distinct IPs equal TotalCount. Otherwise the whole walk is repeated once; if the second walk is
//   inconsistent too it is accepted with tencentcloud_mongodb_result_complete 0 (if it fails outright, the first
//   walk's data are used, also marked incomplete). pages_fetched counts the pages of both walks.
// - Duplicates: an IP listed twice in one walk keeps its latest record (the later page is the fresher reading).
// - Totals: tencentcloud_mongodb_connections is the sum over the (de-duplicated) IPs reported, so the per-IP series
//   always add up to it; tencentcloud_mongodb_client_ips is the cloud's TotalCount from the last page read (equal to
//   the distinct IPs whenever result_complete is 1).
// - Cap: the top max_client_ips IPs by connections keep their own series; the rest are folded into
//   client_ip="other", split by internal_service so the sum per internal_service value stays exact too. Both
//   "other" series are emitted whenever anything was folded (0 for a side with nothing folded), none otherwise.
// - Unsupported (MongoVersion/Proxy/RegionNotSupportQueryClient): a known state, so the instance's poll is ok with
//   client_query_supported 0, pages_fetched 0 and the folded counter; no per-IP, total or completeness series.
import { z } from 'zod';
import { CloudError } from '../../cloud/errors';
import type { ApiCaller } from '../../cloud/api-client';
import { REGION_PARAM } from '../../cloud/providers/tencent';
import type { CommonJobConfig } from '../../config/schema';
import { FamilyBuilder, renderLabels, joinLabels, type MetricFamily } from '../../metrics/family';
import { endpointUrl, instanceIdList, regionId } from '../shared/endpoint';
import { foldTopN, OTHER } from '../shared/top-n';
import type { ApiUsage, Job, JobContext, JobRunResult, JobType, RunContext, TargetResult } from '../../core/job-type';

export const MONGODB_API_VERSION = '2019-07-25';
export const CONNECTIONS_API = 'DescribeClientConnections';
export const DEFAULT_MONGODB_ENDPOINT = 'https://mongodb.tencentcloudapi.com';
export const MAX_PAGE_SIZE = 1000;
const REFRESH_NOTE = 'Refreshed on the job schedule, not at scrape time.';

/** Codes meaning "this instance cannot report its clients": a known state, not a failure. */
export const UNSUPPORTED_CODES: ReadonlySet<string> = new Set([
  'InvalidParameterValue.MongoVersionNotSupportQueryClient',
  'InvalidParameterValue.ProxyNotSupportQueryClient',
  'InvalidParameterValue.RegionNotSupportQueryClient',
]);

const shape = {
  account: z.string(),
  region: regionId,
  endpoint: endpointUrl.optional(),
  instance_ids: instanceIdList,
  /** Per-instance cap on client_ip series; the rest is folded into client_ip="other". */
  max_client_ips: z.number().int().min(0).max(100_000).default(300),
  page_size: z.number().int().min(1).max(MAX_PAGE_SIZE).default(MAX_PAGE_SIZE),
};

export type MongoConnectionsConfig = CommonJobConfig & z.infer<z.ZodObject<typeof shape>>;

export const tencentcloudMongodbConnections: JobType<MongoConnectionsConfig> = {
  type: 'tencentcloud_mongodb_connections',
  provider: 'tencentcloud',
  schema: shape,
  apiQps: { [CONNECTIONS_API]: 5 },
  labelNames: ['region', 'instance_id', 'client_ip', 'internal_service'],
  instanceIds: (cfg) => cfg.instance_ids,
  validate(cfg) {
    const problems: Array<[Array<string | number>, string]> = [];
    if (cfg.endpoint) {
      try {
        const u = new URL(cfg.endpoint);
        if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) problems.push([['endpoint'], 'must not have a path or query (the SDK always posts to "/")']);
      } catch {
        // endpointUrl already reported it.
      }
    }
    return problems;
  },
  plan(cfg): ApiUsage[] {
    const n = cfg.instance_ids.length;
    return [
      {
        account: cfg.account,
        api: CONNECTIONS_API,
        callsPerRun: n,
        basis: `${n} instance(s) × at least 1 page: ceil(client IPs / ${cfg.page_size}) pages each, unknown until polled; this counts the minimum`,
      },
    ];
  },
  create(cfg, ctx) {
    return new MongoConnectionsJob(cfg, ctx);
  },
};

export interface ClientRecord {
  ip: string;
  count: number;
  internal: boolean;
}

export interface Page {
  clients: ClientRecord[];
  totalCount: number;
}

/** Validates one DescribeClientConnections answer; a throw becomes a MalformedResponse. */
export function parseClientConnections(body: unknown): Page {
  const b = body as { Clients?: unknown; TotalCount?: unknown } | null;
  if (!b || typeof b !== 'object') throw new Error('the answer is not an object');
  const total = b.TotalCount;
  if (typeof total !== 'number' || !Number.isInteger(total) || total < 0) throw new Error('TotalCount is missing or not a non-negative integer');
  const raw = b.Clients ?? [];
  if (!Array.isArray(raw)) throw new Error('Clients is not a list');
  const clients: ClientRecord[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const c = (raw[i] ?? {}) as { IP?: unknown; Count?: unknown; InternalService?: unknown };
    if (typeof c.IP !== 'string' || c.IP === '') throw new Error(`Clients[${i}] has no IP`);
    if (typeof c.Count !== 'number' || !Number.isFinite(c.Count) || c.Count < 0) throw new Error(`Clients[${i}] (${c.IP}) has no valid Count`);
    clients[i] = { ip: c.IP, count: c.Count, internal: c.InternalService === true };
  }
  return { clients, totalCount: total };
}

export interface WalkResult {
  /** IP → latest record seen in this walk. */
  clients: Map<string, ClientRecord>;
  /** TotalCount of the last page read. */
  totalCount: number;
  pages: number;
  /** Why the walk did not see every record exactly once; empty when it did. */
  problems: string[];
  /** Harmless oddities (a short page when every record was still read exactly once). */
  notes: string[];
}

/**
 * Reads every page of one instance once. Never loops forever: at most ceil(first TotalCount / page size) + 2 pages,
 * the page size being Limit, or the first page's size when the server returns fewer records than asked.
 * `fetch(offset, limit)` performs one call. Problems (not errors) make the walk inconsistent.
 */
export async function walkPages(fetch: (offset: number, limit: number) => Promise<Page>, limit: number): Promise<WalkResult> {
  const clients = new Map<string, ClientRecord>();
  const problems: string[] = [];
  const notes: string[] = [];
  let offset = 0;
  let pages = 0;
  let firstTotal = 0;
  let total = 0;
  let maxPages = Infinity;
  let duplicates = 0;
  for (;;) {
    const page = await fetch(offset, limit);
    pages++;
    if (pages === 1) {
      firstTotal = page.totalCount;
      // A server that caps its pages below Limit shows it on the first page: plan with its page size.
      const n = page.clients.length;
      const perPage = n > 0 && n < limit && n < firstTotal ? n : limit;
      maxPages = Math.ceil(firstTotal / perPage) + 2;
    } else if (page.totalCount !== total) {
      problems.push(`TotalCount moved from ${total} to ${page.totalCount} at offset ${offset}`);
    }
    total = page.totalCount;
    for (const c of page.clients) {
      if (clients.has(c.ip)) {
        duplicates++;
        clients.delete(c.ip); // the latest record wins, in the position it was last seen
      }
      clients.set(c.ip, c);
    }
    const received = page.clients.length;
    offset += received;
    if (offset >= total) break;
    if (received === 0) {
      problems.push(`empty page at offset ${offset} before TotalCount ${total} was reached`);
      break;
    }
    if (received < limit) notes.push(`short page: ${received} of ${limit} records at offset ${offset - received} (TotalCount ${total})`);
    if (pages >= maxPages) {
      problems.push(`stopped after ${pages} pages (the cap for a first TotalCount of ${firstTotal}) at offset ${offset} of ${total}`);
      break;
    }
  }
  if (duplicates > 0) problems.push(`${duplicates} record(s) repeated an IP already seen`);
  if (clients.size !== total) problems.push(`${clients.size} distinct IPs read, but TotalCount is ${total}`);
  if (problems.length > 0) problems.push(...notes);
  return { clients, totalCount: total, pages, problems, notes };
}

interface InstanceState {
  foldedTotal: number;
  unsupportedCode?: string;
}

class MongoConnectionsJob implements Job {
  readonly instanceIds: string[];
  private readonly caller: ApiCaller;
  private readonly staticLabels: string;
  private readonly state = new Map<string, InstanceState>();

  constructor(
    private readonly cfg: MongoConnectionsConfig,
    private readonly ctx: JobContext,
  ) {
    this.instanceIds = [...cfg.instance_ids];
    this.caller = ctx.accounts.caller(cfg.account, cfg.endpoint ?? DEFAULT_MONGODB_ENDPOINT, MONGODB_API_VERSION);
    this.staticLabels = renderLabels(ctx.labels);
    for (const id of this.instanceIds) this.state.set(id, { foldedTotal: 0 });
  }

  async run(run: RunContext): Promise<JobRunResult> {
    // Instances run concurrently; the account's shared limiter paces every call of every job using the account.
    const targets = await Promise.all(this.instanceIds.map((id) => this.pollInstance(id, run)));
    return { targets };
  }

  private async pollInstance(instanceId: string, run: RunContext): Promise<TargetResult> {
    const st = this.state.get(instanceId)!;
    const log = this.ctx.logger;
    let pages = 0;
    const fetch = async (offset: number, limit: number): Promise<Page> => {
      const page = await this.caller.call(CONNECTIONS_API, { [REGION_PARAM]: this.cfg.region, InstanceId: instanceId, Limit: limit, Offset: offset }, {
        deadline: run.deadline,
        signal: run.signal,
        target: instanceId,
        parse: parseClientConnections,
      });
      pages++;
      return page;
    };
    let walk: WalkResult;
    try {
      walk = await walkPages(fetch, this.cfg.page_size);
    } catch (err) {
      if (err instanceof CloudError && UNSUPPORTED_CODES.has(err.code)) {
        if (st.unsupportedCode !== err.code) log.warn({ instance_id: instanceId, code: err.code }, 'this instance cannot report its client connections; marking it unsupported');
        st.unsupportedCode = err.code;
        return { instanceId, ok: true, families: this.renderUnsupported(instanceId, st) };
      }
      return { instanceId, ok: false, families: [], error: err as Error };
    }
    if (st.unsupportedCode !== undefined) {
      log.info({ instance_id: instanceId }, 'the instance reports its client connections again');
      st.unsupportedCode = undefined;
    }
    let complete = walk.problems.length === 0;
    if (!complete) {
      log.info({ instance_id: instanceId, problems: walk.problems.slice(0, 5) }, 'the pages changed during the walk; walking once more');
      try {
        const second = await walkPages(fetch, this.cfg.page_size);
        complete = second.problems.length === 0;
        if (!complete) log.warn({ instance_id: instanceId, problems: second.problems.slice(0, 5) }, 'the pages changed during two walks in a row; reporting the last one as incomplete');
        walk = second;
      } catch (err) {
        log.warn({ instance_id: instanceId, err }, 'the repeated walk failed; reporting the first walk as incomplete');
      }
    }
    return { instanceId, ok: true, families: this.render(instanceId, st, walk, pages, complete) };
  }

  private base(instanceId: string): string {
    return renderLabels({ region: this.cfg.region, instance_id: instanceId });
  }

  private render(instanceId: string, st: InstanceState, walk: WalkResult, pages: number, complete: boolean): MetricFamily[] {
    const base = this.base(instanceId);
    const all = joinLabels(base, this.staticLabels);
    const counts = new Map<string, number>();
    let connections = 0;
    const byInternal = { true: 0, false: 0 };
    for (const c of walk.clients.values()) {
      counts.set(c.ip, c.count);
      connections += c.count;
      byInternal[c.internal ? 'true' : 'false'] += c.count;
    }
    const folded = foldTopN(counts, this.cfg.max_client_ips);
    st.foldedTotal += folded.foldedCount;

    const perIp = new FamilyBuilder('tencentcloud_mongodb_client_connections', `TencentDB for MongoDB connections per client IP; the top max_client_ips IPs, the rest summed in client_ip="other" per internal_service. ${REFRESH_NOTE}`, 'gauge');
    const keptByInternal = { true: 0, false: 0 };
    for (const [ip, count] of folded.kept) {
      const internal = walk.clients.get(ip)!.internal ? 'true' : 'false';
      keptByInternal[internal] += count;
      perIp.sample(joinLabels(base, renderLabels({ client_ip: ip, internal_service: internal }), this.staticLabels), count);
    }
    if (folded.foldedCount > 0) {
      for (const internal of ['false', 'true'] as const) {
        perIp.sample(joinLabels(base, renderLabels({ client_ip: OTHER, internal_service: internal }), this.staticLabels), byInternal[internal] - keptByInternal[internal]);
      }
    }
    return [
      perIp.build(),
      gauge('tencentcloud_mongodb_connections', `Total connections of the TencentDB for MongoDB instance (sum over its client IPs). ${REFRESH_NOTE}`, all, connections),
      gauge('tencentcloud_mongodb_client_ips', `Distinct client IPs of the TencentDB for MongoDB instance (the API's TotalCount). ${REFRESH_NOTE}`, all, walk.totalCount),
      this.foldedFamily(all, st),
      gauge('tencentcloud_mongodb_client_query_supported', `0 if the cloud says this instance (MongoDB version, proxy or region) cannot report its clients. ${REFRESH_NOTE}`, all, 1),
      gauge('tencentcloud_mongodb_pages_fetched', `DescribeClientConnections pages read in the last poll (a repeated walk included). ${REFRESH_NOTE}`, all, pages),
      gauge('tencentcloud_mongodb_result_complete', `1 if the last walk saw every client record exactly once (the pages did not change under it). ${REFRESH_NOTE}`, all, complete ? 1 : 0),
    ];
  }

  private renderUnsupported(instanceId: string, st: InstanceState): MetricFamily[] {
    const all = joinLabels(this.base(instanceId), this.staticLabels);
    return [
      this.foldedFamily(all, st),
      gauge('tencentcloud_mongodb_client_query_supported', `0 if the cloud says this instance (MongoDB version, proxy or region) cannot report its clients. ${REFRESH_NOTE}`, all, 0),
      gauge('tencentcloud_mongodb_pages_fetched', `DescribeClientConnections pages read in the last poll (a repeated walk included). ${REFRESH_NOTE}`, all, 0),
    ];
  }

  private foldedFamily(labels: string, st: InstanceState): MetricFamily {
    return new FamilyBuilder('tencentcloud_mongodb_client_ips_folded_total', `Client IPs folded into client_ip="other", summed over polls. ${REFRESH_NOTE}`, 'counter').sample(labels, st.foldedTotal).build();
  }
}

function gauge(name: string, help: string, labels: string, value: number): MetricFamily {
  return new FamilyBuilder(name, help, 'gauge').sample(labels, value).build();
}
