import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load';
import { JOB_TYPES } from '../../src/apis';
import { buildQuotaPlan, formatQuotaPlan } from '../../src/core/quota-plan';


const GOOD = `
accounts:
  - name: aliyun-main
    provider: aliyun
    access_key_id: \${AK}
    access_key_secret: \${SK}
jobs:
  - name: fleet
    type: aliyun_mqtt_sessions
    account: aliyun-main
    schedule: "*/30 * * * * *"
    region: cn-hangzhou
    instance_id: post-cn-0pp12gl0001
    client_ids: [GID_sensor@@@dev-0001]
    labels: {env: prod}
`;

function problems(text: string, env: Record<string, string> = { AK: 'ak', SK: 'sk' }): string[] {
  try {
    parseConfig(text, 'test.yml', { env, jobTypes: JOB_TYPES });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('configuration', () => {
  test('a valid file parses with interpolated secrets and defaults', () => {
    const cfg = parseConfig(GOOD, 'test.yml', { env: { AK: 'my-ak', SK: 'my-sk' }, jobTypes: JOB_TYPES });
    expect(cfg.accounts[0]).toMatchObject({ credentials: { type: 'access_key', access_key_id: 'my-ak', access_key_secret: 'my-sk' }, request_timeout: 5000 });
    expect(cfg.jobs[0]).toMatchObject({ name: 'fleet', labels: { env: 'prod' }, per_client_series: true, jitter: 0 });
  });

  test('an unknown key is an error naming the key, its path and its line', () => {
    const text = GOOD.replace('    region: cn-hangzhou', '    region: cn-hangzhou\n    regoin: typo');
    expect(problems(text)).toEqual(['jobs[0].regoin (line 13): unknown key "regoin"']);
  });

  test('an unknown top-level key and an unknown account key are both reported at once', () => {
    const text = `extra: 1\n${GOOD.replace('provider: aliyun', 'provider: aliyun\n    acess_key: x')}`;
    const p = problems(text);
    expect(p).toContain('extra (line 1): unknown key "extra" (allowed: accounts, source_ip_qps, jobs, cluster)');
    expect(p.some((x) => x.startsWith('accounts[0].acess_key (line 6)'))).toBe(true);
  });

  test('a missing environment variable is an error naming it', () => {
    expect(problems(GOOD, { AK: 'x' })).toEqual([expect.stringMatching(/^accounts\[0\]\.access_key_secret \(line 6\): environment variable SK is not set/)]);
  });

  test('${VAR:-default} supplies a default and $$ is a literal dollar', () => {
    const text = GOOD.replace('${SK}', '${NOPE:-fallback$$}');
    const cfg = parseConfig(text, 't.yml', { env: { AK: 'a' }, jobTypes: JOB_TYPES });
    expect(cfg.accounts[0]).toMatchObject({ credentials: { access_key_secret: 'fallback$' } });
  });

  test('secrets can come from *_file keys, relative to the config file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cse-'));
    fs.writeFileSync(path.join(dir, 'sk.txt'), 'from-file\n');
    const text = GOOD.replace('access_key_secret: ${SK}', 'access_key_secret_file: sk.txt');
    const cfg = parseConfig(text, path.join(dir, 'c.yml'), { env: { AK: 'a' }, jobTypes: JOB_TYPES });
    expect(cfg.accounts[0]).toMatchObject({ credentials: { access_key_secret: 'from-file' } });
    expect(problems(text.replace('sk.txt', 'missing.txt'), { AK: 'a' })[0]).toMatch(/access_key_secret_file.*cannot read secret file missing.txt: ENOENT/);
  });

  test('bad values name their path: schedule, region, account reference, labels, job type', () => {
    const text = GOOD.replace('"*/30 * * * * *"', '"every minute"')
      .replace('cn-hangzhou', 'Hangzhou')
      .replace('account: aliyun-main', 'account: nobody')
      .replace('{env: prod}', '{instance: x, client_id: y}');
    const p = problems(text);
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^jobs\[0\]\.schedule \(line 11\): not a valid cron expression/),
        expect.stringMatching(/^jobs\[0\]\.region \(line 12\): a region ID/),
      ]),
    );
    expect(problems(GOOD.replace('aliyun_mqtt_sessions', 'nope'))[0]).toMatch(/^jobs\[0\]\.type \(line 9\): unknown job type "nope" \(one of: aliyun_mqtt_sessions/);
    expect(problems(GOOD.replace('account: aliyun-main', 'account: nobody'))[0]).toMatch(/no account named "nobody"/);
    expect(problems(GOOD.replace('{env: prod}', '{client_id: y}'))[0]).toMatch(/static label "client_id" collides/);
    expect(problems(GOOD.replace('{env: prod}', '{instance: y}'))[0]).toMatch(/reserved/);
  });

  test('YAML syntax errors give the line', () => {
    expect(problems('accounts: [\n  - x: : :')[0]).toMatch(/^line \d+: YAML syntax/);
  });

  test('the quota plan computes calls per cycle and warns when a job cannot finish within its interval', () => {
    const ids = Array.from({ length: 12_000 }, (_, i) => `GID_sensor@@@dev-${i}`);
    const text = GOOD.replace('client_ids: [GID_sensor@@@dev-0001]', `client_ids: ${JSON.stringify(ids)}`);
    const cfg = parseConfig(text, 't.yml', { env: { AK: 'a', SK: 'b' }, jobTypes: JOB_TYPES });
    const plan = buildQuotaPlan(cfg, JOB_TYPES);
    expect(plan.rows[0]).toMatchObject({ api: 'BatchQuerySessionByClientIds', callsPerRun: 1200, qps: 100, shortestCycleMs: 12_000, intervalMs: 30_000 });
    expect(plan.warnings).toEqual([]);
    const tight = parseConfig(text.replace('"*/30 * * * * *"', '"*/10 * * * * *"'), 't.yml', { env: { AK: 'a', SK: 'b' }, jobTypes: JOB_TYPES });
    const tightPlan = buildQuotaPlan(tight, JOB_TYPES);
    // The default deadline of a 10 s schedule leaves 1 s for the next tick: 9 s.
    expect(tightPlan.warnings[0]).toMatch(/job fleet: 1200 BatchQuerySessionByClientIds calls need at least 12.0s at 100 QPS, longer than its 9s deadline/);
    expect(formatQuotaPlan(plan)).toMatch(/ 40\.0% /);
    expect(formatQuotaPlan(tightPlan)).toMatch(/ 120\.0% /);
  });
});

describe('configuration: values from the environment or a file are never echoed (hardening defect 2)', () => {
  test('a secret in the wrong key is named by its variable, not quoted', () => {
    const secret = 'sk-wrong-place-0123456789';
    const text = GOOD.replace('    access_key_secret: ${SK}', '    access_key_secret: ${SK}\n    request_timeout: ${SK}');
    const p = problems(text, { AK: 'ak', SK: secret });
    expect(p).toEqual([expect.stringMatching(/^accounts\[0\]\.request_timeout \(line 7\): invalid duration "?\(the value of \$\{SK\}\)"?/)]);
    expect(p.join('\n')).not.toContain(secret.slice(0, 12));
  });

  test('a secret read from a *_file key is neither echoed nor logged in any form', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cse-'));
    const secret = 'file-secret-abcdefghijklmnop';
    fs.writeFileSync(path.join(dir, 'sk.txt'), `${secret}\n`);
    // The secret pasted by mistake where a problem quotes the value: masked because the file's content is known.
    const text = GOOD.replace('access_key_secret: ${SK}', 'access_key_secret_file: sk.txt').replace('type: aliyun_mqtt_sessions', `type: "${secret}"`);
    let message = '';
    try {
      parseConfig(text, path.join(dir, 'c.yml'), { env: { AK: 'a' }, jobTypes: JOB_TYPES });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/jobs\[0\]\.type \(line 9\): unknown job type "REDACTED"/);
    expect(message).not.toContain(secret.slice(0, 12));
  });
});

describe('quota groups', () => {
  const yaml = (one: string, two: string) => `accounts:
  - {name: one, provider: aliyun, access_key_id: a, access_key_secret: s, quota_group: uid-1, ${one}}
  - {name: two, provider: aliyun, access_key_id: b, access_key_secret: t, quota_group: uid-1, ${two}}
jobs:
  - {name: fleet, type: aliyun_mqtt_sessions, account: one, schedule: "*/30 * * * * *", region: cn-hangzhou, instance_id: post-cn-0001, client_ids: [GID_a@@@d1]}
`;
  const parse = (one: string, two: string) => parseConfig(yaml(one, two), 'q.yml', { env: {}, jobTypes: JOB_TYPES });

  test('settings that take effect alike are alike: a margin in seconds or ms, qps maps in any order, {} or none', () => {
    expect(() => parse('rate_limit_margin: 1s', 'rate_limit_margin: 1000ms')).not.toThrow();
    expect(() => parse('rate_limit_margin: 1', 'rate_limit_margin: 1s')).not.toThrow();
    expect(() => parse('qps: {BatchQuerySessionByClientIds: 50, QuerySessionByClientId: 200}', 'qps: {QuerySessionByClientId: 200, BatchQuerySessionByClientIds: 50}')).not.toThrow();
    expect(() => parse('qps: {}', 'request_timeout: 5s')).not.toThrow();
  });

  test('settings that differ are named', () => {
    expect(() => parse('rate_limit_margin: 1s', 'rate_limit_margin: 2s')).toThrow(/whose rate_limit_margin differs/);
    expect(() => parse('qps: {BatchQuerySessionByClientIds: 50}', 'qps: {BatchQuerySessionByClientIds: 60}')).toThrow(/whose qps differs/);
  });
});
