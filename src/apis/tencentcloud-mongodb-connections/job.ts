// One tencentcloud_mongodb_connections job: every instance walked at once behind the account's 5 calls/s limiter; a
// disturbed walk is repeated once; unsupported instances are a known state, not a failure.
import { CloudError } from '../../cloud/errors';
import type { ApiCaller } from '../../cloud/client';
import { DeclaredFamilyBuilder, singleSample } from '../../metrics/declare';
import type { MetricFamily } from '../../metrics/family';
import type { Job, JobContext, JobHandover, JobRunResult, JobStatus, RunContext, StatusFigure, TargetResult } from '../../core/job-type';
import { foldTopN, OTHER } from '../shared/top-n';
import { jsonHandover } from '../shared/json-handover';
import { CONNECTIONS_API, MONGODB_API_VERSION, mongodbEndpoint, UNSUPPORTED_CODES, type MongoConnectionsConfig } from './config';
import * as F from './families';
import { parseClientConnections, type Page } from './parse';
import { walkPages, type WalkResult } from './walk';

interface InstanceState {
  foldedTotal: number;
  unsupportedCode?: string;
  /** The last successful walk, for the status page. */
  last?: { connections: number; clientIps: number; complete: boolean };
}

/** The handover's section (cluster HA): per instance, the folded-IPs counter's base and whether it is unsupported. */
const STATE_SECTION = 'instances.v1';

export class MongoConnectionsJob implements Job {
  readonly instanceIds: string[];
  private readonly caller: ApiCaller;
  private readonly state = new Map<string, InstanceState>();
  readonly handover: JobHandover = jsonHandover(
    STATE_SECTION,
    () => [...this.state],
    (saved: Array<[string, InstanceState]>) => {
      for (const [id, st] of saved) if (this.state.has(id)) this.state.set(id, st);
    },
  );

  constructor(
    private readonly cfg: MongoConnectionsConfig,
    private readonly ctx: JobContext,
  ) {
    this.instanceIds = [...cfg.instance_ids];
    this.caller = ctx.accounts.caller(cfg.account, mongodbEndpoint(cfg), MONGODB_API_VERSION);
    for (const id of this.instanceIds) this.state.set(id, { foldedTotal: 0 });
  }

  async run(run: RunContext): Promise<JobRunResult> {
    // Instances run concurrently; the account's shared limiter paces every call of every job using the account.
    const mine = run.shard ? this.instanceIds.filter((id) => run.shard!.owns(id)) : this.instanceIds;
    const targets = await Promise.all(mine.map((id) => this.pollInstance(id, run)));
    return { targets };
  }

  status(): JobStatus {
    const instances: Record<string, StatusFigure[]> = {};
    for (const [id, st] of this.state) {
      instances[id] =
        st.unsupportedCode !== undefined
          ? [{ label: 'connections', value: `not reported: ${st.unsupportedCode}` }]
          : [
              { label: 'connections', value: st.last?.connections },
              { label: 'client IPs', value: st.last?.clientIps },
              { label: 'walk', value: st.last && (st.last.complete ? 'complete' : 'incomplete (pages changed twice)'), warn: st.last?.complete === false },
            ];
    }
    return { instances };
  }

  private async pollInstance(instanceId: string, run: RunContext): Promise<TargetResult> {
    const st = this.state.get(instanceId)!;
    const log = this.ctx.logger;
    let pages = 0;
    const fetch = async (offset: number, limit: number): Promise<Page> => {
      const page = await this.caller.call({
        api: CONNECTIONS_API,
        params: { InstanceId: instanceId, Limit: limit, Offset: offset },
        region: this.cfg.region,
        target: instanceId,
        deadline: run.deadline,
        signal: run.signal,
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
      return { instanceId, ok: false, error: err as Error };
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

  private render(instanceId: string, st: InstanceState, walk: WalkResult, pages: number, complete: boolean): MetricFamily[] {
    const where = { region: this.cfg.region, instance_id: instanceId };
    const staticLabels = this.ctx.staticLabels;
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

    const perIp = new DeclaredFamilyBuilder(F.CLIENT_CONNECTIONS, staticLabels);
    const keptByInternal = { true: 0, false: 0 };
    for (const [ip, count] of folded.kept) {
      const internal = walk.clients.get(ip)!.internal ? 'true' : 'false';
      keptByInternal[internal] += count;
      perIp.sample({ ...where, client_ip: ip, internal_service: internal }, count);
    }
    if (folded.foldedCount > 0) {
      for (const internal of ['false', 'true'] as const) {
        perIp.sample({ ...where, client_ip: OTHER, internal_service: internal }, byInternal[internal] - keptByInternal[internal]);
      }
    }
    const listed = walk.clients.size;
    st.last = { connections, clientIps: listed, complete };
    return [
      perIp.build(),
      singleSample(F.CONNECTIONS, where, connections, staticLabels),
      singleSample(F.CLIENT_IPS, where, listed, staticLabels),
      ...(walk.totalCount === undefined ? [] : [singleSample(F.TOTAL_COUNT, where, walk.totalCount, staticLabels)]),
      singleSample(F.TOTAL_COUNT_MISMATCH, where, walk.totalCount === listed ? 0 : 1, staticLabels),
      singleSample(F.CLIENT_IPS_FOLDED, where, st.foldedTotal, staticLabels),
      singleSample(F.QUERY_SUPPORTED, where, 1, staticLabels),
      singleSample(F.PAGES_FETCHED, where, pages, staticLabels),
      singleSample(F.RESULT_COMPLETE, where, complete ? 1 : 0, staticLabels),
    ];
  }

  private renderUnsupported(instanceId: string, st: InstanceState): MetricFamily[] {
    const where = { region: this.cfg.region, instance_id: instanceId };
    const staticLabels = this.ctx.staticLabels;
    return [
      singleSample(F.CLIENT_IPS_FOLDED, where, st.foldedTotal, staticLabels),
      singleSample(F.QUERY_SUPPORTED, where, 0, staticLabels),
      singleSample(F.PAGES_FETCHED, where, 0, staticLabels),
    ];
  }
}
