// ApplyToken and Token-mode sign-in at the emulator, with the real pop-core and mqtt.js: what ApplyToken accepts and
// answers, which tokens the broker lets in and what they may subscribe to, the expiry and invalid-token notices, the
// $SYS/uploadToken update, expiry and revocation ending a connection, and sign-ins counted by mode.
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, test } from 'vitest';
import { mqttOf } from '../../emulator/apis/mqtt';
import { signatureCredentials } from '../../emulator/broker/auth';
import type { Emulator } from '../../emulator/server';
import { ALIYUN, emulator } from '../helpers/harness';
import { INSTANCE, probeScenario, waitFor } from '../apis/aliyun-mqtt-probe/helpers';
import { adminPost, mqttClient, popError } from './helpers';

const OTHER_KEY = { ...ALIYUN, access_key_id: 'LTAI-other-key-id', access_key_secret: 'other-secret-0123456789' };
const CLIENT_ID = 'GID_probe@@@token-1';
const clients: MqttClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
});

function scenario(maxValiditySeconds?: number) {
  return probeScenario({
    credentials: [ALIYUN, OTHER_KEY],
    mqtt: { instances: [{ instance_id: INSTANCE, region: 'cn-hangzhou' }, { instance_id: 'post-cn-probe0002' }], ...(maxValiditySeconds ? { token_max_validity: maxValiditySeconds } : {}) },
  });
}

interface Apply {
  Resources?: string;
  Actions?: string;
  ExpireTime?: number | string;
  InstanceId?: string;
}

/** ApplyToken through pop-core, signed with `key` (default the scenario's first key). */
function applyToken(emu: Emulator, params: Apply, key = ALIYUN): Promise<{ Token: string; RequestId: string }> {
  const client = mqttClient(emu.url, { accessKeyId: key.access_key_id, accessKeySecret: key.access_key_secret });
  const full = { Resources: 'canary/probe', Actions: 'R', ExpireTime: Date.now() + 3_600_000, InstanceId: INSTANCE, ...params };
  return client.request('ApplyToken', Object.fromEntries(Object.entries(full).filter(([, v]) => v !== undefined)), { method: 'POST' }) as Promise<{ Token: string; RequestId: string }>;
}

const tokenLogin = (token: string, key = ALIYUN.access_key_id, instance = INSTANCE, type = 'R') => ({ username: `Token|${key}|${instance}`, password: `${type}|${token}` });

/** Resolves with the client once connected, or the CONNACK refusal's return code. */
function connect(emu: Emulator, opts: mqtt.IClientOptions, clientId = CLIENT_ID): Promise<MqttClient | number> {
  return new Promise((resolve) => {
    const c = mqtt.connect(mqttOf(emu).broker!.url, { protocolVersion: 4, clientId, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    clients.push(c);
    c.once('connect', () => resolve(c));
    c.once('error', (err: Error & { code?: number }) => resolve(err.code ?? -1));
  });
}

/** Messages a client receives, by topic, as parsed JSON where they are JSON. */
function inbox(c: MqttClient): Array<{ topic: string; body: unknown }> {
  const got: Array<{ topic: string; body: unknown }> = [];
  c.on('message', (topic, payload) => {
    let body: unknown = payload.toString();
    try {
      body = JSON.parse(payload.toString());
    } catch {
      // not JSON
    }
    got.push({ topic, body });
  });
  return got;
}

/** The QoS the broker granted a subscription, 128 when it refused it. */
const granted = (c: MqttClient, topic: string): Promise<number> =>
  // On a refusal mqtt.js hands back the requested QoS; the SUBACK's own code is in the error's packet.
  new Promise((resolve) => c.subscribe(topic, { qos: 1 }, (err, g) => resolve((err as { packet?: { granted?: number[] } } | null)?.packet?.granted?.[0] ?? g?.[0]?.qos ?? -1)));
const closed = (c: MqttClient): Promise<void> => new Promise((r) => (c.disconnected ? r() : c.once('close', () => r())));

describe('ApplyToken (emulated)', () => {
  test('answers {RequestId, Token}; checks its parameters and the instance; a validity beyond the maximum is cut, not refused', async () => {
    const emu = await emulator(scenario(30));
    const before = Date.now();
    const answer = await applyToken(emu, { Resources: 'canary/+,other/#', Actions: 'R,W', ExpireTime: before + 86_400_000 });
    expect(Object.keys(answer).sort()).toEqual(['RequestId', 'Token']);
    expect(answer.Token).toMatch(/^[A-Za-z0-9+/]{200,}={0,2}$/);
    const issued = mqttOf(emu).tokens.lookup(answer.Token)!;
    expect(issued).toMatchObject({ instanceId: INSTANCE, accessKeyId: ALIYUN.access_key_id, resources: ['canary/+', 'other/#'], type: 'RW', revoked: false });
    // Asked for a day, cut to the scenario's 30 s.
    expect(issued.expiresAt).toBeGreaterThanOrEqual(before + 30_000);
    expect(issued.expiresAt).toBeLessThanOrEqual(Date.now() + 30_000);
    // The key that signed is the one the token is bound to.
    expect(mqttOf(emu).tokens.lookup((await applyToken(emu, {}, OTHER_KEY)).Token)?.accessKeyId).toBe(OTHER_KEY.access_key_id);

    const code = async (p: Apply) => {
      const err = await popError(applyToken(emu, p));
      return [err.code, err.entry.response.statusCode, String(err.data.Message)];
    };
    expect(await code({ Resources: undefined })).toEqual(['MissingResources', 400, 'Resources is mandatory for this action.']);
    expect(await code({ Actions: undefined })).toEqual(['MissingActions', 400, expect.any(String)]);
    expect(await code({ ExpireTime: undefined })).toEqual(['MissingExpireTime', 400, expect.any(String)]);
    expect(await code({ Actions: 'RW' })).toEqual(['ParameterCheckFailed', 400, expect.stringContaining('Actions must be R, W or R,W, not "RW"')]);
    expect(await code({ ExpireTime: 'tomorrow' })).toEqual(['ParameterCheckFailed', 400, expect.stringContaining('ExpireTime must be a timestamp in milliseconds')]);
    expect(await code({ ExpireTime: Date.now() + 30_000 })).toEqual(['ParameterCheckFailed', 400, expect.stringContaining('at least 60 seconds from now')]);
    expect(await code({ Resources: 'b,a' })).toEqual(['ParameterCheckFailed', 400, expect.stringContaining('alphabetical order')]);
    expect(await code({ Resources: 'canary/#/x' })).toEqual(['ParameterCheckFailed', 400, expect.stringContaining('"canary/#/x" is not a topic')]);
    expect(await code({ Resources: Array.from({ length: 101 }, (_, i) => `t${String(i).padStart(3, '0')}`).join(',') })).toEqual(['ParameterCheckFailed', 400, expect.stringContaining('at most 100')]);
    expect(await code({ InstanceId: 'post-cn-nowhere' })).toEqual(['MqttInstanceNotFound', 400, expect.any(String)]);
    expect(emu.stats().apis.ApplyToken).toMatchObject({ calls: 12, ok: 2 });
  });

  test('its documented 100 QPS per account is the default limit; beyond it SystemOverFlow (403)', async () => {
    const emu = await emulator(scenario());
    const results = await Promise.allSettled(Array.from({ length: 110 }, () => applyToken(emu, {})));
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as { code: string; entry: { response: { statusCode: number } } });
    expect(results.filter((r) => r.status === 'fulfilled').length).toBe(100);
    expect(refused.map((e) => [e.code, e.entry.response.statusCode])).toEqual(Array.from({ length: 10 }, () => ['SystemOverFlow', 403]));
  });
});

describe('Token-mode sign-in at the embedded broker', () => {
  test('a valid R token signs in and subscribes within its resources only; every kind of wrong token is refused with CONNACK 4', async () => {
    const emu = await emulator(scenario());
    const broker = mqttOf(emu).broker!;
    const r = (await applyToken(emu, { Resources: 'canary/probe,fleet/+' })).Token;
    const c = (await connect(emu, tokenLogin(r))) as MqttClient;
    expect(c).not.toBeTypeOf('number');
    expect(await granted(c, 'canary/probe')).toBe(1);
    expect(await granted(c, 'fleet/a')).toBe(1);
    // Outside the resources, or wider than them: the subscription is refused (SUBACK 0x80), the connection stays.
    expect(await granted(c, 'canary/other')).toBe(128);
    expect(await granted(c, 'fleet/#')).toBe(128);
    expect(c.connected).toBe(true);

    const w = (await applyToken(emu, { Actions: 'W' })).Token;
    const writer = (await connect(emu, tokenLogin(w, ALIYUN.access_key_id, INSTANCE, 'W'), 'GID_probe@@@writer')) as MqttClient;
    expect(await granted(writer, 'canary/probe')).toBe(128);

    const refusedBefore = broker.stats().refused;
    const other = (await applyToken(emu, {}, OTHER_KEY)).Token;
    const rw = (await applyToken(emu, { Actions: 'R,W' })).Token;
    const wrong: Array<[string, mqtt.IClientOptions]> = [
      ['a token nobody issued', tokenLogin('bm90LWEtdG9rZW4=')],
      ['a token of another AccessKey', tokenLogin(other)],
      ['the right token named with another AccessKey', tokenLogin(r, OTHER_KEY.access_key_id)],
      ['another instance', tokenLogin(r, ALIYUN.access_key_id, 'post-cn-probe0002')],
      ['an RW token presented as R', tokenLogin(rw)],
      ['a W token presented as R', tokenLogin(w)],
      ['one valid token and one forged', { ...tokenLogin(r), password: `R|${r}|W|forged` }],
      ['a password that is not type|token pairs', { ...tokenLogin(r), password: r }],
      ['the same type twice', { ...tokenLogin(r), password: `R|${r}|R|${r}` }],
    ];
    for (const [what, login] of wrong) expect(await connect(emu, login, 'GID_probe@@@wrong'), what).toBe(4);
    expect(broker.stats().refused - refusedBefore).toBe(wrong.length);
    // Both tokens valid: in.
    expect(await connect(emu, { ...tokenLogin(r), password: `W|${w}|R|${r}` }, 'GID_probe@@@both')).not.toBeTypeOf('number');
    expect(broker.stats().sign_ins).toEqual({ signature: 0, token: 3 });
    // Signature mode alongside.
    expect(await connect(emu, signatureCredentials(ALIYUN.access_key_id, ALIYUN.access_key_secret, INSTANCE, 'GID_probe@@@sig'), 'GID_probe@@@sig')).not.toBeTypeOf('number');
    expect(broker.stats().sign_ins).toEqual({ signature: 1, token: 3 });
  });

  test('an expiring token: the expiry notice at once (under 5 minutes left), then the invalid notice (code 2) and the end of the connection; an expired token cannot sign in', async () => {
    const emu = await emulator(scenario(2));
    const token = (await applyToken(emu, {})).Token;
    const expiresAt = mqttOf(emu).tokens.lookup(token)!.expiresAt;
    const c = (await connect(emu, tokenLogin(token))) as MqttClient;
    const got = inbox(c);
    await waitFor('the expiry notice', () => got.length >= 1, 1500);
    expect(got[0]).toEqual({ topic: '$SYS/tokenExpireNotice', body: { expireTime: expiresAt, type: 'R' } });
    await closed(c);
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt - 50);
    expect(got).toEqual([
      { topic: '$SYS/tokenExpireNotice', body: { expireTime: expiresAt, type: 'R' } },
      { topic: '$SYS/tokenInvalidNotice', body: { code: 2, type: 'R' } },
    ]);
    expect(mqttOf(emu).broker!.stats().token_disconnects).toBe(1);
    expect(await connect(emu, tokenLogin(token))).toBe(4);
  });

  test('$SYS/uploadToken replaces the token over the connection (PUBACK, no disconnect at the old expiry, not forwarded); an update the broker cannot accept ends the connection', async () => {
    const emu = await emulator(scenario(2));
    const first = (await applyToken(emu, {})).Token;
    const c = (await connect(emu, tokenLogin(first))) as MqttClient;
    const got = inbox(c);
    // A subscriber of the update topic itself sees no token update.
    const watcher = (await connect(emu, signatureCredentials(ALIYUN.access_key_id, ALIYUN.access_key_secret, INSTANCE, 'GID_probe@@@watcher'), 'GID_probe@@@watcher')) as MqttClient;
    const watched = inbox(watcher);
    expect(await granted(watcher, '$SYS/uploadToken')).toBe(1);
    await c.subscribeAsync('canary/probe', { qos: 1 });

    await new Promise((r) => setTimeout(r, 1000));
    const second = (await applyToken(emu, {})).Token;
    await c.publishAsync('$SYS/uploadToken', JSON.stringify({ token: second, type: 'R' }), { qos: 1 });
    // Past the first token's expiry: still connected, and still receiving.
    await new Promise((r) => setTimeout(r, 1500));
    expect(c.connected).toBe(true);
    await mqttOf(emu).broker!.publish({ instanceId: INSTANCE, topic: 'canary/probe', payload: 'aGk=' });
    await waitFor('delivery', () => got.some((m) => m.topic === 'canary/probe'), 1000);
    expect(mqttOf(emu).broker!.stats().token_updates).toBe(1);
    // One expiry notice per token: the first's and the second's.
    expect(got.filter((m) => m.topic === '$SYS/tokenExpireNotice').map((m) => (m.body as { expireTime: number }).expireTime)).toEqual([
      mqttOf(emu).tokens.lookup(first)!.expiresAt,
      mqttOf(emu).tokens.lookup(second)!.expiresAt,
    ]);
    expect(watched).toEqual([]);

    // A token applied with another AccessKey than the connection's: told (code -1), then closed.
    const foreign = (await applyToken(emu, {}, OTHER_KEY)).Token;
    c.publish('$SYS/uploadToken', JSON.stringify({ token: foreign, type: 'R' }), { qos: 1 });
    await closed(c);
    expect(got.at(-1)).toEqual({ topic: '$SYS/tokenInvalidNotice', body: { code: -1, type: 'R' } });
  });

  test('revoked tokens: a connection holding one is told (code 3) and closed; signing in with one is refused', async () => {
    const emu = await emulator(scenario());
    const token = (await applyToken(emu, {})).Token;
    const c = (await connect(emu, tokenLogin(token))) as MqttClient;
    const got = inbox(c);
    expect(mqttOf(emu).revokeTokens(INSTANCE)).toBe(1);
    await closed(c);
    expect(got).toEqual([{ topic: '$SYS/tokenInvalidNotice', body: { code: 3, type: 'R' } }]);
    expect(await connect(emu, tokenLogin(token))).toBe(4);
    // The same through the admin endpoint, for a fresh token.
    const again = (await applyToken(emu, {})).Token;
    expect(await connect(emu, tokenLogin(again))).not.toBeTypeOf('number');
    expect(await adminPost(emu.url, 'broker/revoke_tokens', { instance_id: INSTANCE })).toEqual({ status: 200, json: { revoked: 1 } });
    expect(await connect(emu, tokenLogin(again), 'GID_probe@@@token-2')).toBe(4);
  });
});
