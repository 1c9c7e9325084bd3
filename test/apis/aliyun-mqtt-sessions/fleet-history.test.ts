// Offline durations, flapping devices and last-change times of aliyun_mqtt_sessions, against the emulator with the real
// pop-core: what they show, that they survive a restart through the state file (and do not without one), that an
// unusable state file is reported and replaced, and that the existing families are unchanged by any of it.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { mqttOf } from '../../../emulator/apis/mqtt';
import { aliyunMqttSessions } from '../../../src/apis/aliyun-mqtt-sessions';
import type { MqttSessionsConfig } from '../../../src/apis/aliyun-mqtt-sessions/config';
import { readStateFile } from '../../../src/apis/aliyun-mqtt-sessions/state-file';
import { JOB_TYPES } from '../../../src/apis';
import { parseConfig } from '../../../src/config/load';
import { appFromYaml, emulator, parseExposition, tempDir, type TestApp } from '../../helpers/harness';
import { INSTANCE, ENV, config, inventoryFile, scenario } from './fixtures';

const NEW_FAMILIES = ['aliyun_mqtt_clients_offline_longer_than', 'aliyun_mqtt_client_flaps', 'aliyun_mqtt_client_last_change_timestamp_seconds'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The lines of these families in a scrape, in order (HELP and TYPE included). */
function familyText(text: string, names: readonly string[]): string {
  return text
    .split('\n')
    .filter((l) => names.some((n) => new RegExp(`^(# (HELP|TYPE) )?${n}[ {]`).test(l)))
    .join('\n');
}

/** Families of the scrape that are not among `names`: the ones a new option must leave byte-identical. */
function otherFamilies(text: string, names: readonly string[]): string {
  return text
    .split('\n')
    .filter((l) => /^(# (HELP|TYPE) )?aliyun_mqtt_/.test(l) && !names.some((n) => new RegExp(`^(# (HELP|TYPE) )?${n}[ {]`).test(l)))
    .join('\n');
}

/**
 * A fleet of 2 × 10 devices without churn, the config of a job polling it with these extra keys (`dir` holds the
 * config), and `flip(i)`, which turns the i-th device's status over in the emulator.
 */
async function setup(jobExtra: string): Promise<{ ids: string[]; yaml: string; dir: string; flip: (...devices: number[]) => void }> {
  const emu = await emulator(scenario({}, { size: 10 }));
  const dir = tempDir();
  const { file, truth } = await inventoryFile(emu, dir);
  const ids = Object.keys(truth);
  expect(ids).toHaveLength(20);
  const flip = (...devices: number[]) => {
    for (const i of devices) mqttOf(emu).setOnline(INSTANCE, ids[i], (truth[ids[i]] = !truth[ids[i]]));
  };
  return { ids, yaml: config(emu.url, { file, jobExtra }), dir, flip };
}

async function start(yaml: string, dir: string): Promise<TestApp> {
  const t = appFromYaml(yaml, ENV, {}, dir);
  await t.app.runAllNow();
  return t;
}

describe('aliyun_mqtt_sessions: offline durations, flapping devices, last changes', () => {
  test('durations start unknown, last changes exist only for devices seen changing, flaps count each change', async () => {
    const { ids, yaml, dir, flip } = await setup('    offline_thresholds: [2s, 1h]\n    per_client_last_change: true\n    top_flapping_clients: 2\n');
    const t = await start(yaml, dir);
    let m = parseExposition(await t.scrape());
    // Right after the first poll nothing is proven: every offline device counts in no bucket, nothing has changed.
    const offline = m.sum('aliyun_mqtt_clients', { state: 'offline' });
    expect(offline).toBeGreaterThan(0);
    expect(m.sum('aliyun_mqtt_clients_offline_longer_than')).toBe(0);
    expect(m.all('aliyun_mqtt_clients_offline_longer_than').map((s) => `${s.labels.group_id} ${s.labels.duration}`)).toEqual(['GID_sensor 2s', 'GID_sensor 1h', 'GID_gateway 2s', 'GID_gateway 1h']);
    expect(m.all('aliyun_mqtt_client_last_change_timestamp_seconds')).toEqual([]);
    expect(m.all('aliyun_mqtt_client_flaps')).toEqual([]);

    // Device 0 flips three times, device 1 twice, device 2 once: the top 2 are shown.
    const before = Math.floor(Date.now() / 1000);
    for (const round of [[0, 1, 2], [0, 1], [0]]) {
      flip(...round);
      await t.app.runAllNow();
    }
    const after = Math.ceil(Date.now() / 1000);
    await sleep(2100);
    await t.app.runAllNow();
    m = parseExposition(await t.scrape());
    expect([...m.byLabel('aliyun_mqtt_client_flaps', 'client_id')]).toEqual([
      [ids[0], 3],
      [ids[1], 2],
    ]);
    const changed = m.byLabel('aliyun_mqtt_client_last_change_timestamp_seconds', 'client_id');
    expect([...changed.keys()].sort()).toEqual([ids[0], ids[1], ids[2]].sort());
    for (const v of changed.values()) expect(v >= before && v <= after, `${v} within [${before}, ${after}]`).toBe(true);
    // Two seconds on, every offline device is proven offline for 2s (since its first answer or its change), none for 1h.
    expect(m.sum('aliyun_mqtt_clients_offline_longer_than', { duration: '2s' })).toBe(m.sum('aliyun_mqtt_clients', { state: 'offline' }));
    expect(m.sum('aliyun_mqtt_clients_offline_longer_than', { duration: '1h' })).toBe(0);
  });

  test('offline durations and last-change times are the same before and after a restart with a state_dir', async () => {
    const stateDir = tempDir();
    const { yaml, dir, flip } = await setup(`    offline_thresholds: [2s, 1h]\n    per_client_last_change: true\n    state_dir: ${stateDir}\n`);
    const t1 = await start(yaml, dir);
    flip(0, 1, 15);
    await t1.app.runAllNow();
    await sleep(2100);
    await t1.app.runAllNow();
    const before = await t1.scrape();
    await t1.app.stop(0);
    expect(fs.readdirSync(stateDir)).toEqual(['fleet.state']);

    const t2 = await start(yaml, dir);
    const after = await t2.scrape();
    expect(familyText(after, NEW_FAMILIES)).toBe(familyText(before, NEW_FAMILIES));
    // Not a comparison of two empty outputs.
    const m = parseExposition(after);
    expect(m.all('aliyun_mqtt_client_last_change_timestamp_seconds')).toHaveLength(3);
    expect(m.all('aliyun_mqtt_client_flaps')).toHaveLength(3);
    expect(m.sum('aliyun_mqtt_clients_offline_longer_than', { duration: '2s' })).toBeGreaterThan(0);
    expect(t2.logs.some((l) => l.includes('restored the fleet state') && l.includes('"devices":20'))).toBe(true);
  });

  test('without a state_dir the history starts unknown after a restart', async () => {
    const { yaml, dir, flip } = await setup('    offline_thresholds: [2s, 1h]\n    per_client_last_change: true\n');
    const t1 = await start(yaml, dir);
    flip(0);
    await t1.app.runAllNow();
    await sleep(2100);
    await t1.app.runAllNow();
    expect(parseExposition(await t1.scrape()).all('aliyun_mqtt_client_last_change_timestamp_seconds')).toHaveLength(1);
    await t1.app.stop(0);
    const m = parseExposition(await (await start(yaml, dir)).scrape());
    expect(m.all('aliyun_mqtt_client_last_change_timestamp_seconds')).toEqual([]);
    expect(m.sum('aliyun_mqtt_clients_offline_longer_than')).toBe(0);
  });

  test('an unusable state file is reported by --config.check and in the log, ignored, and replaced after the next poll', async () => {
    const stateDir = tempDir();
    const { yaml, dir } = await setup(`    state_dir: ${stateDir}\n`);
    const file = path.join(stateDir, 'fleet.state');
    fs.writeFileSync(file, 'GID_sensor@@@dev-000001\n');
    const cfg = parseConfig(yaml, path.join(dir, 'config.yml'), { env: ENV, jobTypes: JOB_TYPES }).jobs[0] as unknown as MqttSessionsConfig;
    expect(aliyunMqttSessions.inspect!(cfg, dir).notes).toContain(`state file ${file} will be ignored and replaced: it is not a fleet state file of cloud-session-exporter`);

    const t = await start(yaml, dir);
    const warning = t.logs.find((l) => l.includes('ignoring the fleet state file'));
    expect(warning).toContain('it is not a fleet state file of cloud-session-exporter');
    expect(warning).toContain(file);
    expect(parseExposition(await t.scrape()).value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(1);
    const read = await readStateFile(file, { jobName: 'fleet', instanceId: INSTANCE });
    expect(read.found && !('problem' in read) && read.state.ids.size).toBe(20);
    expect(aliyunMqttSessions.inspect!(cfg, dir).notes.find((n) => n.startsWith(`state file ${file}: 20 device(s), saved `))).toBeDefined();
  });

  test('the existing families are byte-identical whatever the new options', async () => {
    const { yaml, dir } = await setup('');
    const plain = await start(yaml, dir);
    const withAll = await start(`${yaml}    offline_thresholds: [1s]\n    per_client_last_change: true\n    top_flapping_clients: 5\n    state_dir: ${tempDir()}\n`, tempDir());
    const a = otherFamilies(await plain.scrape(), NEW_FAMILIES);
    expect(a).toContain('aliyun_mqtt_client_online{');
    expect(otherFamilies(await withAll.scrape(), NEW_FAMILIES)).toBe(a);
  });
});
