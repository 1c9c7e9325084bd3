// aliyun_mqtt_sessions when the cloud's answer leaves out requested devices or names devices nobody asked for (the
// emulator's partial_answers), through the real pop-core: no value for the missing device that poll, everything else
// exported exactly, the job successful, the gaps and extras counted.
import { mqttOf } from '../../../emulator/apis/mqtt';
import { describe, expect, test } from 'vitest';
import { appFromYaml, emulator, parseExposition, seriesOf, tempDir } from '../../helpers/harness';
import type { Scrape } from '../../helpers/exposition';
import { config, ENV, INSTANCE, inventoryFile, pollWholeFleet, scenario } from './fixtures';

const ONLINE = 'aliyun_mqtt_client_online';

/** An app polling a 10-device fleet (5 GID_sensor, 5 GID_gateway: one batch); `poll()` runs it once and scrapes. */
async function tenDevices(partial: Record<string, unknown> = {}, batchSupported = true) {
  const s = scenario({}, { size: 5 });
  Object.assign(s.mqtt.instances[0] as Record<string, unknown>, { partial_answers: partial, batch_supported: batchSupported });
  const emu = await emulator(s);
  const dir = tempDir();
  const { file, truth } = await inventoryFile(emu, dir);
  const t = appFromYaml(config(emu.url, { file }), ENV, {}, dir);
  const poll = async (): Promise<{ m: Scrape; text: string }> => {
    await t.app.runAllNow();
    const text = await t.scrape();
    return { m: parseExposition(text), text };
  };
  return { emu, truth, ids: Object.keys(truth), t, poll };
}

const onlineLines = (text: string): string[] => text.split('\n').filter((l) => l.startsWith(`${ONLINE}{`));

describe('aliyun_mqtt_sessions with partial answers', () => {
  test('a batch answer missing one ID: the other 9 devices exported exactly, job success 1, the gap counted, not retried', async () => {
    const { emu, truth, ids, poll } = await tenDevices();
    const full = await poll();
    const missing = ids[3];
    mqttOf(emu).setPartialAnswers(INSTANCE, { omit: [missing] });
    emu.resetStats();
    const { m, text } = await poll();

    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(1);
    expect(m.value('cloud_session_exporter_instance_success', { instance_id: INSTANCE })).toBe(1);
    const exported = seriesOf(m, ONLINE);
    expect(exported.map(([l]) => l.client_id).sort()).toEqual(ids.filter((id) => id !== missing).sort());
    for (const [labels, value] of exported) expect(value).toBe(truth[labels.client_id] ? 1 : 0);
    // The answered devices' lines are byte for byte those of a complete poll.
    expect(onlineLines(text)).toEqual(onlineLines(full.text).filter((l) => !l.includes(`client_id="${missing}"`)));
    expect(m.value('aliyun_mqtt_client_status_missing_total', { group_id: 'GID_sensor' })).toBe(1);
    expect(m.value('aliyun_mqtt_client_status_missing_total', { group_id: 'GID_gateway' })).toBe(0);
    expect(m.value('aliyun_mqtt_client_status_unexpected_total', { instance_id: INSTANCE })).toBe(0);
    // Counted in neither state: the group's counts cover its 4 answered devices.
    expect(m.sum('aliyun_mqtt_clients', { group_id: 'GID_sensor' })).toBe(4);
    expect(m.sum('aliyun_mqtt_clients', { group_id: 'GID_gateway' })).toBe(5);
    expect(m.sum('aliyun_mqtt_client_transitions_total')).toBe(0);
    // One call, answered: nothing was malformed or retried.
    expect(emu.stats().apis.BatchQuerySessionByClientIds).toMatchObject({ calls: 1, ok: 1 });
    expect(m.value('cloud_session_exporter_api_requests_total', { api: 'BatchQuerySessionByClientIds', code: 'MalformedResponse' })).toBeUndefined();
    expect(m.value('cloud_session_exporter_api_retries_total', { api: 'BatchQuerySessionByClientIds' })).toBe(0);
  });

  test('a missing answer is not a transition: its next status is compared with its last known one', async () => {
    const { emu, ids, poll } = await tenDevices();
    const id = ids[0];
    const pin = (online: boolean) => mqttOf(emu).setOnline(INSTANCE, id, online);
    const omit = (yes: boolean) => mqttOf(emu).setPartialAnswers(INSTANCE, { omit: yes ? [id] : [] });
    const state = (m: Scrape) => ({
      line: m.value(ONLINE, { client_id: id }),
      toOnline: m.value('aliyun_mqtt_client_transitions_total', { group_id: 'GID_sensor', to: 'online' }),
      toOffline: m.value('aliyun_mqtt_client_transitions_total', { group_id: 'GID_sensor', to: 'offline' }),
      missing: m.value('aliyun_mqtt_client_status_missing_total', { group_id: 'GID_sensor' }),
    });

    pin(true);
    expect(state((await poll()).m)).toEqual({ line: 1, toOnline: 0, toOffline: 0, missing: 0 });
    omit(true);
    expect(state((await poll()).m)).toEqual({ line: undefined, toOnline: 0, toOffline: 0, missing: 1 });
    omit(false);
    // online → no answer → online: no change.
    expect(state((await poll()).m)).toEqual({ line: 1, toOnline: 0, toOffline: 0, missing: 1 });
    omit(true);
    pin(false);
    expect(state((await poll()).m)).toEqual({ line: undefined, toOnline: 0, toOffline: 0, missing: 2 });
    omit(false);
    // online → no answer → offline: one change, seen when the answer comes back.
    expect(state((await poll()).m)).toEqual({ line: 0, toOnline: 0, toOffline: 1, missing: 2 });
  });

  test('an entry for a client ID nobody asked for is ignored and counted', async () => {
    const { truth, ids, poll } = await tenDevices({ extra: ['GID_sensor@@@intruder-1', 'GID_elsewhere@@@intruder-2'] });
    await poll();
    const { m } = await poll();
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(1);
    expect(m.value('aliyun_mqtt_client_status_unexpected_total', { instance_id: INSTANCE })).toBe(4);
    expect(seriesOf(m, ONLINE).map(([l]) => l.client_id).sort()).toEqual([...ids].sort());
    for (const [labels, value] of seriesOf(m, ONLINE)) expect(value).toBe(truth[labels.client_id] ? 1 : 0);
    expect(m.all('aliyun_mqtt_client_status_missing_total').map((s) => s.labels.group_id).sort()).toEqual(['GID_gateway', 'GID_sensor']);
    expect(m.sum('aliyun_mqtt_clients')).toBe(10);
  });

  test('QuerySessionByClientId answering without OnlineStatus: no value for that device, the job succeeds', async () => {
    const { emu, truth, ids, poll } = await tenDevices({}, false);
    mqttOf(emu).setPartialAnswers(INSTANCE, { omit: [ids[7]] });
    const { m } = await poll();
    expect(emu.stats().apis.QuerySessionByClientId.calls).toBe(10);
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(1);
    expect(seriesOf(m, ONLINE, { client_id: ids[7] })).toHaveLength(0);
    expect(seriesOf(m, ONLINE)).toHaveLength(9);
    for (const [labels, value] of seriesOf(m, ONLINE)) expect(value).toBe(truth[labels.client_id] ? 1 : 0);
    expect(m.value('aliyun_mqtt_client_status_missing_total', { group_id: 'GID_gateway' })).toBe(1);
  });

  test('random gaps and extras over a larger fleet: the counters equal what the cloud left out and added', async () => {
    const emu = await emulator({ ...scenario({}, { size: 500 }), seed: 11 });
    mqttOf(emu).setPartialAnswers(INSTANCE, { omit_rate: 0.03, extra_rate: 0.2 });
    const { truth, m } = await pollWholeFleet(emu);
    const { omitted, added } = mqttOf(emu).partialAnswers(INSTANCE);
    expect(omitted).toBeGreaterThan(10);
    expect(added).toBeGreaterThan(5);
    expect(m.value('cloud_session_exporter_job_success', { job_name: 'fleet' })).toBe(1);
    expect(m.sum('aliyun_mqtt_client_status_missing_total')).toBe(omitted);
    expect(m.value('aliyun_mqtt_client_status_unexpected_total')).toBe(added);
    expect(seriesOf(m, ONLINE)).toHaveLength(1000 - omitted);
    expect(m.sum('aliyun_mqtt_clients')).toBe(1000 - omitted);
    for (const [labels, value] of seriesOf(m, ONLINE)) expect(value).toBe(truth[labels.client_id] ? 1 : 0);
  });
});
