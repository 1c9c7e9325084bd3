// aliyun_mqtt_probe in Token mode against the emulator, with the real pop-core, mqtt.js and the emulator's broker:
// role credentials (no long-term AccessKey) for minutes of rotating credentials and tokens with every probe
// received; a token renewed over the connection; a revoked token refused (SubscriberAuthFailed) and replaced; ApplyToken
// refused (its code counted) and recovered; Signature mode untouched.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { mqttOf } from '../../../emulator/apis/mqtt';
import type { Emulator } from '../../../emulator/server';
import { ALIYUN, appFromYaml, emulator, parseExposition, tempDir } from '../../helpers/harness';
import { findSecretLeaks } from '../../helpers/secrets';
import { makeOidcToken } from '../../credentials/helpers';
import { ENV, INSTANCE, LOST_CONNECTION, TOPIC, logged, metric, probeConfig, probeScenario, probeState, runProbe as run, subscribeTo, waitFor } from './helpers';

/** How long the role-credentials test probes: 130 s in `npm test`; shorter while working on it (CSE_TOKEN_E2E_SECONDS). */
const PROBE_SECONDS = Number(process.env.CSE_TOKEN_E2E_SECONDS ?? 130);
const ROLE = 'acs:ram::1234567890:role/cse-canary';
const OIDC = 'acs:ram::1234567890:oidc-provider/ack-rrsa-canary';
const CLIENT_ID = 'GID_probe@@@token-1';
const SUBSCRIBE = (emu: Emulator, extra: Record<string, string> = {}) => subscribeTo(emu, 'token-1', extra);

/** Every error counter of the canary that is not zero, by code. */
function errorsByCode(text: string): Record<string, number> {
  const m = parseExposition(text);
  return Object.fromEntries(m.samples.filter((s) => s.name === 'aliyun_mqtt_probe_errors_total' && s.value > 0).map((s) => [s.labels.code, s.value]));
}

/** ApplyToken calls the exporter made, by result code. */
function applyTokenCalls(text: string): Record<string, number> {
  const m = parseExposition(text);
  return Object.fromEntries(m.samples.filter((s) => s.name === 'cloud_session_exporter_api_requests_total' && s.labels.api === 'ApplyToken').map((s) => [s.labels.code, s.value]));
}

describe('aliyun_mqtt_probe in Token mode', () => {
  test(`role credentials, no long-term key: ${PROBE_SECONDS} s of 20 s credentials and 30 s tokens, every probe received, the token renewed over the connection and by reconnecting between probes`, async () => {
    const emu = await emulator(
      probeScenario({
        identity: { ttl: 20, aliyun: { roles: [{ arn: ROLE, account: ALIYUN.account }], oidc_providers: [{ arn: OIDC, client_ids: ['sts.aliyuncs.com'] }] } },
        mqtt: { instances: [{ instance_id: INSTANCE, region: 'cn-hangzhou' }], token_max_validity: 30 },
      }),
    );
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'oidc-token'), makeOidcToken({ sub: 'system:serviceaccount:monitoring:cse', aud: 'sts.aliyuncs.com', exp: Math.floor(Date.now() / 1000) + 3600 }));
    // The default for an account without a long-term AccessKey is Token mode: no `auth:` key. token_ttl is the
    // documented minimum; the emulator grants 30 s, which the exporter learns from the broker's expiry notice.
    const yaml = `
accounts:
  - name: canary-role
    provider: aliyun
    credentials: {type: oidc_role_arn, role_arn: "${ROLE}", oidc_provider_arn: "${OIDC}", oidc_token_file: oidc-token, sts_endpoint: "${emu.url}"}
jobs:
  - name: canary
    type: aliyun_mqtt_probe
    account: canary-role
    schedule: "*/2 * * * * *"
    timeout: 1500ms
    region: cn-hangzhou
    endpoint: ${emu.url}
    instance_id: ${INSTANCE}
    topic: ${TOPIC}
    subscribe: {url: "${mqttOf(emu).broker!.url}", group_id: GID_probe, device_id: token-1, token_ttl: 60s}
`;
    const t = appFromYaml(yaml, {}, {}, dir);
    t.app.start();
    await waitFor('the first probe', async () => (metric(await t.scrape(), 'aliyun_mqtt_probe_sent_total') ?? 0) >= 1, 15_000);
    await new Promise((r) => setTimeout(r, PROBE_SECONDS * 1000));
    await t.app.stop(5000);
    const text = await t.scrape();
    const m = parseExposition(text);
    const broker = mqttOf(emu).broker!.stats();
    const tokens = mqttOf(emu).tokens.all();
    const stsKeys = new Set(tokens.map((x) => x.accessKeyId));
    const summary = { probe: probeState(text), errors: errorsByCode(text), applyToken: applyTokenCalls(text), broker, tokens: tokens.length, stsKeysOfTokens: stsKeys.size };
    console.log(`Token mode over ${PROBE_SECONDS} s: ${JSON.stringify(summary)}`);

    const runs = (result: string) => m.value('cloud_session_exporter_job_runs_total', { job_name: 'canary', result }) ?? 0;
    expect(runs('failure')).toBe(0);
    expect(runs('success')).toBeGreaterThanOrEqual(PROBE_SECONDS / 2 - 3);
    // Every probe sent was received; none lost; no error of any code.
    const state = probeState(text);
    expect(state.sent).toBe(runs('success'));
    expect(state).toMatchObject({ received: state.sent, lost: 0, delivered: state.sent });
    expect(summary.errors).toEqual({});
    // Tokens: the first asked for 70 s and granted 30 s, renewed at once; then one per 20 s (a third of 30 s left).
    const expected = 2 + Math.floor((PROBE_SECONDS - 5) / 20);
    expect(summary.applyToken).toEqual({ OK: tokens.length });
    expect(tokens.length).toBeGreaterThanOrEqual(expected - 1);
    expect(tokens.length).toBeLessThanOrEqual(expected + 2);
    expect(emu.stats().apis.ApplyToken).toMatchObject({ calls: tokens.length, ok: tokens.length, throttled: 0 });
    // Each token bound to the STS key that applied for it: several keys over the run, as credentials rotated.
    expect([...stsKeys].every((k) => k.startsWith('STS.'))).toBe(true);
    expect(stsKeys.size).toBeGreaterThanOrEqual(3);
    // Both ways of putting a new token in force were used, and no connection ended for its token.
    expect(broker.token_updates).toBeGreaterThanOrEqual(1);
    expect(broker.sign_ins.token).toBeGreaterThanOrEqual(3);
    expect(broker.sign_ins.signature).toBe(0);
    expect(broker.token_disconnects).toBe(0);
    expect(broker.refused).toBe(0);
    expect(logged(t, LOST_CONNECTION)).toBe(0);
    // Nothing refused at the gateway (expired STS tokens among them).
    expect(Object.values(emu.stats().apis).every((a) => Object.keys(a.signature_failures).length === 0)).toBe(true);
    // No token and no credential in a log line or the exposition.
    const secrets: Record<string, string> = {};
    tokens.forEach((x, i) => (secrets[`token${i}`] = x.token));
    for (const c of emu.identity!.store.all()) Object.assign(secrets, { [`${c.keyId}.secret`]: c.secret, [`${c.keyId}.token`]: c.token });
    expect(findSecretLeaks(`${t.logs.join('\n')}\n${text}`, secrets)).toEqual([]);
  }, (PROBE_SECONDS + 60) * 1000);

  test('a static AccessKey with auth: token: each new token goes over the connection ($SYS/uploadToken), one sign-in for the whole run, every probe received', async () => {
    const emu = await emulator(probeScenario({ mqtt: { instances: [{ instance_id: INSTANCE, region: 'cn-hangzhou' }], token_max_validity: 3 } }));
    const t = appFromYaml(probeConfig({ endpoint: emu.url, subscribe: SUBSCRIBE(emu, { auth: 'token', token_ttl: '10m' }), timeout: '1s' }), ENV);
    const started = Date.now();
    let text = '';
    while (Date.now() - started < 10_000) {
      text = await run(t);
      await new Promise((r) => setTimeout(r, 400));
    }
    const broker = mqttOf(emu).broker!.stats();
    const tokens = mqttOf(emu).tokens.all();
    expect(probeState(text)).toMatchObject({ success: 1, lost: 0, connected: 1 });
    expect(metric(text, 'aliyun_mqtt_probe_received_total')).toBe(metric(text, 'aliyun_mqtt_probe_sent_total'));
    expect(errorsByCode(text)).toEqual({});
    // 3 s tokens renewed 1 s before expiry: about one every 2 s, all by the account's key, all but the first uploaded.
    expect(tokens.length).toBeGreaterThanOrEqual(4);
    expect(new Set(tokens.map((x) => x.accessKeyId))).toEqual(new Set([ALIYUN.access_key_id]));
    expect(broker.sign_ins).toEqual({ signature: 0, token: 1 });
    expect(broker.token_updates).toBeGreaterThanOrEqual(tokens.length - 2);
    expect(broker.token_disconnects).toBe(0);
    expect(mqttOf(emu).broker!.connectedClients(INSTANCE)).toEqual([CLIENT_ID]);
  }, 30_000);

  test('a token revoked while the connection was down: the broker refuses it (SubscriberAuthFailed), the next sign-in applies for a new one', async () => {
    const emu = await emulator(probeScenario());
    const t = appFromYaml(probeConfig({ endpoint: emu.url, subscribe: SUBSCRIBE(emu, { auth: 'token' }), timeout: '1s' }), ENV);
    expect(probeState(await run(t))).toMatchObject({ success: 1, received: 1 });
    expect(mqttOf(emu).tokens.all()).toHaveLength(1);

    expect(mqttOf(emu).broker!.disconnectClient(INSTANCE, CLIENT_ID)).toBe(true);
    await waitFor('the exporter to see the drop', () => logged(t, LOST_CONNECTION) === 1);
    expect(mqttOf(emu).revokeTokens(INSTANCE)).toBe(1);
    // The reconnect (after ~1 s) signs in with the token it holds, revoked meanwhile: CONNACK 4.
    await waitFor('the refused sign-in', () => mqttOf(emu).broker!.stats().refused === 1, 5000);
    const refused = await run(t);
    expect(metric(refused, 'aliyun_mqtt_probe_success')).toBe(0);
    expect(errorsByCode(refused)).toEqual({ SubscriberAuthFailed: 1 });

    // The next attempt (~2 s of backoff) applies for a new token first, and gets in.
    await waitFor('the subscriber to sign in again', () => mqttOf(emu).broker!.isConnected(INSTANCE, CLIENT_ID), 8000);
    expect(mqttOf(emu).tokens.all()).toHaveLength(2);
    const recovered = await run(t);
    expect(probeState(recovered)).toMatchObject({ success: 1, connected: 1 });
    expect(mqttOf(emu).broker!.stats().sign_ins.token).toBe(2);
  });

  test('a token revoked while connected: the broker says so ($SYS/tokenInvalidNotice, code 3) and closes; the reconnect applies for a new token first, never refused', async () => {
    const emu = await emulator(probeScenario());
    const t = appFromYaml(probeConfig({ endpoint: emu.url, subscribe: SUBSCRIBE(emu, { auth: 'token' }), timeout: '1s' }), ENV);
    expect(probeState(await run(t))).toMatchObject({ success: 1, received: 1 });
    expect(mqttOf(emu).revokeTokens(INSTANCE)).toBe(1);
    await waitFor('the exporter to see the drop', () => logged(t, LOST_CONNECTION) === 1);
    const notice = t.logs.map((l) => JSON.parse(l) as { msg: string; code?: string; reason?: string }).find((l) => l.msg.includes('holds the MQTT token not valid'));
    expect(notice).toMatchObject({ code: '3', reason: 'revoked' });
    await waitFor('the subscriber to sign in again', () => mqttOf(emu).broker!.isConnected(INSTANCE, CLIENT_ID), 5000);
    expect(mqttOf(emu).tokens.all()).toHaveLength(2);
    expect(mqttOf(emu).broker!.stats()).toMatchObject({ refused: 0, token_disconnects: 1, sign_ins: { signature: 0, token: 2 } });
    // The drop healed between two probes: counted, and the next probe succeeds.
    const next = await run(t);
    expect(probeState(next)).toMatchObject({ success: 1, received: 2 });
    expect(errorsByCode(next)).toEqual({ SubscriberDisconnected: 1 });
  });

  test('ApplyToken refused: the probe fails with the cloud\'s code counted and says why; once it answers again, the subscriber signs in', async () => {
    const emu = await emulator(probeScenario());
    emu.setFaults({ ApplyToken: { error_rates: { InstancePermissionCheckFailed: 1 } } });
    const t = appFromYaml(probeConfig({ endpoint: emu.url, subscribe: SUBSCRIBE(emu, { auth: 'token' }), timeout: '1s' }), ENV);
    const failed = await run(t);
    expect(metric(failed, 'aliyun_mqtt_probe_success')).toBe(0);
    expect(errorsByCode(failed)).toMatchObject({ InstancePermissionCheckFailed: 1, SubscriberDisconnected: 1 });
    const failure = t.logs.map((l) => JSON.parse(l) as { msg: string; err?: { message: string; codes: string[] } }).filter((l) => l.msg.startsWith('poll failed')).at(-1)!.err!;
    expect(failure.codes).toEqual(['SubscriberDisconnected']);
    expect(failure.message).toMatch(/the MQTT subscriber was not connected when the probe was sent \(SubscriberDisconnected; it could not sign in: .*ApplyToken failed: InstancePermissionCheckFailed/);
    // SendMessage works meanwhile: the message went out and was lost to the missing subscription.
    expect(probeState(failed)).toMatchObject({ sent: 1, lost: 1 });

    emu.setFaults({});
    await waitFor('the subscriber to sign in', () => mqttOf(emu).broker!.isConnected(INSTANCE, CLIENT_ID), 8000);
    const ok = await run(t);
    expect(probeState(ok)).toMatchObject({ success: 1, connected: 1 });
    // Every refused ApplyToken was counted once, under its code.
    const calls = applyTokenCalls(ok);
    expect(errorsByCode(ok).InstancePermissionCheckFailed).toBe(calls.InstancePermissionCheckFailed);
    expect(calls.OK).toBe(1);
  });
});
