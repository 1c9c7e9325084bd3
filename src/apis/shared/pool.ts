// Runs `count` indexed tasks with at most `concurrency` in flight; the rate limiter does the pacing,
// the pool only bounds memory (a million devices must not become a million queued promises).
export async function runPool(count: number, concurrency: number, task: (index: number) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0;
  let firstError: unknown;
  const worker = async () => {
    while (next < count && firstError === undefined && !signal?.aborted) {
      const i = next++;
      try {
        await task(i);
      } catch (err) {
        if (firstError === undefined) firstError = err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
  if (firstError !== undefined) throw firstError;
}

