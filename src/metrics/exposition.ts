// Streams a scrape: prom-client's self-metrics, then the pre-rendered families, in chunks with backpressure,
// so even a million-series scrape never blocks the event loop for long.
import { familyHeader } from './family';
import type { SnapshotStore } from './snapshot-store';

export interface Sink {
  /** Returns false when the consumer wants us to wait for 'drain'. */
  write(chunk: string): boolean;
  once(event: 'drain' | 'close' | 'error', cb: () => void): unknown;
  off(event: 'drain' | 'close' | 'error', cb: () => void): unknown;
  destroyed?: boolean;
}

/** Yields the exposition text in pieces; `selfText` is prom-client's registry.metrics() output (ends with "\n"). */
export function* expositionChunks(selfText: string, store: SnapshotStore): Generator<string> {
  let first = selfText.length === 0;
  if (!first) yield selfText;
  for (const group of store.grouped()) {
    // prom-client separates families with a blank line and ends the text with one "\n".
    yield first ? familyHeader(group.name, group.help, group.type) : `\n${familyHeader(group.name, group.help, group.type)}`;
    first = false;
    for (const fam of group.members) for (const chunk of fam.chunks) yield chunk;
  }
}

export async function writeExposition(sink: Sink, chunks: Iterable<string>): Promise<void> {
  let sinceYield = 0;
  for (const chunk of chunks) {
    if (sink.destroyed) return;
    sinceYield += chunk.length;
    if (!sink.write(chunk)) {
      sinceYield = 0;
      await waitForDrain(sink);
    } else if (sinceYield > 1 << 20) {
      // A fast client never applies backpressure: yield anyway so polls and health checks keep running.
      sinceYield = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
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
