// A per-device 0/1 gauge (aliyun_mqtt_client_online) for fleets of up to millions of devices.
//
// The lines are rendered once per inventory into one UTF-8 Buffer, with the byte offset of every value recorded.
// Each poll overwrites the one value byte of each line, in one synchronous pass (about 2 ms for a million lines), so
// no scrape can see half of it. A Buffer that a scrape is still streaming is never written to: the poll then patches
// a copy instead (a memcpy, in slices between which the event loop runs). So a poll costs no string work, and the
// family is one off-heap Buffer instead of a million strings, most of the time only one.
//
// A line with no value this poll (NO_VALUE) is left out of that poll's family rather than given an invented 0 or 1:
// the family's chunks then skip its bytes (slices of the same Buffer around it), so the other lines stay byte-identical
// and nothing is rendered again. Prometheus sees the series missing from the scrape and marks it stale.
import { CHUNK_BYTES, type MetricFamily } from './family';
import { YIELD_EVERY, yieldToEventLoop } from '../util/yield';

/** Copy granularity: large enough to be fast, small enough that one slice never stalls the event loop for long. */
const COPY_SLICE_BYTES = 8 << 20;
const ONE = 0x31;
const ZERO = 0x30;
/** A value meaning "no value this poll": the line is left out of the family. */
export const NO_VALUE = 2;

interface Rendered {
  key: string;
  count: number;
  buf: Buffer;
  /** Byte offset of each line's value digit. */
  valueAt: Uint32Array;
  /** Chunk boundaries (end offsets, at line ends) of roughly CHUNK_BYTES each. */
  chunkEnds: number[];
  /** Scrapes streaming this Buffer right now. */
  readers: number;
}

export class BinaryGaugeLines {
  private last: Rendered | undefined;

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  /**
   * The family for `values` (1 = 1, NO_VALUE = line left out, anything else = 0). `key` identifies the label sets: equal keys promise the same
   * `count` label sets in the same order, so only a new key renders `labelsOf(i)` (the inside of the braces) again.
   */
  async render(key: string, count: number, labelsOf: (i: number) => string, values: Uint8Array): Promise<MetricFamily> {
    const prev = this.last?.key === key && this.last.count === count ? this.last : undefined;
    const r = prev === undefined ? await this.renderLabels(key, count, labelsOf) : prev.readers === 0 ? prev : await this.copyOf(prev);
    // No await from the readers check on (it is in the line above): the patch and the new family are one step.
    const { buf, valueAt } = r;
    const gaps: number[] = [];
    for (let i = 0; i < count; i++) {
      const v = values[i];
      if (v === NO_VALUE) gaps.push(i);
      else buf[valueAt[i]] = v === 1 ? ONE : ZERO;
    }
    this.last = r;
    const chunks: Buffer[] = [];
    let start = 0;
    let g = 0;
    for (const end of r.chunkEnds) {
      // Chunks end at line ends, so a left-out line lies within one chunk: its bytes run from the end of the line
      // before it (the value digit and "\n") to its own "\n".
      let from = start;
      for (; g < gaps.length && valueAt[gaps[g]] < end; g++) {
        const i = gaps[g];
        const lineStart = i === 0 ? 0 : valueAt[i - 1] + 2;
        if (lineStart > from) chunks.push(buf.subarray(from, lineStart));
        from = valueAt[i] + 2;
      }
      if (end > from) chunks.push(buf.subarray(from, end));
      start = end;
    }
    const retain = () => {
      r.readers++;
      let released = false;
      return () => {
        if (!released) r.readers--;
        released = true;
      };
    };
    return Object.freeze({ name: this.name, help: this.help, type: 'gauge' as const, chunks: Object.freeze(chunks), samples: count - gaps.length, retain });
  }

  /** Drops the rendered lines (e.g. when per-device series are turned off). */
  clear(): void {
    this.last = undefined;
  }

  private async copyOf(prev: Rendered): Promise<Rendered> {
    const buf = Buffer.allocUnsafeSlow(prev.buf.length);
    for (let off = 0; off < prev.buf.length; off += COPY_SLICE_BYTES) {
      prev.buf.copy(buf, off, off, Math.min(prev.buf.length, off + COPY_SLICE_BYTES));
      if (off + COPY_SLICE_BYTES < prev.buf.length) await yieldToEventLoop();
    }
    return { ...prev, buf, readers: 0 };
  }

  private async renderLabels(key: string, count: number, labelsOf: (i: number) => string): Promise<Rendered> {
    const valueAt = new Uint32Array(count);
    const chunkEnds: number[] = [];
    // Lines are encoded straight into one growing Buffer. Buffers this large are mapped pages that go back to the OS
    // when freed; a million small pieces would stay in the allocator's heap as resident memory after the render.
    let buf: Buffer | undefined;
    let used = 0;
    let piece = '';
    let pieceBytes = 0;
    const flush = (linesSoFar: number) => {
      // Sized from the first chunk's average line, with 3% to spare; grown by doubling if labels get longer.
      buf ??= Buffer.allocUnsafeSlow(Math.max(pieceBytes, Math.ceil((pieceBytes / linesSoFar) * count * 1.03)));
      if (used + pieceBytes > buf.length) {
        const bigger = Buffer.allocUnsafeSlow(Math.max(buf.length * 2, used + pieceBytes));
        buf.copy(bigger, 0, 0, used);
        buf = bigger;
      }
      used += buf.write(piece, used, 'utf8');
      chunkEnds.push(used);
      piece = '';
      pieceBytes = 0;
    };
    for (let i = 0; i < count; i++) {
      const labels = labelsOf(i);
      const head = labels ? `${this.name}{${labels}} ` : `${this.name} `;
      const headBytes = Buffer.byteLength(head, 'utf8');
      valueAt[i] = used + pieceBytes + headBytes;
      piece += `${head}0\n`;
      pieceBytes += headBytes + 2;
      if (pieceBytes >= CHUNK_BYTES || i === count - 1) flush(i + 1);
      if ((i + 1) % YIELD_EVERY === 0) await yieldToEventLoop();
    }
    if (used >= 2 ** 32) throw new Error(`${this.name}: ${count} lines exceed 4 GiB`);
    if (buf === undefined) buf = Buffer.alloc(0);
    else if (buf.length > used + (used >> 4)) {
      // Trim an over-estimate (more than 1/16 spare) so the copies each poll makes are exact.
      const exact = Buffer.allocUnsafeSlow(used);
      buf.copy(exact, 0, 0, used);
      buf = exact;
    } else buf = buf.subarray(0, used);
    return { key, count, buf, valueAt, chunkEnds, readers: 0 };
  }
}
