// Cron helpers: the interval a schedule implies, used for default deadlines, staleness and the quota plan.
import cron from 'node-cron';

/** Shortest gap between consecutive firings over the next few dozen firings, in ms. */
export function scheduleIntervalMs(expression: string): number {
  const task = cron.createTask(expression, () => undefined);
  try {
    const runs = task.getNextRuns(48).map((d) => d.getTime());
    let min = Infinity;
    for (let i = 1; i < runs.length; i++) min = Math.min(min, runs[i] - runs[i - 1]);
    return Number.isFinite(min) ? min : 86_400_000;
  } finally {
    void task.destroy();
  }
}
