// --config.check's quota plan: per account and API, calls per cycle, the shortest cycle the QPS limit (and the
// product's per-source-IP ceiling) allows, and the share of each schedule interval it uses; billed calls per day and
// the messaging TPS they take per instance; the per-source-IP ceilings with the demand of every job on them. Warns
// when a job cannot finish within its interval, when jobs sharing a limit exceed it, and when billed calls would take
// more than the allowed share of an instance's purchased TPS. Below, per job, its endpoint and route (proxy or not).
import type { ExporterConfig } from '../config/load';
import { documentedQps, type AnyJobType } from './job-type';
import { runDeadlineMs, scheduleIntervalMs } from '../util/schedule';
import { formatDuration } from '../config/duration';
import { accountQps, limiterOwner } from '../cloud/accounts';
import { sourceIpCeilings } from '../config/spec';
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
  /** Billed calls: per day, and the instance they are billed to with the TPS they take from it while the job runs. */
  billedPerDay?: number;
  billedInstance?: string;
  peakTps?: number;
  /** The product's per-source-IP ceiling, when it is lower than the account's QPS and so sets the pace. */
  ceiling?: { product: string; qps: number };
  endpoint: string;
  /** How the calls leave the process (cloud/proxy.ts describeRoute). */
  route: string;
}

/** A product's per-source-IP ceiling and what every job of this process asks of it. */
export interface CeilingRow {
  product: string;
  qps: number;
  apis: string[];
  /** Average calls per second of all jobs on the product's APIs. */
  averagePerSecond: number;
  jobs: string[];
}

export interface QuotaPlan {
  rows: PlanRow[];
  ceilings: CeilingRow[];
  warnings: string[];
}

/** `env`: where the proxy variables are read, as the transports will read them (default process.env). */
export function buildQuotaPlan(cfg: ExporterConfig, jobTypes: readonly AnyJobType[], env: ProxyEnv = process.env): QuotaPlan {
  const defaultQps = documentedQps(jobTypes);
  const typeByName = new Map(jobTypes.map((t) => [t.type, t]));
  const rows: PlanRow[] = [];
  const warnings: string[] = [];
  const billedUse: Array<{ job: string; instance: string; peakTps: number; purchased: number; share: number }> = [];
  const ceilings = sourceIpCeilings(jobTypes, cfg.sourceIpQps);
  for (const job of cfg.jobs) {
    const jobType = typeByName.get(job.type)!;
    const intervalMs = scheduleIntervalMs(job.schedule);
    for (const use of jobType.plan(job, cfg.dir, cfg.accounts)) {
      const account = cfg.accounts.find((a) => a.name === use.account)!;
      // What the limiters will enforce (a fractional or non-integer rate rounds as rate.ts says), not the raw number.
      const accountRate = ruleQps(rateRule(accountQps(account, use.api, defaultQps)));
      const ceiling = ceilings[use.api];
      const ceilingRate = ceiling ? ruleQps(rateRule(ceiling.qps)) : Infinity;
      const qps = Math.min(accountRate, ceilingRate);
      const shortestCycleMs = (use.callsPerRun / qps) * 1000;
      const route = proxyRoute(use.endpoint, account, env);
      if (route.via === 'unusable') warnings.push(`job ${job.name}: its calls to ${use.endpoint} cannot be sent: ${route.problem}`);
      rows.push({
        account: limiterOwner(account) === account.name ? use.account : `${use.account} (group ${limiterOwner(account)})`,
        api: use.api,
        qps,
        job: job.name,
        callsPerRun: use.callsPerRun,
        basis: use.basis,
        intervalMs,
        shortestCycleMs,
        share: shortestCycleMs / intervalMs,
        billedPerDay: use.billed ? Math.round(use.callsPerRun * (86_400_000 / intervalMs)) : undefined,
        billedInstance: use.billed?.instance,
        // The most billed calls one second of the run can hold.
        peakTps: use.billed ? Math.min(Math.ceil(use.callsPerRun), qps) : undefined,
        ceiling: ceiling && ceilingRate < accountRate ? ceiling : undefined,
        endpoint: use.endpoint,
        route: describeRoute(route),
      });
      if (use.billed?.purchasedTps !== undefined) billedUse.push({ job: job.name, instance: use.billed.instance, peakTps: Math.min(Math.ceil(use.callsPerRun), qps), purchased: use.billed.purchasedTps, share: use.billed.maxTpsShare });
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
  // Jobs of one account (or quota group) share each API's limiter: their combined demand must fit too.
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
  // Every job's calls to a product with a per-source-IP ceiling share it, whatever their accounts.
  const byProduct = new Map<string, CeilingRow>();
  for (const row of rows) {
    const c = ceilings[row.api];
    if (!c) continue;
    const entry = byProduct.get(c.product) ?? { product: c.product, qps: ruleQps(rateRule(c.qps)), apis: [], averagePerSecond: 0, jobs: [] };
    if (!entry.apis.includes(row.api)) entry.apis.push(row.api);
    if (!entry.jobs.includes(row.job)) entry.jobs.push(row.job);
    entry.averagePerSecond += row.callsPerRun / (row.intervalMs / 1000);
    byProduct.set(c.product, entry);
  }
  for (const c of byProduct.values()) {
    if (c.averagePerSecond > c.qps) warnings.push(`${c.product}: jobs ${c.jobs.join(', ')} together need ${c.averagePerSecond.toFixed(1)} calls/s on average from this process, above its ${c.qps} QPS per-source-IP ceiling (the cloud blocks an IP that goes over)`);
  }
  // Billed calls of every job on one instance take messaging TPS from its devices together.
  const byInstance = new Map<string, { peak: number; purchased: number; share: number; jobs: string[] }>();
  for (const u of billedUse) {
    const e = byInstance.get(u.instance) ?? { peak: 0, purchased: u.purchased, share: u.share, jobs: [] };
    e.peak += u.peakTps;
    e.purchased = Math.min(e.purchased, u.purchased);
    e.share = Math.min(e.share, u.share);
    e.jobs.push(u.job);
    byInstance.set(u.instance, e);
  }
  for (const [instance, e] of byInstance) {
    if (e.peak > e.share * e.purchased) {
      warnings.push(`instance ${instance}: jobs ${e.jobs.join(', ')} may send ${e.peak} billed calls in one second, above max_tps_share ${e.share} of its ${e.purchased} purchased messaging TPS (${(e.share * e.purchased).toFixed(0)}); lower accounts[].qps or raise max_tps_share if the devices can spare it`);
    }
  }
  return { rows, ceilings: [...byProduct.values()], warnings };
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
  const header = ['ACCOUNT', 'API', 'QPS', 'JOB', 'CALLS/CYCLE', 'SHORTEST CYCLE', 'INTERVAL', 'SHARE', 'BILLED/DAY', 'PEAK TPS (instance)', 'BASIS'];
  const body = plan.rows.map((r) => [
    r.account,
    r.api,
    r.ceiling ? `${formatQps(r.qps)} (per-IP)` : formatQps(r.qps),
    r.job,
    formatCalls(r.callsPerRun),
    formatSeconds(r.shortestCycleMs),
    formatDuration(r.intervalMs),
    `${(r.share * 100).toFixed(1)}%`,
    r.billedPerDay === undefined ? '-' : String(r.billedPerDay),
    r.peakTps === undefined ? '-' : `${r.peakTps} (${r.billedInstance})`,
    r.basis,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  const out = ['Quota plan:', line(header), ...body.map(line)];
  if (plan.ceilings.length) {
    out.push('', 'Per-source-IP ceilings (every call from this process, all accounts):');
    for (const c of plan.ceilings) out.push(`  ${c.product}: ${formatQps(c.qps)} QPS over ${c.apis.join(', ')}; jobs ${c.jobs.join(', ')} use ${c.averagePerSecond.toFixed(1)} calls/s on average`);
  }
  const endpoints = [...new Set(plan.rows.map((r) => `  ${r.job} (${r.account}): ${r.endpoint}, ${r.route}`))];
  if (endpoints.length) out.push('', 'Endpoints:', ...endpoints);
  if (plan.warnings.length) out.push('', ...plan.warnings.map((w) => `WARNING: ${w}`));
  return out.join('\n') + '\n';
}
