import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import { startEmulator, type Emulator } from '../../emulator/server';
import { mqttClient, popClient, popError, rawRequest, testScenario } from './helpers';

const INSTANCE = 'post-cn-test0001';

// An independent signer, written from the wire-protocol notes rather than from the emulator's code.
const pct = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
function signedQuery(pairs: [string, string][], secret: string): string {
  const canon = pairs
    .map(([k, v]) => [pct(k), pct(v)])
    .sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const sig = crypto.createHmac('sha1', `${secret}&`).update(`GET&%2F&${pct(canon)}`).digest('base64');
  return `${canon}&Signature=${pct(sig)}`;
}
function baseParams(nonce: string, timestamp = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')): [string, string][] {
  return [
    ['AccessKeyId', 'LTAI-test-key'],
    ['Action', 'QuerySessionByClientId'],
    ['ClientId', 'GID_test@@@always-on'],
    ['Format', 'JSON'],
    ['InstanceId', INSTANCE],
    ['SignatureMethod', 'HMAC-SHA1'],
    ['SignatureNonce', nonce],
    ['SignatureVersion', '1.0'],
    ['Timestamp', timestamp],
    ['Version', '2020-04-20'],
  ];
}

describe('Alibaba POP Signature v1 against the real pop-core', () => {
  let emu: Emulator;
  let skewed: Emulator;

  beforeAll(async () => {
    emu = await startEmulator({ scenario: testScenario() });
    // A clock 20 minutes ahead: every pop-core timestamp looks 20 minutes old.
    skewed = await startEmulator({ scenario: testScenario(), now: () => Date.now() + 20 * 60_000 });
  });
  afterAll(async () => {
    await emu.close();
    await skewed.close();
  });

  const query = { InstanceId: INSTANCE, ClientId: 'GID_test@@@always-on' };

  it('verifies GET requests (parameters in the query string)', async () => {
    const r = await mqttClient(emu.url).request<{ OnlineStatus: boolean; RequestId: string }>('QuerySessionByClientId', query);
    expect(r.OnlineStatus).toBe(true);
    expect(r.RequestId).toMatch(/^[0-9A-F-]{36}$/);
  });

  it('verifies POST requests (parameters in a form body)', async () => {
    const r = await mqttClient(emu.url).request<{ OnlineStatus: boolean }>('QuerySessionByClientId', query, { method: 'POST' });
    expect(r.OnlineStatus).toBe(true);
  });

  it('verifies POST requests with the parameters in the query string (the V2 SDK style)', async () => {
    const r = await mqttClient(emu.url).request<{ OnlineStatus: boolean }>('QuerySessionByClientId', query, { method: 'post' });
    expect(r.OnlineStatus).toBe(true);
  });

  it('signs awkward characters the way pop-core encodes them', async () => {
    const r = await mqttClient(emu.url).request<{ OnlineStatus: boolean }>('QuerySessionByClientId', {
      InstanceId: INSTANCE,
      ClientId: "GID_x@@@a/b c*~!'()中+%",
    });
    expect(r.OnlineStatus).toBe(false);
  });

  it('answers SignatureDoesNotMatch (HTTP 400, gateway body) for a wrong secret', async () => {
    const err = await popError(mqttClient(emu.url, { accessKeySecret: 'wrong' }).request('QuerySessionByClientId', query));
    expect(err.name).toBe('SignatureDoesNotMatchError');
    expect(err.code).toBe('SignatureDoesNotMatch');
    expect(err.entry.response.statusCode).toBe(400);
    expect(Object.keys(err.data).sort()).toEqual(['Code', 'HostId', 'Message', 'Recommend', 'RequestId']);
  });

  it('answers InvalidAccessKeyId.NotFound for an unknown key', async () => {
    const err = await popError(mqttClient(emu.url, { accessKeyId: 'LTAI-nobody' }).request('QuerySessionByClientId', query));
    expect(err.code).toBe('InvalidAccessKeyId.NotFound');
  });

  it('answers InvalidTimeStamp.Expired when the timestamp is more than 15 minutes off', async () => {
    const err = await popError(mqttClient(skewed.url).request('QuerySessionByClientId', query));
    expect(err.code).toBe('InvalidTimeStamp.Expired');
    expect(err.entry.response.statusCode).toBe(400);
  });

  it('refuses a replayed request with SignatureNonceUsed', async () => {
    const client = popClient(emu.url, '2020-04-20', {}, true);
    const [, entry] = await client.request<[unknown, { url: string }]>('QuerySessionByClientId', query);
    const replay = await rawRequest(entry.url);
    expect(replay.status).toBe(400);
    expect(JSON.parse(replay.body).Code).toBe('SignatureNonceUsed');
  });

  it('records a nonce only once its signature verified', async () => {
    const params = baseParams('burn-check-1');
    const forged = await rawRequest(`${emu.url}/?${signedQuery(params, 'not-the-secret')}`);
    expect(JSON.parse(forged.body).Code).toBe('SignatureDoesNotMatch');
    const genuine = await rawRequest(`${emu.url}/?${signedQuery(params, 'test-secret')}`);
    expect(genuine.status).toBe(200);
    expect(JSON.parse(genuine.body).OnlineStatus).toBe(true);
    const again = await rawRequest(`${emu.url}/?${signedQuery(params, 'test-secret')}`);
    expect(JSON.parse(again.body).Code).toBe('SignatureNonceUsed');
  });

  it('answers InvalidTimeStamp.Format for a timestamp with milliseconds', async () => {
    const params = baseParams('fmt-nonce-1', new Date().toISOString());
    const r = await rawRequest(`${emu.url}/?${signedQuery(params, 'test-secret')}`);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).Code).toBe('InvalidTimeStamp.Format');
  });

  it('requires the configured security token of an STS credential', async () => {
    const sts = { accessKeyId: 'STS.test-key', accessKeySecret: 'sts-secret' };
    const ok = await mqttClient(emu.url, { ...sts, securityToken: 'sts-token-123' }).request<{ OnlineStatus: boolean }>(
      'QuerySessionByClientId',
      query,
    );
    expect(ok.OnlineStatus).toBe(true);
    const wrong = await popError(mqttClient(emu.url, { ...sts, securityToken: 'other' }).request('QuerySessionByClientId', query));
    expect(wrong.code).toBe('InvalidSecurityToken.MismatchWithAccessKey');
    const missing = await popError(mqttClient(emu.url, sts).request('QuerySessionByClientId', query));
    expect(missing.code).toBe('InvalidSecurityToken.MismatchWithAccessKey');
  });

  it('answers InvalidAction.NotFound (404) for an unknown action and InvalidVersion for a wrong version', async () => {
    const unknown = await popError(mqttClient(emu.url).request('DescribeNothing', {}));
    expect(unknown.code).toBe('InvalidAction.NotFound');
    expect(unknown.entry.response.statusCode).toBe(404);
    const version = await popError(popClient(emu.url, '2019-01-01').request('QuerySessionByClientId', query));
    expect(version.code).toBe('InvalidVersion');
  });

  it('counts signature failures per API in the stats, apart from calls', async () => {
    const before = emu.stats().apis.QuerySessionByClientId;
    await popError(mqttClient(emu.url, { accessKeySecret: 'nope' }).request('QuerySessionByClientId', query));
    const after = emu.stats().apis.QuerySessionByClientId;
    expect(after?.signature_failures.SignatureDoesNotMatch).toBe((before?.signature_failures.SignatureDoesNotMatch ?? 0) + 1);
    expect(after?.calls).toBe(before?.calls);
  });
});
