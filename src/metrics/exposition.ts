// Streams a scrape: prom-client's self-metrics, then the pre-rendered families, in chunks with backpressure,
// so even a million-series scrape never blocks the event loop for long.
import { familyHeader } from './family';
import type { SnapshotStore } from './snapshot-store';

export interface Sink {
  /** Returns false when the consumer wants us to wait for 'drain'. */
  write(chunk: string | Uint8Array): boolean;
  once(event: 'drain' | 'close' | 'error', cb: () => void): unknown;
  off(event: 'drain' | 'close' | 'error', cb: () => void): unknown;
  destroyed?: boolean;
}

/** Yields the exposition text in pieces; `selfText` is prom-client's registry.metrics() output (ends with "\n"). */
export function* expositionChunks(selfText: string, store: SnapshotStore): Generator<string | Buffer> {
  let first = selfText.length === 0;
  if (!first) yield selfText;
  for (const group of store.grouped()) {
    // prom-client separates families with a blank line and ends the text with one "\n".
    yield first ? familyHeader(group.name, group.help, group.type) : `\n${familyHeader(group.name, group.help, group.type)}`;
    first = false;
    for (const fam of group.members) {
      const release = fam.retain?.();
      try {
        for (const chunk of fam.chunks) yield chunk;
      } finally {
        // Also when the consumer stops early (client gone): for-of calls return(), which runs this.
        release?.();
      }
    }
  }
}

/**
 * Longest stretch of writing before the event loop gets a turn. Backpressure alone does not give it one: towards a
 * fast reader, write → kernel → 'drain' → write chains through I/O callbacks of a single loop iteration, and timers
 * and other connections waited 50-90 ms per 1M-series scrape (measured) before this.
 */
const MAX_WRITE_SLICE_MS = 4;

export async function writeExposition(sink: Sink, chunks: Iterable<string | Uint8Array>): Promise<void> {
  let sliceStart = performance.now();
  for (const chunk of chunks) {
    if (sink.destroyed) return;
    if (!sink.write(chunk)) await waitForDrain(sink);
    if (performance.now() - sliceStart > MAX_WRITE_SLICE_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}

/** Resolves on drain, close or error, and removes all three listeners so long scrapes don't accumulate them. */
function waitForDrain(sink: Sink): Promise<void> {
  return new Promise<void>((resolve) => {
    const finish = () => {
      sink.off('drain', finish);
      sink.off('close', finish);
      sink.off('error', finish);
      resolve();
    };
    sink.once('drain', finish);
    sink.once('close', finish);
    sink.once('error', finish);
  });
}
