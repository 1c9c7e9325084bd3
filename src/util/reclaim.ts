// Returns memory soon after an oversized cloud answer was abandoned mid-read. The buffers it filled (up to the size
// cap) are garbage at once, but a quiet exporter gives V8 no reason to collect for minutes, and until it does the
// memory stays resident. One full collection a second after such an answer returns it; while such answers keep coming,
// at most one every 3 s (a full collection of a million-device exporter's heap takes a few hundred ms), so the last
// one of a burst is collected within 3 s of its arrival.
import v8 from 'node:v8';
import vm from 'node:vm';

const DELAY_MS = 1000;
const MIN_GAP_MS = 3_000;

let gc: (() => void) | null | undefined;
let timer: NodeJS.Timeout | undefined;
let lastRun = -Infinity;

/** V8's gc(), made reachable without a command-line flag; null where the runtime refuses. */
function collector(): (() => void) | null {
  if (gc === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc') as () => void;
    } catch {
      gc = null;
    }
  }
  return gc;
}

export function reclaimSoon(): void {
  if (timer) return;
  const wait = Math.max(DELAY_MS, lastRun + MIN_GAP_MS - Date.now());
  timer = setTimeout(() => {
    timer = undefined;
    lastRun = Date.now();
    collector()?.();
  }, wait);
  timer.unref();
}
