// Figure 2: the highest rate each limiter sustains with no-op tasks, and its CPU cost per call (in-process).
import Bottleneck from 'bottleneck';
import { WindowRateLimiter } from '../src/cloud/rate-limiter';
import { log, round } from './lib';

export interface LimiterFigure {
  limiter: string;
  config: string;
  rate: number;
  measured_seconds: number;
  sustained_rate: number;
  ratio: number;
  /** Most starts in any sliding 1-second window (> rate means the limiter would be throttled by a sliding-window quota). */
  busiest_window: number;
  cpu_us_per_call: number;
}

function busiest(starts: number[]): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < starts.length; hi++) {
    while (starts[hi] - starts[lo] >= 1000) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

interface Driver {
  schedule(fn: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

async function measure(name: string, config: string, rate: number, seconds: number, make: () => Driver): Promise<LimiterFigure> {
  const warmupMs = 1000;
  const starts: number[] = [];
  const d = make();
  const total = Math.ceil(rate * (seconds + 2) * 1.2);
  const noop = () => {
    starts.push(performance.now());
    return Promise.resolve();
  };
  const t0 = performance.now();
  for (let i = 0; i < total; i++) d.schedule(noop).catch(() => undefined);
  // CPU is counted over the steady window only (queueing the tasks up front is not the limiter's per-call cost).
  await new Promise((r) => setTimeout(r, warmupMs));
  const cpu0 = process.cpuUsage();
  const before = starts.length;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu = process.cpuUsage(cpu0);
  const during = starts.length - before;
  const from = t0 + warmupMs;
  const to = t0 + warmupMs + seconds * 1000;
  const inWindow = starts.filter((s) => s >= from && s < to).length;
  await d.stop();
  const sustained = inWindow / seconds;
  const fig: LimiterFigure = {
    limiter: name,
    config,
    rate,
    measured_seconds: seconds,
    sustained_rate: round(sustained, 1),
    ratio: round(sustained / rate, 4),
    busiest_window: busiest(starts),
    cpu_us_per_call: round((cpu.user + cpu.system) / Math.max(1, during), 2),
  };
  log(`limiter ${name} ${config} @${rate}: ${fig.sustained_rate}/s (${fig.ratio}), busiest window ${fig.busiest_window}, ${fig.cpu_us_per_call} µs CPU/call`);
  return fig;
}

export async function limiterCeiling(rates: number[], seconds: number): Promise<LimiterFigure[]> {
  const out: LimiterFigure[] = [];
  for (const rate of rates) {
    for (const guardMs of [6, 20]) {
      out.push(
        await measure('WindowRateLimiter', `{rate: ${rate}, guardMs: ${guardMs}}${guardMs === 20 ? ' (default)' : ''}`, rate, seconds, () => {
          const l = new WindowRateLimiter({ rate, guardMs });
          return { schedule: (fn) => l.schedule(fn), stop: async () => l.cancelAll() };
        }),
      );
    }
    const bottleneck = (opts: Bottleneck.ConstructorOptions) => (): Driver => {
      const b = new Bottleneck(opts);
      return { schedule: (fn) => b.schedule(fn), stop: () => b.stop({ dropWaitingJobs: true }).catch(() => undefined) };
    };
    out.push(await measure('Bottleneck', `{minTime: ${round(1000 / rate, 3)}}`, rate, seconds, bottleneck({ minTime: 1000 / rate })));
    out.push(
      await measure('Bottleneck', `{reservoir: ${rate}, reservoirRefreshAmount: ${rate}, reservoirRefreshInterval: 1000}`, rate, seconds, bottleneck({ reservoir: rate, reservoirRefreshAmount: rate, reservoirRefreshInterval: 1000 })),
    );
  }
  return out;
}
