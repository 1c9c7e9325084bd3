// Cron helpers: the interval a schedule implies, and the deadline of a run, used by the runner, staleness and the
// quota plan alike.
import cron from 'node-cron';

/** Longest deadline a run can have (24 h), whatever the schedule: setTimeout fires at once beyond 2^31-1 ms. */
const MAX_RUN_MS = 86_400_000;

/** Intervals by expression: computing one walks dozens of firings (1-4 ms), and loads and reloads ask repeatedly. */
const intervals = new Map<string, number>();

/** Shortest gap between consecutive firings over the next few dozen firings, in ms. */
export function scheduleIntervalMs(expression: string): number {
  const known = intervals.get(expression);
  if (known !== undefined) return known;
  const task = cron.createTask(expression, () => undefined);
  try {
    const runs = task.getNextRuns(48).map((d) => d.getTime());
    let min = Infinity;
    for (let i = 1; i < runs.length; i++) min = Math.min(min, runs[i] - runs[i - 1]);
    const interval = Number.isFinite(min) ? min : 86_400_000;
    if (intervals.size < 1000) intervals.set(expression, interval);
    return interval;
  } finally {
    void task.destroy();
  }
}

/**
 * A run's deadline when the config sets none: the time from its latest start (after jitter) to the next tick, less
 * 10% (at most 5 s), so a run that uses all of it still ends before the next tick and never makes it an overlap.
 */
export function runDeadlineMs(job: { schedule: string; jitter: number; timeout?: number }, intervalMs = scheduleIntervalMs(job.schedule)): number {
  if (job.timeout !== undefined) return Math.min(job.timeout, MAX_RUN_MS);
  const room = Math.max(1, intervalMs - job.jitter);
  return Math.max(1, Math.min(MAX_RUN_MS, Math.floor(room - Math.min(5_000, room * 0.1))));
}
