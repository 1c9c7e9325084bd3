// The status page and /config of an app running every job type against the emulator (MQTT fleet with invalid
// inventory lines, MongoDB with an unsupported instance, Redis, the end-to-end canary) plus a job on an instance the
// emulator does not know: each section holds the figures the emulator's truth says, the failing job shows its error
// code, and no secret shows in any form. Then a job that cannot poll and a refused reload, as the page reports them.
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { mqttOf } from '../../emulator/apis/mqtt';
import type { Emulator } from '../../emulator/server';
import { ALIYUN, ALIYUN_ACCOUNT_YAML, TENCENT, appFromYaml, emulator, tempDir, truthOf, type TestApp } from '../helpers/harness';
import { findSecretLeaks } from '../helpers/secrets';

const FLEET = 'post-cn-status01';
const DEVICES = Array.from({ length: 40 }, (_, i) => `GID_sensor@@@dev-${String(i + 1).padStart(6, '0')}`);
const ENV = { AK: ALIYUN.access_key_id, SK: ALIYUN.access_key_secret, TID: TENCENT.secret_id, TKEY: TENCENT.secret_key };
// Not TENCENT.account ("tencent-test"): it is the first 12 characters of TENCENT.secret_key, so the redactor rightly
// masks it as a cut-short form of the secret.
const TENCENT_ACCOUNT = 'tencent-main';
const SECRETS = { aliyun_key_id: ALIYUN.access_key_id, aliyun_secret: ALIYUN.access_key_secret, tencent_id: TENCENT.secret_id, tencent_key: TENCENT.secret_key };

function config(emu: Emulator): string {
  const url = emu.url;
  return `accounts:
${ALIYUN_ACCOUNT_YAML}  - name: ${TENCENT_ACCOUNT}
    provider: tencentcloud
    secret_id: \${TID}
    secret_key: \${TKEY}
jobs:
  - name: fleet
    type: aliyun_mqtt_sessions
    account: ${ALIYUN.account}
    schedule: "0 0 1 1 *"
    region: cn-hangzhou
    endpoint: ${url}
    instance_id: ${FLEET}
    client_ids_file: devices.txt
  - name: ghost-fleet
    type: aliyun_mqtt_sessions
    account: ${ALIYUN.account}
    schedule: "0 0 1 1 *"
    region: cn-hangzhou
    endpoint: ${url}
    instance_id: post-cn-nobody0001
    client_ids: ["${DEVICES[0]}"]
  - name: mongodb
    type: tencentcloud_mongodb_connections
    account: ${TENCENT_ACCOUNT}
    schedule: "0 0 1 1 *"
    region: ap-guangzhou
    endpoint: ${url}
    instance_ids: [cmgo-status01, cmgo-legacy01]
  - name: redis
    type: aliyun_redis_sessions
    account: ${ALIYUN.account}
    schedule: "0 0 1 1 *"
    endpoint: ${url}
    instance_ids: [r-status01]
  - name: canary
    type: aliyun_mqtt_probe
    account: ${ALIYUN.account}
    schedule: "0 0 1 1 *"
    region: cn-hangzhou
    endpoint: ${url}
    instance_id: ${FLEET}
    topic: canary/probe
    timeout: 3s
    subscribe:
      url: ${mqttOf(emu).broker!.url}
      group_id: GID_canary
      device_id: status-test
`;
}

/** The value text of a figure (job figures: <dt>label</dt><dd>value). */
function figure(page: string, job: string, label: string): string | undefined {
  const section = page.slice(page.indexOf(`<section class="job" id="job-${job}">`));
  const m = new RegExp(`<dt>${label}</dt><dd><span class="([a-z]*)">([^<]*)</span>`).exec(section.slice(0, section.indexOf('</section>')));
  return m ? `${m[2]}${m[1] === 'bad' ? ' (bad)' : ''}` : undefined;
}

function jobRow(page: string, job: string): string {
  const m = new RegExp(`<tr id="row-${job}" data-job="${job}">.*?</tr>`).exec(page);
  if (!m) throw new Error(`no row for job ${job}`);
  return m[0];
}

function instanceRow(page: string, instance: string): string {
  const m = new RegExp(`<tr data-instance="${instance}">.*?</tr>`).exec(page);
  if (!m) throw new Error(`no row for instance ${instance}`);
  return m[0];
}

const cells = (row: string) => [...row.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((m) => m[1].replace(/<[^>]+>/g, ''));

describe('the status page of an app running every job type', () => {
  let emu: Emulator;
  let t: TestApp;
  let base: string;
  let dir: string;
  const get = async (p: string, init?: RequestInit) => {
    const res = await fetch(`${base}${p}`, init);
    return { status: res.status, type: res.headers.get('content-type'), cache: res.headers.get('cache-control'), body: await res.text() };
  };

  beforeAll(async () => {
    emu = await emulator({
      seed: 7,
      credentials: [ALIYUN, TENCENT],
      mqtt: { instances: [{ instance_id: FLEET, region: 'cn-hangzhou', fleets: [{ group_id: 'GID_sensor', prefix: 'dev-', size: DEVICES.length, online_ratio: 0.75 }] }] },
      broker: {},
      mongodb: {
        instances: [
          { instance_id: 'cmgo-status01', region: 'ap-guangzhou', client_ips: 12 },
          { instance_id: 'cmgo-legacy01', region: 'ap-guangzhou', client_ips: 3, unsupported: 'MongoVersion' },
        ],
      },
      redis: { instances: [{ instance_id: 'r-status01', nodes: 2, sessions: 50, client_ips: 5 }] },
    });
    dir = tempDir();
    fs.writeFileSync(path.join(dir, 'devices.txt'), `${DEVICES.join('\n')}\nnot-a-client-id\nGID_sensor@@@${'x'.repeat(80)}\n`);
    t = appFromYaml(config(emu), ENV, {}, dir);
    base = `http://127.0.0.1:${(await t.app.listen('127.0.0.1:0')).port}`;
    t.app.start();
    await t.app.whenReady();
  });

  test('every section, every job with its run, and the figures of each job type as the emulator knows them', async () => {
    const { status, type, cache, body: page } = await get('/');
    expect([status, type, cache]).toEqual([200, 'text/html; charset=utf-8', 'no-store']);
    for (const id of ['exporter', 'jobs', 'apis', 'credentials']) expect(page).toContain(`<section id="${id}">`);
    expect(page).toMatch(/<th>Readiness<\/th><td><span class="ok">ready<\/span>/);
    expect(page).toContain(`<a href="/config">${t.configFile}</a>; last load <span class="ok">successful</span>`);

    for (const job of ['fleet', 'mongodb', 'redis', 'canary']) {
      const [name, jobType, , next, , , result, lastSuccess, lastFailure] = cells(jobRow(page, job));
      expect([name, result, lastFailure], job).toEqual([job, 'ok', 'none']);
      expect(jobType, job).toMatch(/^(aliyun|tencentcloud)_/);
      expect(next, job).toMatch(/^in \d+ d/);
      expect(lastSuccess, job).toMatch(/^(now|\d+ ms ago|[\d.]+ s ago)$/);
    }

    const truth = (await truthOf(emu)).mqtt[FLEET];
    const online = DEVICES.filter((d) => truth[d]).length;
    expect(figure(page, 'fleet', 'devices')).toBe('40');
    expect(figure(page, 'fleet', 'online')).toBe(String(online));
    expect(figure(page, 'fleet', 'offline')).toBe(String(DEVICES.length - online));
    expect(figure(page, 'fleet', 'invalid inventory entries')).toBe('2 (bad)');
    expect(figure(page, 'fleet', 'cycle time')).toMatch(/^\d+ ms$|^[\d.]+ s$/);
    expect(figure(page, 'fleet', 'quota bound')).toBe('40 ms');
    expect(page).toContain('(4 BatchQuerySessionByClientIds calls at 100 QPS; bound ÷ cycle');

    const mongo = (await truthOf(emu)).mongodb['cmgo-status01'];
    const connections = mongo.Clients.reduce((n, c) => n + c.Count, 0);
    expect(cells(instanceRow(page, 'cmgo-status01')).slice(0, 6)).toEqual(['cmgo-status01', 'ok', expect.stringMatching(/ago|now/), connections.toLocaleString('en-US'), '12', 'complete']);
    expect(cells(instanceRow(page, 'cmgo-legacy01'))[3]).toMatch(/^not reported: InvalidParameterValue\./);
    const redis = (await truthOf(emu)).redis['r-status01'] as { SourceStats: unknown[] };
    expect(cells(instanceRow(page, 'r-status01')).slice(3, 6)).toEqual(['50', String(redis.SourceStats.length), '2']);

    expect(figure(page, 'canary', 'probes sent')).toBe('1');
    expect(figure(page, 'canary', 'last delivery latency')).toMatch(/^\d+ ms$/);
    expect(figure(page, 'canary', 'lost')).toBe('0');
    expect(figure(page, 'canary', 'subscriber')).toBe('connected');
  });

  test('the job on an instance the emulator does not know shows its error code, in its row and its instance', async () => {
    const page = (await get('/')).body;
    const [, , , , , , result, lastSuccess, lastFailure] = cells(jobRow(page, 'ghost-fleet'));
    expect([result, lastSuccess]).toEqual(['failed', 'never']);
    expect(lastFailure).toMatch(/^MqttInstanceNotFound (now|.* ago)$/);
    // MQTT figures are the job's (one instance per job): the instance row is instance, last poll, last success, error.
    const [instance, poll, , error] = cells(instanceRow(page, 'post-cn-nobody0001'));
    expect([instance, poll]).toEqual(['post-cn-nobody0001', 'failed']);
    expect(error).toMatch(/^MqttInstanceNotFound .*does not exist/);
  });

  test('per account and API: QPS, the calls of the last minute and the quota-use meter; credentials per account', async () => {
    const page = (await get('/')).body;
    const rows = [...page.matchAll(/<tr data-account="([^"]+)" data-api="([^"]+)">(.*?)<\/tr>/g)].map((m) => ({ pair: `${m[1]} ${m[2]}`, row: m[0] }));
    expect(rows.map((r) => r.pair).sort()).toEqual([
      'aliyun-test BatchQuerySessionByClientIds',
      'aliyun-test GetRedisAllSession',
      'aliyun-test SendMessage',
      `${TENCENT_ACCOUNT} DescribeClientConnections`,
    ]);
    // fleet: 4 calls for 40 devices, ghost-fleet: 1 (final answer, not retried).
    const batch = cells(rows.find((r) => r.pair.endsWith('BatchQuerySessionByClientIds'))!.row);
    expect(batch.slice(2, 4)).toEqual(['100', '5']);
    const meter = /<meter [^>]*value="([^"]+)"/.exec(rows.find((r) => r.pair.endsWith('BatchQuerySessionByClientIds'))!.row)![1];
    expect(Number(meter)).toBeCloseTo(5 / 6000, 10);
    expect(cells(rows.find((r) => r.pair.endsWith('SendMessage'))!.row).slice(2, 4)).toEqual(['1,000', '1']);

    const creds = [...page.matchAll(/<tr data-account="([^"]+)"><td>.*?<\/tr>/g)].map((m) => cells(m[0]).slice(0, 5));
    expect(creds).toEqual([
      ['aliyun-test', 'aliyun', 'access_key', 'ok', 'does not expire'],
      [TENCENT_ACCOUNT, 'tencentcloud', 'secret', 'ok', 'does not expire'],
    ]);
  });

  test('/config shows the configuration with its secrets masked; no page shows a secret in any form', async () => {
    const cfg = await get('/config');
    expect([cfg.status, cfg.type]).toEqual([200, 'text/html; charset=utf-8']);
    expect(cfg.body).toContain('access_key_secret: &#60;secret&#62;');
    expect(cfg.body).toContain('secret_key: &#60;secret&#62;');
    expect(cfg.body).toContain('client_ids_file: devices.txt');
    expect(cfg.body).toContain(`endpoint: ${emu.url}`);
    const css = await get('/status.css');
    expect([css.status, css.type, css.cache]).toEqual([200, 'text/css; charset=utf-8', 'max-age=3600']);
    expect(findSecretLeaks([(await get('/')).body, cfg.body].join('\n'), SECRETS)).toEqual([]);
  });

  test('HEAD answers without a body; other methods are refused with Allow', async () => {
    const head = await fetch(`${base}/`, { method: 'HEAD' });
    expect([head.status, await head.text()]).toEqual([200, '']);
    const post = await fetch(`${base}/config`, { method: 'POST' });
    expect([post.status, post.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
  });

  test('a job that cannot poll makes the exporter not ready, and the page says why', async () => {
    fs.rmSync(path.join(dir, 'devices.txt'));
    await t.app.runner('fleet')!.trigger();
    expect((await get('/-/ready')).status).toBe(503);
    const page = (await get('/')).body;
    expect(page).toContain('<span class="bad">not ready</span><ul><li>job fleet: cannot read client_ids_file devices.txt: ENOENT</li></ul>');
    expect(cells(jobRow(page, 'fleet'))[6]).toBe('failed');
    // The figures of the last successful poll stay, with the failed run beside them.
    expect(figure(page, 'fleet', 'online')).toMatch(/^\d+$/);
  });

  test('a refused reload shows as failed, with its problem, while the previous configuration keeps running', async () => {
    fs.writeFileSync(t.configFile, config(emu).replace('    instance_ids: [r-status01]', '    instance_ids: [r-status01]\n    bogus: 1'));
    expect((await t.app.reload()).ok).toBe(false);
    const page = (await get('/')).body;
    expect(page).toMatch(/last load <span class="bad">failed<\/span> <time[^>]*>[^<]*<\/time>: <span class="message">[^<]*jobs\[3\]\.bogus \(line \d+\): unknown key &#34;bogus&#34;/);
    expect(page).toContain('; running the configuration loaded <time');
    expect(cells(jobRow(page, 'redis'))[6]).toBe('ok');
  });
});
