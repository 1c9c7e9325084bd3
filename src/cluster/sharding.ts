// Which inventory entries (MQTT client IDs, instance IDs) this replica polls when the cluster is sharded.
//
// Static (`sharding: {total_shards, shard}`, as kube-state-metrics): an entry belongs to shard hash(entry) mod total.
// Auto (`sharding: auto`): the live replicas in Redis (membership.ts) are the shards, and an entry belongs to the one
// with the highest hash of (replica, entry) — rendezvous hashing: when a replica joins or leaves, only the entries it
// gains or held move, never everything. A replica that joined less than `grace` ago takes no entries yet (unless
// none has been there that long: a cold start), so a rolling restart's short overlaps move nothing twice; a replica
// that leaves gracefully hands its entries over at once, one that dies when its membership entry expires.
// Never change the hash (util/hash.ts): every entry would move.
import { fnv1a32 } from '../util/hash';

/**
 * MurmurHash3's finaliser: spreads FNV's weak low bits, and combines an entry's hash with a replica's seed.
 * The emulator (emulator/core/prng.ts) has its own copy: it is a separate program that imports nothing from src/.
 */
function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** This replica's part of every inventory at one moment (core/job-type.ts RunContext.shard). */
export interface ShardView {
  /** Changes whenever the assignment does (a job caches its filtered inventory by it). */
  readonly id: string;
  /** This replica's ordinal among `total` shards; undefined while it takes no entries (auto: within its join grace). */
  readonly ordinal: number | undefined;
  readonly total: number;
  owns(key: string): boolean;
}

export function staticShard(total: number, shard: number): ShardView {
  return { id: `static:${shard}/${total}`, ordinal: shard, total, owns: (key) => mix32(fnv1a32(key)) % total === shard };
}

/** Rendezvous hashing over `members` (sorted ids): the entries `self` owns. */
export function rendezvousShard(members: readonly string[], self: string): ShardView {
  const seeds = members.map((m) => mix32(fnv1a32(m)));
  const mine = members.indexOf(self);
  return {
    id: `auto:${members.join(',')}`,
    ordinal: mine < 0 ? undefined : mine,
    total: members.length,
    owns(key) {
      if (mine < 0) return false;
      const h = fnv1a32(key);
      let best = -1;
      let bestScore = -1;
      for (let i = 0; i < seeds.length; i++) {
        const score = mix32(h ^ seeds[i]);
        if (score > bestScore) {
          bestScore = score;
          best = i;
        }
      }
      return best === mine;
    },
  };
}

/** Auto sharding: the shards follow the live replicas, with a grace for newcomers. */
export class AutoSharding {
  private current: ShardView | undefined;

  constructor(
    private readonly self: string,
    private readonly graceMs: number,
  ) {}

  /** The view now; undefined until the first contact with Redis (then this replica polls nothing). */
  get view(): ShardView | undefined {
    return this.current;
  }

  /** After a membership contact; true when the assignment changed. */
  update(members: ReadonlyArray<{ id: string; joinedAt: number }>, redisNow: number): boolean {
    const settled = members.filter((m) => m.joinedAt <= redisNow - this.graceMs);
    const eligible = (settled.length > 0 ? settled : members).map((m) => m.id).sort();
    if (this.current && this.current.id === `auto:${eligible.join(',')}`) return false;
    this.current = rendezvousShard(eligible, this.self);
    return true;
  }
}
