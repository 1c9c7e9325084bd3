import { mqttOf } from '../../emulator/apis/mqtt';
import { emulator, truthOf } from '../helpers/harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../emulator/server';
import type { EmulatorStats } from '../../emulator/core/stats';
import type { SentMessageEvent, Truth } from '../helpers/harness';
import { adminGet, adminPost, mqttClient, oneFleetScenario, popError, testScenario, type PopError } from './helpers';

const INSTANCE = 'post-cn-test0001';

interface BatchAnswer {
  RequestId: string;
  OnlineStatusList: { ClientId: string; OnlineStatus: boolean }[];
}

const ids = (n: number, from = 1): string[] =>
  Array.from({ length: n }, (_, i) => `GID_sensor@@@dev-${String(from + i).padStart(6, '0')}`);

describe('ApsaraMQ for MQTT APIs', () => {
  let emu: Emulator;
  const sent: { instanceId: string; topic: string; payload: string; msgId: string }[] = [];

  beforeAll(async () => {
    emu = await startEmulator({ scenario: testScenario(), onSendMessage: (m: SentMessageEvent) => void sent.push(m) });
  });
  afterAll(async () => emu.close());

  it('answers Batch in request order, matching the truth; unknown IDs are offline', async () => {
    const truth = await truthOf(emu);
    const list = [...ids(8), 'GID_gateway@@@gw-000003', 'GID_nobody@@@x'];
    const r = await mqttClient(emu.url).request<BatchAnswer>('BatchQuerySessionByClientIds', { InstanceId: INSTANCE, ClientIdList: list }, { method: 'POST' });
    expect(r.OnlineStatusList.map((e) => e.ClientId)).toEqual(list);
    for (const e of r.OnlineStatusList) expect(e.OnlineStatus).toBe(truth.mqtt[INSTANCE]?.[e.ClientId] ?? false);
    expect(r.OnlineStatusList[8]?.OnlineStatus).toBe(true);
    expect(r.OnlineStatusList[9]?.OnlineStatus).toBe(false);
  });

  it('keeps the fleet near its online ratio and the truth complete', async () => {
    const truth = await truthOf(emu);
    const fleet = Object.entries(truth.mqtt[INSTANCE] ?? {}).filter(([id]) => id.startsWith('GID_sensor@@@dev-'));
    expect(fleet).toHaveLength(50);
    const online = fleet.filter(([, v]) => v).length;
    expect(online).toBeGreaterThan(15);
    expect(online).toBeLessThan(45);
    expect(truth.mqtt[INSTANCE]?.['GID_test@@@always-on']).toBe(true);
  });

  it('rejects a batch of 11 IDs with InvalidParameter.ClientIdList (HTTP 400) and records its size', async () => {
    const err = await popError(
      mqttClient(emu.url).request('BatchQuerySessionByClientIds', { InstanceId: INSTANCE, ClientIdList: ids(11) }, { method: 'POST' }),
    );
    expect(err.code).toBe('InvalidParameter.ClientIdList');
    expect(err.entry.response.statusCode).toBe(400);
    expect(emu.stats().apis.BatchQuerySessionByClientIds?.largest_batch).toBe(11);
  });

  it('answers MqttInstanceNotFound (400) for an unknown instance, MqttOwnerCheckError (403) for another account\'s and InstancePermissionCheckFailed (400) where a policy refuses', async () => {
    const e = await emulator(
      testScenario((s) => {
        s.mqtt.instances.push(
          { ...s.mqtt.instances[0]!, instance_id: 'post-cn-others01', account: 'aliyun-sts' },
          { ...s.mqtt.instances[0]!, instance_id: 'post-cn-denied01', permission_denied: true },
        );
      }),
    );
    const codes = async (instanceId: string) => {
      const errors = [
        await popError(mqttClient(e.url).request('QuerySessionByClientId', { InstanceId: instanceId, ClientId: 'GID_a@@@b' })),
        await popError(mqttClient(e.url).request('BatchQuerySessionByClientIds', { InstanceId: instanceId, ClientIdList: ids(2) }, { method: 'POST' })),
        await popError(mqttClient(e.url).request('SendMessage', { InstanceId: instanceId, MqttTopic: 't', Payload: 'eA==' }, { method: 'POST' })),
      ];
      return errors.map((err) => `${err.code} ${err.entry.response.statusCode}`);
    };
    expect(await codes('post-cn-nope')).toEqual(Array(3).fill('MqttInstanceNotFound 400'));
    expect(await codes('post-cn-others01')).toEqual(Array(3).fill('MqttOwnerCheckError 403'));
    expect(await codes('post-cn-denied01')).toEqual(Array(3).fill('InstancePermissionCheckFailed 400'));
    // The owner asks the same instance without trouble.
    const owner = mqttClient(e.url, { accessKeyId: 'STS.test-key', accessKeySecret: 'sts-secret', securityToken: 'sts-token-123' });
    expect(typeof (await owner.request<{ OnlineStatus: boolean }>('QuerySessionByClientId', { InstanceId: 'post-cn-others01', ClientId: ids(1)[0] })).OnlineStatus).toBe('boolean');
  });

  it('answers ParameterFieldCheckFailed (400) for a client ID or topic over 64 characters and a payload over 64 KB as sent', async () => {
    const long = `GID_sensor@@@${'d'.repeat(52)}`;
    expect(long).toHaveLength(65);
    const client = mqttClient(emu.url);
    const refused = [
      await popError(client.request('QuerySessionByClientId', { InstanceId: INSTANCE, ClientId: long })),
      await popError(client.request('BatchQuerySessionByClientIds', { InstanceId: INSTANCE, ClientIdList: [...ids(2), long] }, { method: 'POST' })),
      await popError(client.request('SendMessage', { InstanceId: INSTANCE, MqttTopic: 't'.repeat(65), Payload: 'eA==' }, { method: 'POST' })),
      await popError(client.request('SendMessage', { InstanceId: INSTANCE, MqttTopic: 't', Payload: 'A'.repeat(64 * 1024 + 1) }, { method: 'POST' })),
    ];
    expect(refused.map((e) => `${e.code} ${e.entry.response.statusCode}`)).toEqual(Array(4).fill('ParameterFieldCheckFailed 400'));
    expect(refused.map((e) => e.data.Message)).toEqual([
      expect.stringContaining('ClientId is 65 characters long'),
      expect.stringContaining('ClientId is 65 characters long'),
      expect.stringContaining('MqttTopic is 65 characters long'),
      expect.stringContaining('Payload is 65537 bytes'),
    ]);
    // At the limits exactly, accepted.
    await client.request('QuerySessionByClientId', { InstanceId: INSTANCE, ClientId: long.slice(0, 64) });
    await client.request('SendMessage', { InstanceId: INSTANCE, MqttTopic: 't'.repeat(64), Payload: 'A'.repeat(64 * 1024) }, { method: 'POST' });
  });

  it('answers ApiNotSupport (404) for Batch on an instance without it, while single queries work', async () => {
    const err = await popError(
      mqttClient(emu.url).request('BatchQuerySessionByClientIds', { InstanceId: 'post-cn-nobatch01', ClientIdList: ids(2) }),
    );
    expect(err.code).toBe('ApiNotSupport');
    expect(err.entry.response.statusCode).toBe(404);
    const one = await mqttClient(emu.url).request<{ OnlineStatus: boolean }>('QuerySessionByClientId', {
      InstanceId: 'post-cn-nobatch01',
      ClientId: ids(1)[0],
    });
    expect(typeof one.OnlineStatus).toBe('boolean');
  });

  it('flips a device through the admin endpoint and the method', async () => {
    const id = ids(1, 7)[0] as string;
    const ask = async (): Promise<boolean> =>
      (await mqttClient(emu.url).request<{ OnlineStatus: boolean }>('QuerySessionByClientId', { InstanceId: INSTANCE, ClientId: id })).OnlineStatus;
    const before = await ask();
    const flip = await adminPost(emu.url, `mqtt/${INSTANCE}/${encodeURIComponent(id)}`, { online: !before });
    expect(flip.status).toBe(200);
    expect(await ask()).toBe(!before);
    expect((await adminGet<Truth>(emu.url, 'truth')).mqtt[INSTANCE]?.[id]).toBe(!before);
    mqttOf(emu).setOnline(INSTANCE, id, before);
    expect(await ask()).toBe(before);
    mqttOf(emu).setOnline(INSTANCE, 'GID_new@@@device', true);
    expect((await truthOf(emu)).mqtt[INSTANCE]?.['GID_new@@@device']).toBe(true);
  });

  it('records SendMessage and hands it to the onSendMessage hook', async () => {
    const payload = Buffer.from('probe 1').toString('base64');
    const r = await mqttClient(emu.url).request<{ MsgId: string; RequestId: string }>(
      'SendMessage',
      { InstanceId: INSTANCE, MqttTopic: 'probe/canary', Payload: payload },
      { method: 'POST' },
    );
    expect(r.MsgId).toMatch(/^[0-9A-F]{32}$/);
    expect(sent.at(-1)).toEqual({ instanceId: INSTANCE, topic: 'probe/canary', payload, msgId: r.MsgId });
    expect(mqttOf(emu).sentMessages().at(-1)?.msgId).toBe(r.MsgId);
    const err = await popError(mqttClient(emu.url).request('SendMessage', { InstanceId: INSTANCE, Payload: payload }));
    expect(err.code).toBe('MissingMqttTopic');
  });

  it('answers SendMessageFailed (417) when the hook rejects', async () => {
    const failing = await emulator(testScenario(), { onSendMessage: () => Promise.reject(new Error('broker down')) });
    const err = await popError(mqttClient(failing.url).request('SendMessage', { InstanceId: INSTANCE, MqttTopic: 't', Payload: 'eA==' }));
    expect(err.code).toBe('SendMessageFailed');
    expect(err.entry.response.statusCode).toBe(417);
  });
});

describe('partial answers (partial_answers)', () => {
  const batchOf = async (e: Emulator, list: string[]): Promise<BatchAnswer> =>
    mqttClient(e.url).request<BatchAnswer>('BatchQuerySessionByClientIds', { InstanceId: INSTANCE, ClientIdList: list }, { method: 'POST' });
  const withPartial = (partial: Record<string, unknown>) =>
    emulator(testScenario((s) => void (s.mqtt.instances[0]!.partial_answers = partial as (typeof s.mqtt.instances)[0]['partial_answers'])));

  it('leaves out the omitted IDs and adds the extra ones; the truth stays complete; a single query answers without OnlineStatus', async () => {
    const e = await withPartial({ omit: [ids(1, 4)[0]], extra: ['GID_test@@@always-on', 'GID_gateway@@@gw-000001'] });
    const truth = (await truthOf(e)).mqtt[INSTANCE]!;
    const r = await batchOf(e, [...ids(9), 'GID_gateway@@@gw-000001']);
    expect(r.OnlineStatusList.map((x) => x.ClientId)).toEqual([...ids(3), ...ids(5, 5), 'GID_gateway@@@gw-000001', 'GID_test@@@always-on']);
    for (const x of r.OnlineStatusList) expect(x.OnlineStatus).toBe(truth[x.ClientId]);
    expect(Object.keys(truth)).toContain(ids(1, 4)[0]);
    const single = await mqttClient(e.url).request<Record<string, unknown>>('QuerySessionByClientId', { InstanceId: INSTANCE, ClientId: ids(1, 4)[0] });
    expect(Object.keys(single)).toEqual(['RequestId']);
    expect(mqttOf(e).partialAnswers(INSTANCE)).toMatchObject({ omitted: 2, added: 1 });
  });

  it('are replaced at runtime through the admin API (validated like the scenario) and by mqttOf().setPartialAnswers', async () => {
    const e = await withPartial({});
    expect((await batchOf(e, ids(10))).OnlineStatusList).toHaveLength(10);
    const set = await adminPost<Record<string, unknown>>(e.url, `mqtt/${INSTANCE}/partial_answers`, { omit: [ids(1)[0]] });
    expect(set.status).toBe(200);
    expect(set.json).toEqual({ omit: [ids(1)[0]], extra: [], omit_rate: 0, extra_rate: 0, omitted: 0, added: 0 });
    expect((await batchOf(e, ids(10))).OnlineStatusList.map((x) => x.ClientId)).toEqual(ids(9, 2));
    expect((await adminGet<{ omitted: number }>(e.url, `mqtt/${INSTANCE}/partial_answers`)).omitted).toBe(1);
    const bad = await adminPost<{ error: string }>(e.url, `mqtt/${INSTANCE}/partial_answers`, { omit_rate: 2, skip: [] });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/omit_rate.*1.*skip: unknown key|skip: unknown key.*omit_rate/);
    expect((await adminPost<{ error: string }>(e.url, 'mqtt/post-cn-nope/partial_answers', {})).json.error).toMatch(/no MQTT instance "post-cn-nope"/);
    mqttOf(e).setPartialAnswers(INSTANCE, {});
    expect((await batchOf(e, ids(10))).OnlineStatusList).toHaveLength(10);
  });

  it('omit_rate and extra_rate draw per ID and per answer, the same way for the same seed', async () => {
    const draw = async () => {
      const e = await withPartial({ omit_rate: 0.2, extra_rate: 0.5 });
      const answers = [];
      for (let k = 0; k < 20; k++) answers.push((await batchOf(e, ids(10, 1 + k * 2))).OnlineStatusList.map((x) => x.ClientId));
      return { answers, state: mqttOf(e).partialAnswers(INSTANCE) };
    };
    const a = await draw();
    expect(await draw()).toEqual(a);
    const unrequested = a.answers.flat().filter((id) => id.includes('@@@unrequested-'));
    expect(unrequested.length).toBe(a.state.added);
    expect(a.state.added).toBeGreaterThan(3);
    expect(a.state.added).toBeLessThan(17);
    expect(a.state.omitted).toBeGreaterThan(20);
    expect(a.state.omitted).toBeLessThan(60);
    expect(a.answers.flat().length).toBe(200 - a.state.omitted + a.state.added);
  });
});

describe('rate window', () => {
  it('lets exactly 100 of 150 simultaneous Batch calls through and answers SystemOverFlow (403) to the rest', async () => {
    // A frozen clock puts every arrival in the same window, whatever the machine's speed.
    const frozen = Date.now();
    const emu = await emulator(testScenario(), { now: () => frozen });
    const client = mqttClient(emu.url);
    const results = await Promise.allSettled(
      Array.from({ length: 150 }, () =>
        client.request('BatchQuerySessionByClientIds', { InstanceId: INSTANCE, ClientIdList: ids(10) }, { method: 'POST' }),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as PopError);
    expect(ok).toBe(100);
    expect(refused).toHaveLength(50);
    for (const e of refused) {
      expect(e.code).toBe('SystemOverFlow');
      expect(e.entry.response.statusCode).toBe(403);
    }
    const stats = await adminGet<EmulatorStats>(emu.url, 'stats');
    const batch = stats.apis.BatchQuerySessionByClientIds;
    expect(batch).toMatchObject({ calls: 150, ok: 100, throttled: 50, busiest_window: 100, busiest_window_with_throttled: 150, largest_batch: 10 });
    expect(batch?.accounts['aliyun-test']?.throttled).toBe(50);
    // Other APIs have their own windows.
    await client.request('QuerySessionByClientId', { InstanceId: INSTANCE, ClientId: 'x' });
    await adminPost(emu.url, 'stats/reset', {});
    expect(emu.stats().apis).toEqual({});
  });

  it('admits again once the window has slid, and honours scenario overrides', async () => {
    let t = Date.now();
    const emu = await emulator(testScenario((s) => (s.rate_limits = { QuerySessionByClientId: 3 })), { now: () => t });
    const client = mqttClient(emu.url);
    const q = (): Promise<unknown> => client.request('QuerySessionByClientId', { InstanceId: INSTANCE, ClientId: 'x' });
    for (let i = 0; i < 3; i++) await q();
    expect((await popError(q())).code).toBe('SystemOverFlow');
    t += 999;
    expect((await popError(q())).code).toBe('SystemOverFlow');
    t += 1;
    await q();
    expect(emu.stats().apis.QuerySessionByClientId).toMatchObject({ calls: 6, ok: 4, throttled: 2, busiest_window: 3 });
  });
});

describe('churn', () => {
  it('flips about churn_per_minute of the fleet per minute, deterministically from the seed', async () => {
    let t = Date.UTC(2024, 0, 1);
    const scenario = oneFleetScenario('post-cn-churn', { group_id: 'GID_c', size: 20_000, online_ratio: 0.8, churn_per_minute: 0.05 });
    const a = await emulator(scenario, { now: () => t });
    const b = await emulator(scenario, { now: () => t });
    const snap = async (e: Emulator): Promise<Record<string, boolean>> => (await truthOf(e)).mqtt['post-cn-churn'] ?? {};
    const first = await snap(a);
    expect(await snap(b)).toEqual(first);
    const online = Object.values(first).filter(Boolean).length;
    expect(online / 20_000).toBeGreaterThan(0.78);
    expect(online / 20_000).toBeLessThan(0.82);
    t += 60_000;
    const second = await snap(a);
    const flipped = Object.keys(first).filter((id) => first[id] !== second[id]).length;
    expect(flipped / 20_000).toBeGreaterThan(0.04);
    expect(flipped / 20_000).toBeLessThan(0.06);
  });

  it('answers for a fleet of a million devices without materialising it', async () => {
    const scenario = oneFleetScenario('post-cn-huge', { group_id: 'GID_huge', size: 1_000_000, online_ratio: 0.5, churn_per_minute: 0.01 });
    const emu = await emulator(scenario);
    const r = await mqttClient(emu.url).request<BatchAnswer>('BatchQuerySessionByClientIds', {
      InstanceId: 'post-cn-huge',
      ClientIdList: ['GID_huge@@@dev-1000000', 'GID_huge@@@dev-0000001', 'GID_huge@@@dev-1000001'],
    });
    expect(r.OnlineStatusList.map((e) => typeof e.OnlineStatus)).toEqual(['boolean', 'boolean', 'boolean']);
    expect(r.OnlineStatusList[2]?.OnlineStatus).toBe(false);
    mqttOf(emu).setOnline('post-cn-huge', 'GID_huge@@@dev-0500000', true);
    mqttOf(emu).setOnline('post-cn-huge', 'GID_huge@@@dev-0500001', false);
    const flipped = await mqttClient(emu.url).request<BatchAnswer>('BatchQuerySessionByClientIds', {
      InstanceId: 'post-cn-huge',
      ClientIdList: ['GID_huge@@@dev-0500000', 'GID_huge@@@dev-0500001'],
    });
    expect(flipped.OnlineStatusList.map((e) => e.OnlineStatus)).toEqual([true, false]);
  });
});
