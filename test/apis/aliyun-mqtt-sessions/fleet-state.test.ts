// The per-device history of the MQTT job (FleetState) and its state file, on synthetic times: what a duration can
// claim, how devices are matched across inventories, the flapping window, and every way a state file can be unusable.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { FLAP_SLICES, FleetState, STATUS_NO_ANSWER as NA, STATUS_OFFLINE as OFF, STATUS_ONLINE as ON } from '../../../src/apis/aliyun-mqtt-sessions/fleet-state';
import { PackedIds } from '../../../src/apis/aliyun-mqtt-sessions/inventory';
import { MAX_STATE_FILE_BYTES, readStateFile, readStateFileSync, writeStateFile } from '../../../src/apis/aliyun-mqtt-sessions/state-file';
import { tempDir } from '../../helpers/harness';

const ids = (...list: string[]) => new PackedIds(list.join('\n'));
const DEVICES = ids('GID_a@@@d1', 'GID_a@@@d2', 'GID_b@@@d3', 'GID_b@@@d4');
const GROUP_OF = Uint32Array.from([0, 0, 1, 1]);
const HOUR = 3600;
const T0 = 1_800_000_000;

/** Feeds one poll answered entirely at `at`; returns the changes heard, as [index, to]. */
function poll(state: FleetState, answers: number[], at: number): Array<[number, number]> {
  const heard: Array<[number, number]> = [];
  state.observe(Uint8Array.from(answers), () => at, (i, to) => heard.push([i, to]));
  return heard;
}

/** `flaps: false` as with top_flapping_clients: 0. */
function fleet({ flaps = true } = {}): FleetState {
  const s = new FleetState(flaps ? HOUR : undefined);
  s.alignTo(DEVICES);
  return s;
}

describe('FleetState', () => {
  test('a first answer is not a change: no transition, no last change, and its time only a lower bound', () => {
    const s = fleet();
    expect(poll(s, [ON, OFF, OFF, NA], T0)).toEqual([]);
    for (let i = 0; i < 4; i++) expect(s.lastChange(i)).toBeUndefined();
    // A device never answered stays unknown; one answered later is first seen then.
    expect(poll(s, [ON, OFF, ON, OFF], T0 + 60)).toEqual([[2, ON]]);
    expect(s.lastChange(2)).toBe(T0 + 60);
    expect(s.lastChange(3)).toBeUndefined();
  });

  test('offline durations count only what was seen: never-changed devices from their first answer, changed ones from the change', () => {
    const s = fleet();
    poll(s, [ON, OFF, ON, NA], T0);
    poll(s, [OFF, OFF, ON, OFF], T0 + 2 * HOUR);
    const thresholds = [300, HOUR, 24 * HOUR];
    const at = (now: number, answers: number[]) => [...s.offlineLongerThan(Uint8Array.from(answers), GROUP_OF, 2, thresholds, now)];
    const answers = [OFF, OFF, ON, OFF];
    // At the second poll: d1 changed just now (0 s), d2 offline since its first answer (2 h, not known to be longer),
    // d4 first answered now (0 s). Group a: [5m, 1h, 24h] = [1, 1, 0]; group b: nothing proven.
    expect(at(T0 + 2 * HOUR, answers)).toEqual([1, 1, 0, 0, 0, 0]);
    // A day after the first poll: d2 24 h, d1 and d4 22 h.
    expect(at(T0 + 24 * HOUR, answers)).toEqual([2, 2, 1, 1, 1, 0]);
    // Only devices answered offline in this poll count: d2 without an answer, d4 online.
    expect(at(T0 + 24 * HOUR, [OFF, NA, ON, ON])).toEqual([1, 1, 0, 0, 0, 0]);
  });

  test('a device without an answer keeps its status and history; its next answer is compared with the last known one', () => {
    const s = fleet();
    poll(s, [ON, ON, ON, ON], T0);
    expect(poll(s, [NA, NA, NA, NA], T0 + 60)).toEqual([]);
    expect(poll(s, [ON, OFF, NA, NA], T0 + 120)).toEqual([[1, OFF]]);
    expect(s.lastChange(0)).toBeUndefined();
    expect(s.lastChange(1)).toBe(T0 + 120);
  });

  test('a new inventory keeps the history of the devices it still lists, matched by client ID; new devices start unknown', () => {
    const s = fleet();
    poll(s, [ON, ON, ON, ON], T0);
    poll(s, [OFF, ON, ON, OFF], T0 + 60);
    s.alignTo(ids('GID_b@@@d4', 'GID_c@@@d5', 'GID_a@@@d1'));
    expect([s.lastChange(0), s.lastChange(1), s.lastChange(2)]).toEqual([T0 + 60, undefined, T0 + 60]);
    expect(s.mostFlapping(5, T0 + 60)).toEqual([
      { index: 0, changes: 1 },
      { index: 2, changes: 1 },
    ]);
    // d4 offline → online is a change; d5's first answer is not.
    expect(poll(s, [ON, OFF, OFF], T0 + 120)).toEqual([[0, ON]]);
  });

  test('the most flapping devices: at most the limit, most first, ties in inventory order, changes older than the window gone', () => {
    const s = fleet();
    const flip = (answers: number[], at: number) => poll(s, answers, at);
    flip([ON, ON, ON, ON], T0);
    // d3 changes 4 times, d1 and d4 twice each, d2 never.
    flip([OFF, ON, OFF, OFF], T0 + 60);
    flip([ON, ON, ON, ON], T0 + 120);
    flip([ON, ON, OFF, ON], T0 + 180);
    flip([ON, ON, ON, ON], T0 + 240);
    expect(s.mostFlapping(2, T0 + 240)).toEqual([
      { index: 2, changes: 4 },
      { index: 0, changes: 2 },
    ]);
    expect(s.mostFlapping(10, T0 + 240)).toEqual([
      { index: 2, changes: 4 },
      { index: 0, changes: 2 },
      { index: 3, changes: 2 },
    ]);
    // A window later every slice that held these changes has dropped out.
    expect(s.mostFlapping(10, T0 + 240 + HOUR + HOUR / FLAP_SLICES)).toEqual([]);
    // Without a window (top_flapping_clients: 0) nothing is kept.
    const off = fleet({ flaps: false });
    poll(off, [ON, ON, ON, ON], T0);
    poll(off, [OFF, OFF, OFF, OFF], T0 + 60);
    expect(off.mostFlapping(10, T0 + 60)).toEqual([]);
  });
});

describe('the state file', () => {
  const owner = { jobName: 'fleet', instanceId: 'post-cn-test0001' };

  function history(): FleetState {
    const s = fleet();
    poll(s, [ON, OFF, ON, NA], T0);
    poll(s, [OFF, OFF, ON, ON], T0 + 60);
    return s;
  }

  async function saved(dir = tempDir()): Promise<string> {
    const file = path.join(dir, 'fleet.state');
    await writeStateFile(file, owner, history().snapshot(), T0 + 61);
    return file;
  }

  test('round-trips the whole history, and the restored state carries on as the saved one would', async () => {
    const file = await saved();
    expect(fs.readdirSync(path.dirname(file))).toEqual(['fleet.state']);
    const read = await readStateFile(file, owner);
    if (!read.found || 'problem' in read) throw new Error(`unexpected ${JSON.stringify(read)}`);
    expect(read.savedAt).toBe(T0 + 61);
    expect(readStateFileSync(file, owner)).toEqual(read);
    const restored = FleetState.restore(read.state, HOUR);
    expect(restored.flapsDropped).toBe(false);
    const original = history();
    for (const s of [original, restored.state]) s.alignTo(DEVICES);
    for (let i = 0; i < 4; i++) expect(restored.state.lastChange(i)).toBe(original.lastChange(i));
    expect(restored.state.mostFlapping(5, T0 + 60)).toEqual(original.mostFlapping(5, T0 + 60));
    const answers = Uint8Array.from([OFF, OFF, ON, OFF]);
    expect(restored.state.offlineLongerThan(answers, GROUP_OF, 2, [1, HOUR], T0 + 2 * HOUR)).toEqual(original.offlineLongerThan(answers, GROUP_OF, 2, [1, HOUR], T0 + 2 * HOUR));
    expect(poll(restored.state, [ON, OFF, ON, ON], T0 + 120)).toEqual(poll(original, [ON, OFF, ON, ON], T0 + 120));
  });

  test('flapping counts kept with another window are dropped, the rest kept', async () => {
    const read = await readStateFile(await saved(), owner);
    if (!read.found || 'problem' in read) throw new Error('unreadable');
    const { state, flapsDropped } = FleetState.restore(read.state, 2 * HOUR);
    expect(flapsDropped).toBe(true);
    expect(state.mostFlapping(5, T0 + 60)).toEqual([]);
    expect(state.lastChange(0)).toBe(T0 + 60);
  });

  test('a missing file is no problem; a file of another job or instance is refused', async () => {
    const file = await saved();
    expect(await readStateFile(path.join(path.dirname(file), 'nothing.state'), owner)).toEqual({ found: false });
    expect(await readStateFile(file, { ...owner, jobName: 'other' })).toEqual({
      found: true,
      problem: 'it belongs to job "fleet", instance "post-cn-test0001", not to job "other", instance "post-cn-test0001"',
    });
    expect(await readStateFile(file, { ...owner, instanceId: 'post-cn-else' })).toMatchObject({ found: true, problem: expect.stringContaining('not to job "fleet", instance "post-cn-else"') });
  });

  test.each([
    ['a foreign file', (b: Buffer) => Buffer.from(`# devices\n${b.toString('latin1')}`), 'it is not a fleet state file of cloud-session-exporter'],
    ['a damaged byte', (b: Buffer) => Buffer.concat([b.subarray(0, 60), Buffer.from([b[60] ^ 0xff]), b.subarray(61)]), 'it is damaged (checksum mismatch: cut short or overwritten)'],
    ['a file cut short', (b: Buffer) => b.subarray(0, b.length - 7), 'it is damaged (checksum mismatch: cut short or overwritten)'],
    ['an empty file', () => Buffer.alloc(0), 'it is not a fleet state file of cloud-session-exporter'],
  ])('%s is reported in a sentence, never thrown', async (_what, damage, problem) => {
    const file = await saved();
    fs.writeFileSync(file, damage(fs.readFileSync(file)));
    expect(await readStateFile(file, owner)).toEqual({ found: true, problem });
  });

  test('a file larger than any state is not read, and a folder is not a file', async () => {
    const dir = tempDir();
    const huge = path.join(dir, 'fleet.state');
    // Sparse: nothing is written, but the size says more than a state file can hold.
    fs.writeFileSync(huge, '');
    fs.truncateSync(huge, MAX_STATE_FILE_BYTES + 1);
    expect(await readStateFile(huge, owner)).toEqual({ found: true, problem: `it is ${MAX_STATE_FILE_BYTES + 1} bytes, more than a state file can be (${MAX_STATE_FILE_BYTES})` });
    fs.rmSync(huge);
    fs.mkdirSync(huge);
    expect(readStateFileSync(huge, owner)).toEqual({ found: true, problem: 'it is not a regular file' });
  });

  test('a write replaces the file whole, creating its folder, and leaves no temporary file', async () => {
    const dir = path.join(tempDir(), 'state', 'nested');
    const file = await saved(dir);
    const before = fs.statSync(file).ino;
    await writeStateFile(file, owner, fleet().snapshot(), T0 + 120);
    expect(fs.readdirSync(dir)).toEqual(['fleet.state']);
    // A rename, not an overwrite in place: a reader holding the old file never sees a mix.
    expect(fs.statSync(file).ino).not.toBe(before);
    const read = await readStateFile(file, owner);
    expect(read.found && !('problem' in read) && read.savedAt).toBe(T0 + 120);
  });
});
