// Shard assignment: every entry has exactly one owner, shards are balanced, and a replica joining or leaving moves
// only the entries it gains or held (rendezvous hashing), after a grace for newcomers.
import { describe, expect, test } from 'vitest';
import { AutoSharding, rendezvousShard, staticShard } from '../../src/cluster/sharding';

const ids = Array.from({ length: 30_000 }, (_, i) => `GID_sensor@@@dev-${String(i).padStart(6, '0')}`);

function owners(views: Array<{ owns(k: string): boolean }>, names: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const id of ids) {
    const o = views.map((v, i) => (v.owns(id) ? names[i] : undefined)).filter((x): x is string => x !== undefined);
    expect(o, id).toHaveLength(1);
    out.set(id, o[0]);
  }
  return out;
}

describe('static shards', () => {
  test('every entry in exactly one of 3 shards, each within 3% of a third', () => {
    const views = [0, 1, 2].map((s) => staticShard(3, s));
    const o = owners(views, ['0', '1', '2']);
    for (const s of ['0', '1', '2']) expect(Math.abs([...o.values()].filter((x) => x === s).length - 10_000)).toBeLessThan(300);
    expect(views.map((v) => [v.ordinal, v.total])).toEqual([[0, 3], [1, 3], [2, 3]]);
  });
});

describe('rendezvous shards', () => {
  const three = ['pod-a', 'pod-b', 'pod-c'];
  test('balanced, and a replica that leaves moves only its own entries', () => {
    const before = owners(three.map((m) => rendezvousShard(three, m)), three);
    for (const m of three) expect(Math.abs([...before.values()].filter((x) => x === m).length - 10_000)).toBeLessThan(300);
    const two = ['pod-a', 'pod-c'];
    const after = owners(two.map((m) => rendezvousShard(two, m)), two);
    for (const id of ids) if (before.get(id) !== 'pod-b') expect(after.get(id)).toBe(before.get(id));
  });

  test('a replica that joins takes about a quarter, from each of the others, and nothing else moves', () => {
    const before = owners(three.map((m) => rendezvousShard(three, m)), three);
    const four = ['pod-a', 'pod-b', 'pod-c', 'pod-d'];
    const after = owners(four.map((m) => rendezvousShard(four, m)), four);
    let moved = 0;
    for (const id of ids) {
      if (after.get(id) === before.get(id)) continue;
      expect(after.get(id)).toBe('pod-d');
      moved++;
    }
    expect(Math.abs(moved - 7_500)).toBeLessThan(300);
  });

  test('a replica outside the members owns nothing', () => {
    const v = rendezvousShard(three, 'pod-x');
    expect(v.ordinal).toBeUndefined();
    expect(ids.some((id) => v.owns(id))).toBe(false);
  });
});

describe('auto sharding', () => {
  test('a newcomer takes entries only after the grace, unless nobody has been there that long (cold start)', () => {
    const s = new AutoSharding('pod-b', 15_000);
    // Cold start: both joined a moment ago.
    expect(s.update([{ id: 'pod-a', joinedAt: 1000 }, { id: 'pod-b', joinedAt: 1500 }], 2000)).toBe(true);
    expect([s.view!.ordinal, s.view!.total]).toEqual([1, 2]);
    // Unchanged membership: no new assignment.
    expect(s.update([{ id: 'pod-a', joinedAt: 1000 }, { id: 'pod-b', joinedAt: 1500 }], 3000)).toBe(false);
    // A rolling restart: pod-c joins; until its grace has passed the assignment stays.
    const members = [{ id: 'pod-a', joinedAt: 1000 }, { id: 'pod-b', joinedAt: 1500 }, { id: 'pod-c', joinedAt: 20_000 }];
    expect(s.update(members, 30_000)).toBe(false);
    expect(s.view!.total).toBe(2);
    expect(s.update(members, 35_001)).toBe(true);
    expect([s.view!.ordinal, s.view!.total]).toEqual([1, 3]);
    // pod-a leaves: its entries go at once.
    expect(s.update(members.slice(1), 36_000)).toBe(true);
    expect([s.view!.ordinal, s.view!.total]).toEqual([0, 2]);
  });
});
