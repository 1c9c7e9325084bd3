// The published run: what the leader writes is what a follower reads (families byte for byte, sections, per-target
// outcome), sections it does not know are skipped, another framing is refused; the MQTT status section keeps the
// devices a partial answer left without a status, and an MQTT follower serves exactly the leader's lines.
import { describe, expect, test } from 'vitest';
import { decodeRun, encodeRun } from '../../src/cluster/published-run';
import { decodeFleet, decodeStatus, encodeFleet, encodeStatus } from '../../src/apis/aliyun-mqtt-sessions/handover';
import { FleetState } from '../../src/apis/aliyun-mqtt-sessions/fleet-state';
import { PackedIds } from '../../src/apis/aliyun-mqtt-sessions/inventory';
import { FamilyBuilder } from '../../src/metrics/family';
import { appFromYaml, emulator, parseExposition, tempDir } from '../helpers/harness';
import { startRedisServer } from '../helpers/servers';
import { ENV, config, inventoryFile, scenario } from '../apis/aliyun-mqtt-sessions/fixtures';

const about = { job: 'j', type: 't', replica: 'r' };

describe('published run format', () => {
  test('families, outcomes, job metrics and sections round-trip; a failed target publishes nothing', () => {
    const fam = new FamilyBuilder('x_total', 'help with "quotes"\nand a newline', 'counter');
    for (let i = 0; i < 5000; i++) fam.sample(`id="${i}"`, i);
    const family = fam.build();
    const bytes = encodeRun(
      { producedAt: 1234, durationMs: 56, jobMetrics: { m: 7 }, targets: [{ instanceId: 'a', ok: true, families: [family] }, { instanceId: 'b', ok: false }], sections: new Map([['s.v1', new Uint8Array([1, 2, 3])]]) },
      about,
      true,
    );
    const run = decodeRun(bytes);
    expect(run).toMatchObject({ ...about, producedAt: 1234, durationMs: 56, jobMetrics: { m: 7 } });
    expect(run.targets.map((t) => [t.instanceId, t.ok, t.families?.length, t.inSections])).toEqual([
      ['a', true, 1, undefined],
      ['b', false, undefined, undefined],
    ]);
    const got = run.targets[0].families![0];
    expect([got.name, got.help, got.type, got.samples]).toEqual([family.name, family.help, family.type, 5000]);
    expect(Buffer.concat(got.chunks)).toEqual(Buffer.concat(family.chunks));
    // Chunks end at line ends, as the exposition writes them.
    for (const c of got.chunks) expect(c[c.length - 1]).toBe(0x0a);
    expect([...run.sections].map(([k, v]) => [k, [...v]])).toEqual([['s.v1', [1, 2, 3]]]);
  });

  test('families carried by the sections are marked, not copied', () => {
    const family = new FamilyBuilder('y', 'h', 'gauge').sample('', 1).build();
    const run = decodeRun(encodeRun({ producedAt: 1, durationMs: 1, targets: [{ instanceId: 'a', ok: true, families: [family] }], sections: new Map() }, about, false));
    expect(run.targets[0]).toEqual({ instanceId: 'a', ok: true, inSections: true });
  });

  test('another framing version is refused; a truncated value is refused', () => {
    const bytes = encodeRun({ producedAt: 1, durationMs: 1, targets: [], sections: new Map() }, about, true);
    const v2 = Buffer.from(bytes);
    v2[3] = 2;
    expect(() => decodeRun(v2)).toThrow(/format 2; this version reads 1/);
    expect(() => decodeRun(bytes.subarray(0, bytes.length - 3))).toThrow(/truncated/);
    expect(() => decodeRun(Buffer.from('hello world'))).toThrow(/not a published run/);
  });

  test('MQTT statuses: 1 bit a device, the gaps with their last known status; keyed by the inventory', () => {
    const n = 1_000_003;
    const status = new Uint8Array(n);
    const known = new Uint8Array(n);
    for (let i = 0; i < n; i++) status[i] = known[i] = (i * 7919) % 3 === 0 ? 1 : 0;
    for (const i of [5, 77, 999_999]) {
      status[i] = 2;
      known[i] = i === 77 ? 2 : 1;
    }
    const bytes = encodeStatus('k1', status, known);
    // 125 KB for a million devices, plus the gaps and the key.
    expect(bytes.length).toBeLessThan(Math.ceil(n / 8) + 64);
    const back = decodeStatus(bytes, 'k1', n)!;
    expect(Buffer.from(back.status).equals(Buffer.from(status))).toBe(true);
    expect(Buffer.from(back.known).equals(Buffer.from(known))).toBe(true);
    expect(decodeStatus(bytes, 'k2', n)).toBeUndefined();
    expect(decodeStatus(bytes, 'k1', n - 1)).toBeUndefined();
  });
});

describe('MQTT history in the handover', () => {
  test('since-times, seen changes and flapping slices round-trip, deflated; keyed by the inventory', async () => {
    const n = 100_000;
    const ids = new PackedIds(Array.from({ length: n }, (_, i) => `GID_a@@@d${i}`).join('\n'));
    const state = new FleetState(3600);
    state.alignTo(ids);
    const answers = new Uint8Array(n);
    state.observe(answers, () => 1_000, () => undefined);
    for (let i = 0; i < n; i += 97) answers[i] = 1;
    state.observe(answers, () => 2_000, () => undefined);
    const snap = state.snapshot();
    const bytes = await encodeFleet(ids.key, snap);
    // 18 B a device raw; mostly repeated times and empty slices deflate to a fraction.
    expect(bytes.length).toBeLessThan(n * 2);
    const back = (await decodeFleet(bytes, ids.key, ids))!;
    for (const k of ['status', 'since', 'changeSeen'] as const) expect(Buffer.from(back[k].buffer, back[k].byteOffset, back[k].byteLength).equals(Buffer.from(snap[k].buffer, snap[k].byteOffset, snap[k].byteLength)), k).toBe(true);
    expect(back.flaps!.sliceNo).toEqual(snap.flaps!.sliceNo);
    expect(Buffer.from(back.flaps!.counts).equals(Buffer.from(snap.flaps!.counts))).toBe(true);
    const restored = FleetState.restore(back, 3600).state;
    expect(restored.lastChange(97)).toBe(state.lastChange(97));
    expect(await decodeFleet(bytes, 'another-inventory', ids)).toBeUndefined();
  });
});

describe('MQTT in HA (in-process replicas, real Redis)', () => {
  test('partial answers: the follower serves the leader\'s lines byte for byte, gaps included, and its counters', async () => {
    const redis = await startRedisServer();
    try {
      const s = scenario({}, { size: 300 });
      const omit = ['GID_sensor@@@dev-000001', 'GID_sensor@@@dev-000002', 'GID_gateway@@@dev-000003'];
      Object.assign(s.mqtt.instances[0], { partial_answers: { omit, extra: ['GID_other@@@stranger'] } });
      const e = await emulator(s);
      const dir = tempDir();
      const { file, truth } = await inventoryFile(e, dir);
      const ids = Object.keys(truth);
      for (const id of omit) expect(ids).toContain(id);
      const yaml = (id: string) => `${config(e.url, { file })}cluster:\n  redis: {url: "redis://127.0.0.1:${redis.port}/0"}\n  replica_id: ${id}\n`;
      const leader = appFromYaml(yaml('a'), ENV, {}, dir);
      leader.app.start();
      await leader.app.whenReady();
      const follower = appFromYaml(yaml('b'), ENV, {}, dir);
      follower.app.start();
      await follower.app.whenReady();
      const lines = async (t: typeof leader) => (await t.scrape()).split('\n').filter((l) => l.startsWith('aliyun_mqtt_'));
      const [l, f] = [await lines(leader), await lines(follower)];
      expect(f).toEqual(l);
      const m = parseExposition(await follower.scrape());
      expect(m.all('aliyun_mqtt_client_online')).toHaveLength(ids.length - 3);
      expect(m.sum('aliyun_mqtt_client_status_missing_total')).toBe(3);
      await leader.app.stop(0);
      await follower.app.stop(0);
    } finally {
      await redis.stop();
    }
  });
});
