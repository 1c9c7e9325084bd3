// Caps an unbounded label (client IPs, commands): keeps the N heaviest entries and folds the rest into one
// "other" entry whose value is their sum, so per-label series always add up to the exact total.
export const OTHER = 'other';

export interface Folded<K extends string> {
  kept: Array<[K, number]>;
  /** Sum of the folded entries' values (0 when nothing was folded). */
  otherValue: number;
  foldedCount: number;
}

/** Ties break on the key so the kept set is stable between polls. */
export function foldTopN<K extends string>(values: ReadonlyMap<K, number>, limit: number): Folded<K> {
  const entries = [...values.entries()];
  if (entries.length <= limit) return { kept: entries, otherValue: 0, foldedCount: 0 };
  entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const kept = entries.slice(0, limit);
  let otherValue = 0;
  for (let i = limit; i < entries.length; i++) otherValue += entries[i][1];
  return { kept, otherValue, foldedCount: entries.length - limit };
}

/** Adds `value` to `key` in a map of sums (used to aggregate per label before folding). */
export function addTo<K>(map: Map<K, number>, key: K, value: number): void {
  map.set(key, (map.get(key) ?? 0) + value);
}
