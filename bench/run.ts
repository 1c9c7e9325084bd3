// `npm run bench`: the benchmark suite (docs/performance.md). Starts the cloud emulator and the exporter as separate processes,
// prints a table and writes bench/results/latest.json, each figure with the configuration that produced it.
// BENCH_QUICK=1: a ~7-minute subset. BENCH_FULL=1: adds the 1M-device polls at the documented 100 QPS.
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clusterLimiterCases, type ClusterLimiterFigure } from './cluster-limiter';
import { clusterPollCase, failoverCase, publishCase, type ClusterPollFigure, type FailoverFigure, type PublishFigure } from './cluster';
import { limiterCeiling, type LimiterFigure } from './limiter';
import { FULL, QUICK, ROOT, log, round } from './lib';
import { pollCase, type PollCase, type PollFigure } from './poll';
import { scrapeCase, type ScrapeFigure } from './scrape';
import { memoryCase, type MemoryFigure } from './memory';
import { fleetCase, type FleetFigure } from './fleet';

const LATENCY = { min_ms: 20, max_ms: 200 };

function pollCases(): PollCase[] {
  const cases: PollCase[] = [];
  const add = (devices: number, qps: number) => {
    // The default margin (500 ms / QPS, 20-100 ms: 20 ms at these rates) is what users run.
    cases.push({ devices, qps, latency: LATENCY });
  };
  add(10_000, 100);
  if (QUICK) return cases;
  add(100_000, 100);
  // 1M at the documented 100 QPS takes 1,000 s a cycle: only in the full run; by default at a raised 1,000 QPS.
  if (FULL) add(1_000_000, 100);
  add(1_000_000, 1000);
  return cases;
}

function table(headers: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

function machine() {
  const sh = (cmd: string) => {
    try {
      return execSync(cmd, { encoding: 'utf8' }).trim();
    } catch {
      return 'n/a';
    }
  };
  return {
    nproc: sh('nproc'),
    cpu: os.cpus()[0]?.model ?? 'n/a',
    memory_gb: round(os.totalmem() / 2 ** 30, 1),
    free_g: sh('free -g'),
    loadavg_at_start: os.loadavg().map((v) => round(v, 2)),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

/** BENCH_ONLY=poll,limiter,cluster,replicas,scrape,memory,fleet runs a subset and merges it into the existing latest.json. */
const ONLY = new Set((process.env.BENCH_ONLY ?? 'poll,limiter,cluster,replicas,scrape,memory,fleet').split(',').map((s) => s.trim()));

async function main(): Promise<void> {
  const mode = QUICK ? 'quick' : FULL ? 'full' : 'default';
  const started = Date.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cse-bench-'));
  log(`mode ${mode}; temp files in ${tmp}`);
  const results: {
    mode: string;
    command: string;
    started_at: string;
    machine: ReturnType<typeof machine>;
    poll: PollFigure[];
    limiter: LimiterFigure[];
    cluster_limiter: ClusterLimiterFigure[];
    cluster_poll: ClusterPollFigure[];
    cluster_publish: PublishFigure[];
    cluster_failover: FailoverFigure[];
    scrape: ScrapeFigure[];
    scrape_ratio: Array<{ series: number; gzip: boolean; p50_ratio_promclient_over_ours: number; p99_ratio_promclient_over_ours: number; same_family_bytes: boolean | null }>;
    memory: MemoryFigure[];
    fleet: FleetFigure[];
    duration_s?: number;
    loadavg_at_end?: number[];
  } = {
    mode,
    command: QUICK ? 'BENCH_QUICK=1 npm run bench' : FULL ? 'BENCH_FULL=1 npm run bench' : 'npm run bench',
    started_at: new Date(started).toISOString(),
    machine: machine(),
    poll: [],
    limiter: [],
    cluster_limiter: [],
    cluster_poll: [],
    cluster_publish: [],
    cluster_failover: [],
    scrape: [],
    scrape_ratio: [],
    memory: [],
    fleet: [],
  };

  // 2. Limiter ceiling (in-process, first: nothing else of ours is running).
  const outDir = path.join(ROOT, 'bench', 'results');
  const previous = process.env.BENCH_ONLY && fs.existsSync(path.join(outDir, 'latest.json')) ? (JSON.parse(fs.readFileSync(path.join(outDir, 'latest.json'), 'utf8')) as Partial<typeof results>) : {};
  if (ONLY.has('limiter')) results.limiter = await limiterCeiling([100, 500, 1000], QUICK ? 2 : 3);
  else results.limiter = previous.limiter ?? [];

  // 6. Limiters shared by several processes through Redis (Debian's redis-server on a free port).
  if (ONLY.has('cluster')) results.cluster_limiter = await clusterLimiterCases(QUICK ? 3 : 5);
  else results.cluster_limiter = previous.cluster_limiter ?? [];

  // 7-9. Replicas as a cluster: shared quota, the published run at 1M devices, failover.
  if (ONLY.has('replicas')) {
    const devices = QUICK ? 20_000 : 100_000;
    for (const n of [1, 2, 3]) results.cluster_poll.push(await clusterPollCase(n, devices, 100, tmp));
    results.cluster_publish.push(await publishCase(1_000_000, QUICK ? 3 : 5));
    // The default lease (15 s) is what users run; the quick run uses 5 s.
    results.cluster_failover.push(await failoverCase(tmp, QUICK ? 5 : 15));
  } else {
    results.cluster_poll = previous.cluster_poll ?? [];
    results.cluster_publish = previous.cluster_publish ?? [];
    results.cluster_failover = previous.cluster_failover ?? [];
  }

  // 4 + 5. Scrapes, ours and prom-client side by side.
  const sizes: Array<[number, number]> = QUICK ? [[10_000, 15], [100_000, 5]] : [[10_000, 30], [100_000, 15], [1_000_000, 5]];
  if (!ONLY.has('scrape')) {
    results.scrape = previous.scrape ?? [];
    results.scrape_ratio = previous.scrape_ratio ?? [];
  }
  for (const [series, scrapes] of ONLY.has('scrape') ? sizes : []) {
    for (const impl of ['ours', 'promclient'] as const) {
      try {
        results.scrape.push(...(await scrapeCase(impl, series, impl === 'promclient' && series >= 1_000_000 ? 2 : scrapes, tmp)));
      } catch (err) {
        log(`scrape ${impl} ${series} failed: ${(err as Error).message}`);
      }
    }
    for (const gzip of [false, true]) {
      const o = results.scrape.find((f) => f.impl === 'ours' && f.config.series === series && f.config.gzip === gzip);
      const p = results.scrape.find((f) => f.impl === 'promclient' && f.config.series === series && f.config.gzip === gzip);
      if (o && p)
        results.scrape_ratio.push({
          series,
          gzip,
          p50_ratio_promclient_over_ours: round(p.p50_ms / o.p50_ms, 2),
          p99_ratio_promclient_over_ours: round(p.p99_ms / o.p99_ms, 2),
          same_family_bytes: gzip ? null : o.family_sha256 === p.family_sha256,
        });
    }
  }

  // Memory over repeated polls with device churn and inventory changes.
  if (ONLY.has('memory')) results.memory.push(await memoryCase(50_000, QUICK ? 9 : 15, tmp));
  else results.memory = previous.memory ?? [];

  // 6. The MQTT job's per-device history: memory, per-poll work, state file.
  if (ONLY.has('fleet')) for (const n of QUICK ? [100_000] : [100_000, 1_000_000]) results.fleet.push(await fleetCase(n, tmp));
  else results.fleet = previous.fleet ?? [];

  // 1 + 3. Poll cycles against the emulator.
  if (ONLY.has('poll')) for (const c of pollCases()) results.poll.push(await pollCase(c, tmp));
  else results.poll = previous.poll ?? [];
  if (process.env.BENCH_ONLY) (results as { partial_rerun?: string }).partial_rerun = `${process.env.BENCH_ONLY} re-run at ${results.started_at}; other sections from ${previous.started_at ?? 'n/a'}`;

  results.duration_s = round((Date.now() - started) / 1000, 0);
  results.loadavg_at_end = os.loadavg().map((v) => round(v, 2));
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
  fs.rmSync(tmp, { recursive: true, force: true });

  const out: string[] = [];
  out.push(`\ncloud-session-exporter benchmarks (${mode}; ${results.machine.nproc} CPUs, ${results.machine.memory_gb} GB, node ${results.machine.node}; load ${results.machine.loadavg_at_start.join(' ')} -> ${results.loadavg_at_end.join(' ')}; ${results.duration_s} s)\n`);
  out.push('1+3. Poll cycle (emulator latency 20-200 ms, batches of 10; cold = start-up run, steady = a later run with the limiter warm)');
  out.push(
    table(
      ['devices', 'QPS', 'margin', 'bound s', 'steady cycle s', 'steady efficiency', 'calls', 'throttled', 'busiest 1s', 'busiest incl. throttled', 'cold cycle s', 'cold efficiency', 'cold throttled', 'CPU µs/device', 'RSS MB', 'error'],
      results.poll.map((p) => [p.config.devices, p.config.qps, p.config.marginMs === undefined ? 'default' : `${p.config.marginMs} ms`, p.quota_bound_s, p.cycle_s, p.efficiency, p.calls, p.throttled, p.busiest_window, p.busiest_window_with_throttled, p.cold?.cycle_s, p.cold?.efficiency, p.cold?.throttled, p.exporter_cpu_us_per_device, p.exporter_rss_mb, p.error ?? (p.job_success === 1 ? '' : 'job failed')]),
    ),
  );
  out.push('\n2. Limiter ceiling (no-op tasks, in-process)');
  out.push(table(['limiter', 'config', 'rate', 'sustained/s', 'ratio', 'busiest 1s', 'CPU µs/call'], results.limiter.map((l) => [l.limiter, l.config, l.rate, l.sustained_rate, l.ratio, l.busiest_window, l.cpu_us_per_call])));
  out.push('\n6. Shared limiters through Redis (separate processes; judged by arrival times at a local server, target: no 1 s window over the rate)');
  out.push(
    table(
      ['limiter', 'config', 'processes x loops', 'rate', 'busiest 1s', 'throughput/s', 'ratio', 'grant p50 ms', 'grant p99 ms', 'arrival lag p99/max ms', 'late > margin', 'round trips/call', 'error'],
      results.cluster_limiter.map((c) => [c.limiter, c.config, `${c.processes} x ${c.loops_per_process}`, c.rate, c.busiest_window, c.throughput, c.ratio, c.grant_p50_ms, c.grant_p99_ms, `${c.arrival_lag_p99_ms}/${c.arrival_lag_max_ms}`, c.arrivals_late_over_margin, c.round_trips_per_call, c.error ?? '']),
    ),
  );
  out.push('\n7. Replicas sharing one quota (static shards of one fleet, one Redis; emulator latency 20-200 ms; efficiency = quota bound ÷ cycle, goal >= 0.95, 0 throttled)');
  out.push(
    table(
      ['replicas', 'devices', 'QPS', 'bound s', 'cycle s', 'efficiency', 'calls', 'throttled', 'busiest 1s', 'error'],
      results.cluster_poll.map((c) => [c.config.replicas, c.config.devices, c.config.qps, c.quota_bound_s, c.cycle_s, c.efficiency, c.calls, c.throttled, c.busiest_window, c.error ?? '']),
    ),
  );
  out.push('\n8. The published run of an MQTT job (leader: encode, HSET + PUBLISH; follower: HGET, decode, render the per-device lines; medians)');
  out.push(
    table(
      ['devices', 'bytes', 'B per 1M devices', 'encode ms', 'write ms', 'read ms', 'decode ms', 'render first ms', 'render again ms', 'Redis used_memory'],
      results.cluster_publish.map((p) => [p.devices, p.bytes, p.bytes_per_million_devices, p.encode_ms, p.write_ms, p.read_ms, p.decode_ms, p.render_first_ms, p.render_again_ms, p.redis_used_memory_bytes]),
    ),
  );
  out.push('\n9. Failover (3 replicas, HA)');
  out.push(
    table(
      ['lease s', 'schedule', 'SIGKILL -> next leader calls s', 'bound (lease + interval) s', 'SIGTERM -> handover s', 'SIGTERM -> exit s', 'busiest 1s', 'throttled', 'error'],
      results.cluster_failover.map((f) => [f.lease_s, f.schedule, f.sigkill_to_first_call_s, f.bound_s, f.sigterm_handover_s, f.sigterm_exit_s, f.busiest_window, f.throttled, f.error ?? '']),
    ),
  );
  out.push('\n4+5. GET /metrics end to end (server in a fresh child process)');
  out.push(
    table(
      ['impl', 'series', 'gzip', 'p50 ms', 'p99 ms', 'bytes', 'max stall ms', 'idle stall ms', 'RSS B/device', 'peak RSS MB'],
      results.scrape.map((s) => [s.impl, s.config.series, s.config.gzip ? 'yes' : 'no', s.p50_ms, s.p99_ms, s.bytes, s.max_stall_ms, s.idle_stall_ms, s.rss_bytes_per_device, s.peak_rss_mb]),
    ),
  );
  out.push('\nMemory over repeated polls (device churn; every 4th cycle 5% of the inventory replaced)');
  out.push(table(['devices', 'cycles', 'RSS MB per cycle', 'RSS growth MB', 'heap growth MB', 'transitions', 'error'], results.memory.map((m) => [m.config.devices, m.rss_mb.length, m.rss_mb.join(' '), m.rss_growth_mb, m.heap_growth_mb, m.transitions_total, m.error ?? ''])));
  out.push('\n6. Per-device history of the MQTT job (offline durations, flapping, last changes; 2% of the devices changed)');
  out.push(
    table(
      ['devices', 'arrays B/device', 'RSS B/device', 'heap B/device', 'observe ms', 'offline buckets ms', 'top flapping ms', 'state file B/device', 'write ms', 'read ms', 'restore ms'],
      results.fleet.map((f) => [f.config.devices, f.array_bytes_per_device, f.rss_bytes_per_device, f.heap_bytes_per_device, f.observe_ms, f.offline_longer_than_ms, f.most_flapping_ms, f.file_bytes_per_device, f.write_ms, f.read_ms, f.restore_ms]),
    ),
  );
  out.push('\nprom-client ÷ ours (higher is better for ours)');
  out.push(table(['series', 'gzip', 'p50 ratio', 'p99 ratio', 'same family bytes'], results.scrape_ratio.map((r) => [r.series, r.gzip ? 'yes' : 'no', r.p50_ratio_promclient_over_ours, r.p99_ratio_promclient_over_ours, r.same_family_bytes === null ? '-' : r.same_family_bytes ? 'yes' : 'NO'])));
  out.push(`\nwrote ${path.relative(ROOT, path.join(outDir, 'latest.json'))}`);
  process.stdout.write(out.join('\n') + '\n');
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
