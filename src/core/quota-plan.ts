// --config.check's quota plan: per account and API, calls per cycle, the shortest cycle the QPS limit allows,
// and the share of each schedule interval it uses. Warns when a job cannot finish within its interval. Below the
// table, per job, the endpoint it calls and how the calls get there (directly or through which proxy).
import type { ExporterConfig } from '../config/load';
import { documentedQps, type AnyJobType } from './job-type';
import { runDeadlineMs, scheduleIntervalMs } from '../util/schedule';
import { formatDuration } from '../config/duration';
import { accountQps } from '../cloud/accounts';
import { rateRule, ruleQps } from '../cloud/rate';
import { describeRoute, proxyRoute, type ProxyEnv } from '../cloud/proxy';

export interface PlanRow {
  account: string;
  api: string;
  qps: number;
  job: string;
  callsPerRun: number;
  basis: string;
  intervalMs: number;
  shortestCycleMs: number;
  share: number;
  messagesPerDay?: number;
  endpoint: string;
  /** How the calls leave the process (cloud/proxy.ts describeRoute). */
  route: string;
}

export interface QuotaPlan {
  rows: PlanRow[];
  warnings: string[];
}

/** `env`: where the proxy variables are read, as the transports will read them (default process.env). */
export function buildQuotaPlan(cfg: ExporterConfig, jobTypes: readonly AnyJobType[], env: ProxyEnv = process.env): QuotaPlan {
  const defaultQps = documentedQps(jobTypes);
  const typeByName = new Map(jobTypes.map((t) => [t.type, t]));
  const rows: PlanRow[] = [];
  const warnings: string[] = [];
  for (const job of cfg.jobs) {
    const jobType = typeByName.get(job.type)!;
    const intervalMs = scheduleIntervalMs(job.schedule);
    for (const use of jobType.plan(job, cfg.dir, cfg.accounts)) {
      const account = cfg.accounts.find((a) => a.name === use.account)!;
      // What the limiter will enforce (a fractional or non-integer rate rounds as rate.ts says), not the raw number.
      const qps = ruleQps(rateRule(accountQps(account, use.api, defaultQps)));
      const shortestCycleMs = (use.callsPerRun / qps) * 1000;
      const route = proxyRoute(use.endpoint, account, env);
      if (route.via === 'unusable') warnings.push(`job ${job.name}: its calls to ${use.endpoint} cannot be sent: ${route.problem}`);
      rows.push({
        account: use.account,
        api: use.api,
        qps,
        job: job.name,
        callsPerRun: use.callsPerRun,
        basis: use.basis,
        intervalMs,
        shortestCycleMs,
        share: shortestCycleMs / intervalMs,
        messagesPerDay: use.billed ? Math.round(use.callsPerRun * (86_400_000 / intervalMs)) : undefined,
        endpoint: use.endpoint,
        route: describeRoute(route),
      });
    }
  }
  for (const account of cfg.accounts) {
    for (const [api, qps] of Object.entries(account.qps ?? {})) {
      const documented = defaultQps[api];
      if (documented !== undefined && qps > documented) {
        warnings.push(`account ${account.name}: qps.${api} is ${qps}, above the documented limit of ${documented}: the cloud will throttle the excess unless your quota was raised`);
      }
    }
  }
  for (const row of rows) {
    const deadline = runDeadlineMs(cfg.jobs.find((j) => j.name === row.job)!, row.intervalMs);
    if (row.shortestCycleMs > deadline) {
      warnings.push(`job ${row.job}: ${row.callsPerRun} ${row.api} calls need at least ${formatSeconds(row.shortestCycleMs)} at ${row.qps} QPS, longer than its ${formatDuration(deadline)} deadline: it cannot finish; slow the schedule or raise accounts[].qps.${row.api} if your quota allows`);
    }
  }
  // Jobs of one account share each API's limiter: their combined demand must fit too.
  const demand = new Map<string, { qps: number; perSecond: number; jobs: string[] }>();
  for (const row of rows) {
    const key = `${row.account}/${row.api}`;
    const d = demand.get(key) ?? { qps: row.qps, perSecond: 0, jobs: [] };
    d.perSecond += row.callsPerRun / (row.intervalMs / 1000);
    d.jobs.push(row.job);
    demand.set(key, d);
  }
  for (const [key, d] of demand) {
    if (d.jobs.length > 1 && d.perSecond > d.qps) {
      warnings.push(`${key}: jobs ${d.jobs.join(', ')} together need ${d.perSecond.toFixed(1)} calls/s on average, above the ${d.qps} QPS limit they share`);
    }
  }
  return { rows, warnings };
}

function formatQps(qps: number): string {
  return Number.isInteger(qps) ? String(qps) : qps.toFixed(2);
}

function formatCalls(calls: number): string {
  return Number.isInteger(calls) ? String(calls) : calls.toPrecision(3);
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
}

export function formatQuotaPlan(plan: QuotaPlan): string {
  const header = ['ACCOUNT', 'API', 'QPS', 'JOB', 'CALLS/CYCLE', 'SHORTEST CYCLE', 'INTERVAL', 'SHARE', 'MESSAGES/DAY (billed)', 'BASIS'];
  const body = plan.rows.map((r) => [
    r.account,
    r.api,
    formatQps(r.qps),
    r.job,
    formatCalls(r.callsPerRun),
    formatSeconds(r.shortestCycleMs),
    formatDuration(r.intervalMs),
    `${(r.share * 100).toFixed(1)}%`,
    r.messagesPerDay === undefined ? '-' : String(r.messagesPerDay),
    r.basis,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  const out = ['Quota plan:', line(header), ...body.map(line)];
  const endpoints = [...new Set(plan.rows.map((r) => `  ${r.job} (${r.account}): ${r.endpoint}, ${r.route}`))];
  if (endpoints.length) out.push('', 'Endpoints:', ...endpoints);
  if (plan.warnings.length) out.push('', ...plan.warnings.map((w) => `WARNING: ${w}`));
  return out.join('\n') + '\n';
}
