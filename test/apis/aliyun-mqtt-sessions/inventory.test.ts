import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { createLogger } from '../../../src/util/log';
import { InventoryLoader } from '../../../src/apis/aliyun-mqtt-sessions/inventory';

const logger = createLogger({ level: 'error' });

function fileWith(text: string, ageSeconds: number): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cse-inv-')), 'devices.txt');
  fs.writeFileSync(file, text);
  const t = new Date(Date.now() - ageSeconds * 1000);
  fs.utimesSync(file, t, t);
  return file;
}

describe('InventoryLoader', () => {
  test('parses IDs, comments, blanks, duplicates and groups; positions name the line', async () => {
    const file = fileWith('# fleet\nGID_alpha@@@d1\n\n  GID_bravo@@@d2  # trailing comment\nGID_alpha@@@d1\nnot-an-id\nGID_alpha@@@d3', 10);
    const inv = await new InventoryLoader(['GID_charlie@@@x'], file, logger).load();
    expect(Array.from({ length: inv.size }, (_, i) => inv.id(i))).toEqual(['GID_charlie@@@x', 'GID_alpha@@@d1', 'GID_bravo@@@d2', 'GID_alpha@@@d3']);
    expect(Array.from({ length: inv.size }, (_, i) => inv.group(i))).toEqual(['GID_charlie', 'GID_alpha', 'GID_bravo', 'GID_alpha']);
    expect(inv.groupNames).toEqual(['GID_charlie', 'GID_alpha', 'GID_bravo']);
    expect(inv.invalid).toBe(1);
    expect(inv.slice(1, 3)).toEqual(['GID_alpha@@@d1', 'GID_bravo@@@d2']);
  });

  test('a file that has been still for 2 s and keeps inode, size and mtime is not read again', async () => {
    const file = fileWith('GID_alpha@@@d1\nGID_alpha@@@d2\n', 10);
    const loader = new InventoryLoader([], file, logger);
    const first = await loader.load();
    // Same size, same mtime, same inode, other content: only a read would notice, and none happens.
    const { mtime } = fs.statSync(file);
    fs.writeFileSync(file, 'GID_alpha@@@d1\nGID_alpha@@@d9\n');
    fs.utimesSync(file, mtime, mtime);
    expect(await loader.load()).toBe(first);
    // Any real change moves the mtime: it is read and parsed again.
    fs.utimesSync(file, new Date(), new Date());
    const second = await loader.load();
    expect(second.id(1)).toBe('GID_alpha@@@d9');
  });

  test('a file written in the last 2 s is read every time (its mtime may not move on a quick rewrite)', async () => {
    const file = fileWith('GID_alpha@@@d1\n', 0);
    const loader = new InventoryLoader([], file, logger);
    await loader.load();
    const { mtime } = fs.statSync(file);
    fs.writeFileSync(file, 'GID_alpha@@@d7\n');
    fs.utimesSync(file, mtime, mtime);
    expect((await loader.load()).id(0)).toBe('GID_alpha@@@d7');
  });
});

describe('client-ID rules (src/apis/aliyun-mqtt/product.ts)', () => {
  test('GID_ and GID- groups of 7-64 characters, the whole ID at most 64', async () => {
    // 64 characters in all at most, so a group can only reach 60 of its 64.
    const ok = ['GID_abc@@@d', 'GID-abc@@@d', `GID-${'g'.repeat(56)}@@@d`, `GID_abc@@@${'d'.repeat(54)}`];
    const bad = ['GID_ab@@@d', 'GIDabcd@@@d', 'gid_abcd@@@d', `GID-${'g'.repeat(57)}@@@d`, `GID_abc@@@${'d'.repeat(55)}`];
    const inv = await new InventoryLoader([...ok, ...bad], undefined, logger).load();
    expect(inv.slice(0, inv.size)).toEqual(ok);
    expect(inv.invalid).toBe(bad.length);
  });
});
