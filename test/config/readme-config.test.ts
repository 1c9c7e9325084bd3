import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from 'vitest';
import { parseConfig } from '../../src/config/load';
import { JOB_TYPES } from '../../src/apis';

// The README's configuration example is what newcomers copy: it must stay a valid config.
test('the README configuration example is a valid config', () => {
  const readme = fs.readFileSync(path.join(__dirname, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Configuration'));
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  expect(yaml, 'a ```yaml block under ## Configuration').toBeDefined();
  const secret = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cse-readme-')), 'tencent_secret_key');
  fs.writeFileSync(secret, 'tencent-secret\n');
  const text = yaml!.replace('/run/secrets/tencent_secret_key', secret);
  const env = { ALIBABA_CLOUD_ACCESS_KEY_ID: 'ak', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'sk', TENCENTCLOUD_SECRET_ID: 'sid' };
  const config = parseConfig(text, 'README.md', { env, jobTypes: JOB_TYPES });
  expect(config.jobs.map((j) => j.type)).toEqual(['aliyun_mqtt_sessions', 'tencentcloud_mongodb_connections']);
});

// `npm run demo` and the compose stack's demo profile start from this file: a typo would only show when someone runs them.
test('config/demo.yaml is a valid config and runs every job type, the canary end to end', () => {
  const file = 'config/demo.yaml';
  const text = fs.readFileSync(path.join(__dirname, '../..', file), 'utf8');
  const env = Object.fromEntries([...text.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => [m[1], 'x']));
  const config = parseConfig(text, file, { env, jobTypes: JOB_TYPES });
  const probe = config.jobs.find((j) => j.type === 'aliyun_mqtt_probe') as { subscribe?: { url?: string } } | undefined;
  expect(probe?.subscribe?.url, 'the canary runs end to end (subscribe.url)').toMatch(/^mqtt:\/\//);
  expect(new Set(config.jobs.map((j) => j.type))).toEqual(new Set(JOB_TYPES.map((t) => t.type)));
});
