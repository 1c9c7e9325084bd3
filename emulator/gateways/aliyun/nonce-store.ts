// Remembers recently used SignatureNonces so a replayed Alibaba request is refused, in bounded memory.
import { hashString, hashStringSeeded } from '../../core/prng';

const BUCKET_MS = 60_000;

/**
 * Nonces live in one-minute buckets of 53-bit hashes: a set of numbers costs a fraction of a set of
 * strings, which matters at 1,000 requests/s held for half an hour. A hash collision (odds around
 * 1e-4 at two million entries) would only refuse one request as a replay.
 */
export class NonceStore {
  private readonly buckets = new Map<number, Set<number>>();
  private size = 0;

  constructor(
    private readonly retentionMs = 31 * 60_000,
    private readonly maxEntries = 4_000_000,
  ) {}

  /** Records the nonce and returns true, or returns false if it was already seen within the retention. */
  claim(key: string, nowMs: number): boolean {
    const h = nonceHash(key);
    for (const set of this.buckets.values()) {
      if (set.has(h)) return false;
    }
    const bucketId = Math.floor(nowMs / BUCKET_MS);
    let bucket = this.buckets.get(bucketId);
    if (bucket === undefined) {
      bucket = new Set();
      this.buckets.set(bucketId, bucket);
      this.expire(nowMs);
    }
    bucket.add(h);
    this.size++;
    // Beyond the cap the oldest minute is forgotten early: replay protection weakens, memory does not grow.
    while (this.size > this.maxEntries && this.buckets.size > 1) this.dropOldest();
    return true;
  }

  private expire(nowMs: number): void {
    const oldestKept = Math.floor((nowMs - this.retentionMs) / BUCKET_MS);
    for (const [id, set] of this.buckets) {
      if (id < oldestKept) {
        this.size -= set.size;
        this.buckets.delete(id);
      }
    }
  }

  private dropOldest(): void {
    let oldest = Infinity;
    for (const id of this.buckets.keys()) oldest = Math.min(oldest, id);
    const set = this.buckets.get(oldest);
    if (set !== undefined) this.size -= set.size;
    this.buckets.delete(oldest);
  }
}

function nonceHash(key: string): number {
  const a = hashString(key);
  const b = hashStringSeeded(key, 0x2545f491);
  return a * 2097152 + (b >>> 11);
}
