// aliyun_mqtt_probe configuration: the commented example is valid and its quota plan shows billed messages per day;
// payload templates and subscribe blocks are checked with clear messages.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/config/load';
import { JOB_TYPES } from '../../../src/apis';
import { buildQuotaPlan, formatQuotaPlan } from '../../../src/core/quota-plan';
import { tempDir } from '../../helpers/harness';

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
  test('config/examples/aliyun-mqtt-probe.yml is valid; --config.check shows one billed SendMessage per run as messages per day', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'secret'), 'example-secret\n');
    const text = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'config', 'examples', 'aliyun-mqtt-probe.yml'), 'utf8').replace('/run/secrets/aliyun_access_key_secret', path.join(dir, 'secret'));
    const cfg = parseConfig(text, path.join(dir, 'probe.yml'), { env: ENV, jobTypes: JOB_TYPES });
    const plan = buildQuotaPlan(cfg, JOB_TYPES);
    // SendMessage's 1,000 QPS is paced by ApsaraMQ's 300 QPS per-source-IP ceiling; each probe is one billed message.
    expect(plan.rows.map((r) => [r.job, r.api, r.qps, r.callsPerRun, r.billedPerDay, r.peakTps])).toEqual([
      ['mqtt-canary', 'SendMessage', 300, 1, 2880, 1],
      ['mqtt-canary-shanghai', 'SendMessage', 300, 1, 1440, 1],
    ]);
    expect(plan.warnings).toEqual([]);
    expect(formatQuotaPlan(plan)).toMatch(/SendMessage\s+300 \(per-IP\)\s+mqtt-canary\s+1\s.*\s2880\s+1 \(post-cn-\S+\)\s+1 probe message to canary\/probe per run/);
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
