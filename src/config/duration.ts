// Prometheus-style durations ("500ms", "30s", "5m", "1h30m") in configuration.
import { z } from 'zod';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(trimmed)) {
    throw new Error(`invalid duration "${text}": use a number with a unit, e.g. 500ms, 30s, 5m, 1h`);
  }
  let total = 0;
  for (const [, num, , unit] of trimmed.matchAll(/(\d+(\.\d+)?)(ms|s|m|h|d)/g)) total += Number(num) * UNIT_MS[unit];
  return total;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** A duration key: a string with units, or a number of seconds; in milliseconds. */
export const durationMs = z.union([z.string(), z.number()]).transform((v, ctx) => {
  if (typeof v === 'number') {
    if (v >= 0) return v * 1000;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'a duration must not be negative', fatal: true });
    return z.NEVER;
  }
  try {
    return parseDuration(v);
  } catch (err) {
    // Fatal: refinements of an invalid duration (e.g. "must be longer than 0") would only add noise.
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message, fatal: true });
    return z.NEVER;
  }
});
