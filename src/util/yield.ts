// Long loops over a fleet (a million devices) give the event loop back now and then, so scrapes and timers are not
// stalled by them.

/** How many items a loop handles between two yields: tens of microseconds each, a few ms a stretch. */
export const YIELD_EVERY = 32 * 1024;

export function yieldToEventLoop(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}
