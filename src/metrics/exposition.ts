// Streams a scrape: prom-client's self-metrics, then the pre-rendered families, in chunks with backpressure,
// so even a million-series scrape never blocks the event loop for long.
import { familyHeader } from './family';
import type { SnapshotStore } from './snapshot-store';
import { yieldToEventLoop } from '../util/yield';

export interface Sink {
  /** Returns false when the consumer wants us to wait for 'drain'. */
  write(chunk: string | Uint8Array): boolean;
  once(event: 'drain' | 'close' | 'error', cb: () => void): unknown;
  off(event: 'drain' | 'close' | 'error', cb: () => void): unknown;
  destroyed?: boolean;
}

/** One scrape's text: iterate it once; `release()` (also called when an iteration ends) lets polls patch again. */
export interface Exposition extends Iterable<string | Uint8Array> {
  release(): void;
}

/**
 * The exposition of this moment; `selfText` is prom-client's registry.metrics() output (ends with "\n"). Every
 * family is retained now, synchronously, not when the iteration reaches it: a poll that completes while the scrape
 * streams then patches a copy (see BinaryGaugeLines), so the scrape shows one poll's data, whole.
 */
export function snapshotExposition(selfText: string, store: SnapshotStore): Exposition {
  const groups = store.grouped();
  const releases: Array<() => void> = [];
  for (const group of groups) for (const fam of group.members) if (fam.retain) releases.push(fam.retain());
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    for (const r of releases) r();
  };
  function* chunks(): Generator<string | Buffer> {
    try {
      let first = selfText.length === 0;
      if (!first) yield selfText;
      for (const group of groups) {
        // prom-client separates families with a blank line and ends the text with one "\n".
        yield first ? familyHeader(group.name, group.help, group.type) : `\n${familyHeader(group.name, group.help, group.type)}`;
        first = false;
        for (const fam of group.members) yield* fam.chunks;
      }
    } finally {
      // Also when the consumer stops early (client gone): for-of calls return(), which runs this.
      release();
    }
  }
  return { [Symbol.iterator]: chunks, release };
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
      await yieldToEventLoop();
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
