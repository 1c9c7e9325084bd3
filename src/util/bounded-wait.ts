// Waiting on shutdown work that may hang (a socket that never closes, a Redis that never answers) without letting it
// delay the exit past its budget.

/** Resolves when `p` settles or after `ms`, whichever is first; never rejects. */
export function boundedWait(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    p.then(
      () => undefined,
      () => undefined,
    ).finally(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
