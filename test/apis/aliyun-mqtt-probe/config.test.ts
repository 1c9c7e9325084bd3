// aliyun_mqtt_probe configuration: the commented example is valid and its quota plan shows billed messages per day;
// payload templates and subscribe blocks are checked with clear messages.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/config/load';
import { JOB_TYPES } from '../../../src/apis';
import { buildQuotaPlan, formatQuotaPlan } from '../../../src/core/quota-plan';
import { tempDir } from '../../helpers/harness';
import { runExporter } from '../../helpers/exporter-process';

const ENV = { ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI-example', AK: 'LTAI-example', SK: 'example-secret' };

function problems(job: string): string[] {
  const yaml = `
accounts:
  - {name: a, provider: aliyun, access_key_id: "\${AK}", access_key_secret: "\${SK}"}
jobs:
  - name: canary
    type: aliyun_mqtt_probe
    account: a
    schedule: "*/30 * * * * *"
    region: cn-hangzhou
    instance_id: post-cn-1
${job}`;
  try {
    parseConfig(yaml, 'probe.yml', { env: ENV, jobTypes: JOB_TYPES });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe('aliyun_mqtt_probe configuration', () => {
  test('config/examples/aliyun-mqtt-probe.yml is valid; --config.check shows one billed SendMessage per run and the billed ApplyToken calls of token mode as messages per day', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'secret'), 'example-secret\n');
    fs.writeFileSync(path.join(dir, 'token'), 'an.oidc.token\n');
    const text = fs
      .readFileSync(path.join(__dirname, '..', '..', '..', 'config', 'examples', 'aliyun-mqtt-probe.yml'), 'utf8')
      .replace('/run/secrets/aliyun_access_key_secret', path.join(dir, 'secret'))
      .replace('/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token', path.join(dir, 'token'));
    const cfg = parseConfig(text, path.join(dir, 'probe.yml'), { env: ENV, jobTypes: JOB_TYPES });
    const plan = buildQuotaPlan(cfg, JOB_TYPES);
    // SendMessage's 1,000 QPS is paced by ApsaraMQ's 300 QPS per-source-IP ceiling; each probe is one billed message.
    expect(plan.rows.map((r) => [r.job, r.api, r.qps, r.callsPerRun, r.billedPerDay, r.peakTps])).toEqual([
      ['mqtt-canary', 'SendMessage', 300, 1, 2880, 1],
      // A 1 h token renewed 15 minutes before expiry: one every 45 minutes, whatever the schedule.
      ['mqtt-canary-rrsa', 'SendMessage', 300, 1, 2880, 1],
      ['mqtt-canary-rrsa', 'ApplyToken', 100, 30 / 2700, 32, 1],
      ['mqtt-canary-shanghai', 'SendMessage', 300, 1, 1440, 1],
    ]);
    expect(plan.warnings).toEqual([]);
    const table = formatQuotaPlan(plan);
    expect(table).toMatch(/SendMessage\s+300 \(per-IP\)\s+mqtt-canary\s+1\s.*\s2880\s+1 \(post-cn-\S+\)\s+1 probe message to canary\/probe per run/);
    expect(table).toMatch(/\naliyun-rrsa\s+ApplyToken\s+100\s+mqtt-canary-rrsa\s+0\.0111\s+0\.00s\s+30s\s+0\.0%\s+32\s+1 \(post-cn-\S+\)\s+1 token for canary\/rrsa every 45m \(token_ttl 1h, renewed 15m before expiry\), and 1 after each refused sign-in\n/);
  });

  test('topic, payload template and subscribe block are checked', () => {
    expect(problems('    topic: canary/probe\n')).toEqual([]);
    expect(problems('    topic: canary/#\n')[0]).toMatch(/jobs\[0\]\.topic.*no wildcards/);
    expect(problems('    topic: /canary\n')[0]).toMatch(/topic/);
    expect(problems('    topic: t\n    payload: "hello {{sent_at}}"\n')).toEqual([expect.stringMatching(/payload.*must contain \{\{probe_id\}\}/)]);
    expect(problems('    topic: t\n    payload: "{{probe_id}}"\n')).toEqual([expect.stringMatching(/payload.*\{\{sent_at\}\} or \{\{sent_at_ms\}\}/)]);
    expect(problems('    topic: t\n    payload: "{{probe_id}} {{sent_at_ms}} {{nope}}"\n')).toEqual([expect.stringMatching(/unknown placeholder \{\{nope\}\}/)]);
    expect(problems('    topic: t\n    subscribe: {group_id: GID_abc, device_id: d1}\n')).toEqual([]);
    // GID- groups are as valid as GID_ ones (the ApsaraMQ client-ID rules, one place: src/apis/aliyun-mqtt/product.ts).
    expect(problems('    topic: t\n    subscribe: {group_id: GID-abc, device_id: d1}\n')).toEqual([]);
    expect(problems(`    topic: ${'t'.repeat(65)}\n`)[0]).toMatch(/topic.*64/);
    expect(problems(`    topic: canary/${'t'.repeat(57)}\n`)).toEqual([]);
    expect(problems(`    topic: canary/${'t'.repeat(58)}\n`)).toEqual(["jobs[0].topic (line 11): at most 64 characters, sub-topics included (ApsaraMQ's limit)"]);
    expect(problems('    topic: t\n    subscribe: {group_id: probe}\n')[0]).toMatch(/group_id.*GID_/);
    expect(problems('    topic: t\n    subscribe: {group_id: GID_abc, url: "http://x"}\n')[0]).toMatch(/url.*mqtt:\/\//);
    expect(problems('    topic: t\n    subscribe: {group_id: GID_abc, access_key_id: k}\n')[0]).toMatch(/both access_key_id and access_key_secret/);
    expect(problems(`    topic: t\n    subscribe: {group_id: GID_abc, device_id: ${'d'.repeat(60)}}\n`)[0]).toMatch(/64 characters/);
    expect(problems('    topic: t\n    subscribe: {group_id: GID_abc, clean: false}\n')[0]).toMatch(/unknown key "clean"/);
    expect(problems('    topic: t\n    labels: {topic: x}\n')[0]).toMatch(/collides/);
  });

  test('--config.check (the built exporter) prints the token-mode canary\'s billed ApplyToken line in the quota plan', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'token'), 'an.oidc.token\n');
    const file = path.join(dir, 'probe.yml');
    fs.writeFileSync(
      file,
      `accounts:
  - {name: rrsa, provider: aliyun, credentials: {type: oidc_role_arn, role_arn: "acs:ram::1234567890:role/canary", oidc_provider_arn: "acs:ram::1234567890:oidc-provider/ack-rrsa-c1", oidc_token_file: token}}
jobs:
  - {name: canary, type: aliyun_mqtt_probe, account: rrsa, schedule: "*/30 * * * * *", region: cn-hangzhou, instance_id: post-cn-1, topic: canary/probe, subscribe: {group_id: GID_canary, token_ttl: 2h}}
`,
    );
    const check = await runExporter([`--config.file=${file}`, '--config.check']);
    expect(check.code, check.err).toBe(0);
    const lines = check.out.split('\n');
    const header = lines.find((l) => l.startsWith('ACCOUNT'))!;
    expect(header).toMatch(/BILLED\/DAY\s+PEAK TPS \(instance\)/);
    // A 2 h token renewed 15 minutes before expiry: every 1h45m, 13.7 a day.
    expect(lines.find((l) => /\bApplyToken\b/.test(l))).toMatch(/^rrsa\s+ApplyToken\s+100\s+canary\s+0\.00476\s+\S+\s+30s\s+0\.0%\s+14\s+1 \(post-cn-1\)\s+1 token for canary\/probe every 105m \(token_ttl 2h, renewed 15m before expiry\), and 1 after each refused sign-in$/);
    expect(lines.find((l) => /\bSendMessage\b/.test(l))).toMatch(/^rrsa\s+SendMessage\s+300 \(per-IP\)\s+canary\s+1\s.*\s2880\s+1 \(post-cn-1\)\s+1 probe message/);
  });

  test('subscribe.auth: signature by default with a long-term AccessKey, token without one; token_ttl bounds; what each mode cannot use', () => {
    const ROLE = '{type: ram_role_arn, role_arn: "acs:ram::1234567890:role/canary", access_key_id: "${AK}", access_key_secret: "${SK}"}';
    const plan = (account: string, subscribe: string) => {
      const yaml = `
accounts:
  - {name: a, provider: aliyun, ${account}}
jobs:
  - {name: canary, type: aliyun_mqtt_probe, account: a, schedule: "*/30 * * * * *", region: cn-hangzhou, instance_id: post-cn-1, topic: t, subscribe: ${subscribe}}
`;
      return buildQuotaPlan(parseConfig(yaml, 'probe.yml', { env: ENV, jobTypes: JOB_TYPES }), JOB_TYPES).rows.map((r) => [r.api, r.billedPerDay]);
    };
    const statik = 'access_key_id: "${AK}", access_key_secret: "${SK}"';
    // Token mode shows in the plan as ApplyToken calls; signature mode has none.
    expect(plan(statik, '{group_id: GID_abc}')).toEqual([['SendMessage', 2880]]);
    expect(plan(`credentials: ${ROLE}`, '{group_id: GID_abc}')).toEqual([['SendMessage', 2880], ['ApplyToken', 32]]);
    expect(plan(`credentials: ${ROLE}`, '{group_id: GID_abc, access_key_id: k, access_key_secret: s}')).toEqual([['SendMessage', 2880]]);
    expect(plan(statik, '{group_id: GID_abc, auth: token}')).toEqual([['SendMessage', 2880], ['ApplyToken', 32]]);
    // 60 s tokens renewed with 20 s left: one every 40 s; 30 days: one every 29 days and 23:45.
    expect(plan(`credentials: ${ROLE}`, '{group_id: GID_abc, token_ttl: 60s}')).toEqual([['SendMessage', 2880], ['ApplyToken', 2160]]);
    expect(plan(`credentials: ${ROLE}`, '{group_id: GID_abc, token_ttl: 30d}')).toEqual([['SendMessage', 2880], ['ApplyToken', 0]]);
    expect(problems('    topic: t\n    subscribe: {group_id: GID_abc, token_ttl: 59s}\n')).toEqual([expect.stringMatching(/token_ttl.*between 60s and 30d/)]);
    expect(problems('    topic: t\n    subscribe: {group_id: GID_abc, auth: token, token_ttl: 30d}\n')).toEqual([]);
  });

  test('the 64 KB message limit applies to the payload as sent: rendered with its longest placeholder values, then Base64-encoded', () => {
    const payload = (filler: string) => `    topic: t\n    payload: "{{probe_id}} {{sent_at}} ${filler}"\n`;
    const refused = (filler: string) => problems(payload(filler)).some((p) => /once Base64-encoded, above ApsaraMQ's 65536-byte message limit/.test(p));
    // The largest ASCII filler accepted: its worst case (probe_id 40 bytes, sent_at 24, two spaces) is 3/4 of 64 KB.
    expect(refused('x'.repeat(49152 - 66))).toBe(false);
    expect(refused('x'.repeat(49152 - 65))).toBe(true);
    // Well under 64 KB of text, over it once encoded; multi-byte characters count by their UTF-8 bytes.
    expect(refused('x'.repeat(50_000))).toBe(true);
    expect(refused('é'.repeat(24_540))).toBe(false);
    expect(refused('é'.repeat(24_544))).toBe(true);
    // A placeholder shorter than its value's bytes is counted by those bytes, not by characters ({{job}} is 7 bytes,
    // "canary" 6): 4,000 of them and a filler render 54,040 bytes, 72,056 once encoded.
    expect(refused(`${'{{job}}'.repeat(4000)}${'x'.repeat(30_000)}`)).toBe(true);
  });
});
