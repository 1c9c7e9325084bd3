import { Gauge, Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { BinaryGaugeLines, NO_VALUE } from '../../src/metrics/binary-gauge-lines';
import { renderLabels } from '../../src/metrics/family';
import { snapshotExposition } from '../../src/metrics/exposition';
import { SnapshotStore } from '../../src/metrics/snapshot-store';

const AWKWARD = ['plain', 'quo"te', 'back\\slash', 'new\nline', 'ünïcødé 设备', 'tab\tand "both" \\ \n', '', '{}=,'];
const HELP = 'Help with \\ backslash\nand newline.';

async function promClientText(ids: string[], values: Uint8Array): Promise<string> {
  const reg = new Registry();
  const g = new Gauge({ name: 'aliyun_mqtt_client_online', help: HELP, labelNames: ['region', 'client_id'], registers: [reg] });
  ids.forEach((id, i) => values[i] !== NO_VALUE && g.set({ region: 'cn-hangzhou', client_id: id }, values[i]));
  return reg.metrics();
}

async function oursText(lines: BinaryGaugeLines, key: string, ids: string[], values: Uint8Array): Promise<string> {
  const fam = await lines.render(key, ids.length, (i) => renderLabels({ region: 'cn-hangzhou', client_id: ids[i] }), values);
  const store = new SnapshotStore();
  store.put('job', 'i', [fam], 0);
  return [...snapshotExposition('', store)].join('');
}

describe('BinaryGaugeLines', () => {
  test('renders byte-identically to prom-client, awkward and multi-byte label values included, on every poll', async () => {
    // Enough lines for several 64 KiB chunks, so chunk boundaries and byte offsets after multi-byte text are exercised.
    const ids = Array.from({ length: 5000 }, (_, i) => `${AWKWARD[i % AWKWARD.length]}-${i}`);
    const lines = new BinaryGaugeLines('aliyun_mqtt_client_online', HELP);
    for (const seed of [1, 2, 3]) {
      const values = Uint8Array.from(ids, (_, i) => ((i * seed) % 3 === 0 ? 1 : 0));
      expect(await oursText(lines, 'k1', ids, values)).toBe(await promClientText(ids, values));
    }
  });

  test('lines without a value this poll are left out, the others byte-identical; the next poll shows them again', async () => {
    const ids = Array.from({ length: 5000 }, (_, i) => `${AWKWARD[i % AWKWARD.length]}-${i}`);
    const lines = new BinaryGaugeLines('aliyun_mqtt_client_online', HELP);
    const first = await lines.render('k1', ids.length, (i) => renderLabels({ region: 'cn-hangzhou', client_id: ids[i] }), new Uint8Array(ids.length));
    const chunkFirstLines = [0];
    for (const c of first.chunks.slice(0, -1)) chunkFirstLines.push(chunkFirstLines.at(-1)! + c.toString().split('\n').length - 1);
    // The first and last lines, a run of neighbours, and lines on both sides of every chunk boundary.
    const gaps = new Set([0, 1, 2, 77, ids.length - 1, ...chunkFirstLines.slice(1).flatMap((n) => [n - 1, n])]);
    const values = Uint8Array.from(ids, (_, i) => (gaps.has(i) ? NO_VALUE : i % 2));
    const fam = await lines.render('k1', ids.length, () => 'unused: same key', values);
    expect(fam.samples).toBe(ids.length - gaps.size);
    expect(await oursText(lines, 'k1', ids, values)).toBe(await promClientText(ids, values));
    const all = Uint8Array.from(ids, (_, i) => i % 2);
    expect(await oursText(lines, 'k1', ids, all)).toBe(await promClientText(ids, all));
    const none = new Uint8Array(ids.length).fill(NO_VALUE);
    const empty = await lines.render('k1', ids.length, () => 'unused', none);
    expect([empty.samples, empty.chunks.length]).toEqual([0, 0]);
  });

  test('a poll patches the lines in place when no scrape is streaming them, and a copy when one is', async () => {
    const ids = ['a', 'b', 'c'];
    const lines = new BinaryGaugeLines('m', 'h');
    const labels = (i: number) => `id="${ids[i]}"`;
    const first = await lines.render('k', 3, labels, Uint8Array.of(1, 1, 1));
    const second = await lines.render('k', 3, labels, Uint8Array.of(0, 1, 0));
    expect(second.chunks[0].buffer).toBe(first.chunks[0].buffer);
    expect(Buffer.concat(second.chunks).toString()).toBe('m{id="a"} 0\nm{id="b"} 1\nm{id="c"} 0\n');

    // A scrape streaming `second` holds it: the next poll must not touch it.
    const release = second.retain!();
    const third = await lines.render('k', 3, labels, Uint8Array.of(1, 0, 1));
    expect(Buffer.concat(second.chunks).toString()).toBe('m{id="a"} 0\nm{id="b"} 1\nm{id="c"} 0\n');
    expect(Buffer.concat(third.chunks).toString()).toBe('m{id="a"} 1\nm{id="b"} 0\nm{id="c"} 1\n');
    expect(third.chunks[0].buffer).not.toBe(second.chunks[0].buffer);
    release();
    release(); // idempotent
    const fourth = await lines.render('k', 3, labels, Uint8Array.of(0, 0, 0));
    expect(fourth.chunks[0].buffer).toBe(third.chunks[0].buffer);
  });

  test('the exposition holds a family while it streams it and lets go when the consumer stops early', async () => {
    const lines = new BinaryGaugeLines('m', 'h');
    const labels = (i: number) => `id="${i}"`;
    const fam = await lines.render('k', 3, labels, Uint8Array.of(1, 1, 1));
    const store = new SnapshotStore();
    store.put('job', 'i', [fam], 0);
    for (const chunk of snapshotExposition('', store)) {
      if (Buffer.isBuffer(chunk)) {
        // Mid-scrape: a poll now writes into a copy.
        const during = await lines.render('k', 3, labels, Uint8Array.of(0, 0, 0));
        expect(during.chunks[0].buffer).not.toBe(fam.chunks[0].buffer);
        break;
      }
    }
    // The early stop released it: the following poll patches in place again.
    const next = await lines.render('k', 3, labels, Uint8Array.of(1, 0, 1));
    const after = await lines.render('k', 3, labels, Uint8Array.of(1, 1, 1));
    expect(after.chunks[0].buffer).toBe(next.chunks[0].buffer);
  });

  test('a new key renders the label sets again; an empty inventory renders no lines', async () => {
    const lines = new BinaryGaugeLines('m', 'h');
    await lines.render('k1', 2, (i) => `id="${i}"`, Uint8Array.of(1, 0));
    const other = await lines.render('k2', 1, () => 'id="z"', Uint8Array.of(1));
    expect(Buffer.concat(other.chunks).toString()).toBe('m{id="z"} 1\n');
    const none = await lines.render('k3', 0, () => '', new Uint8Array(0));
    expect(none.chunks).toHaveLength(0);
    expect(none.samples).toBe(0);
  });
});
