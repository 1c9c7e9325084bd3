// config/examples/: one example per job type, named after it, and each a valid configuration whose quota plan fits.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/config/load';
import { JOB_TYPES } from '../../src/apis';
import { buildQuotaPlan } from '../../src/core/quota-plan';
import { tempDir } from '../helpers/harness';

const DIR = path.resolve(__dirname, '../../config/examples');

describe('config/examples', () => {
  test('there is one example per job type, and no other', () => {
    expect(fs.readdirSync(DIR).filter((f) => f.endsWith('.yml')).sort()).toEqual(JOB_TYPES.map((t) => `${t.type.replace(/_/g, '-')}.yml`).sort());
  });

  test.each(JOB_TYPES.map((t) => t.type))('%s: valid, with files and variables as an operator provides them, and its plan fits its schedule', (type) => {
    const dir = tempDir();
    let text = fs.readFileSync(path.join(DIR, `${type.replace(/_/g, '-')}.yml`), 'utf8');
    // Every absolute path the example names (secret files, inventories) is provided in a temp dir.
    text = text.replace(/(_file: )(\/\S+)/g, (_m, key: string, file: string) => {
      const local = path.join(dir, path.basename(file));
      fs.writeFileSync(local, key.includes('client_ids') ? 'GID_sensor@@@dev-000001\nGID_sensor@@@dev-000002\n' : 'example-secret\n');
      return `${key}${local}`;
    });
    const env = Object.fromEntries([...text.matchAll(/\$\{([A-Z_0-9]+)\}/g)].map(([, name]) => [name, `example-${name.toLowerCase()}`]));
    const cfg = parseConfig(text, path.join(dir, 'example.yml'), { env, jobTypes: JOB_TYPES });
    expect(cfg.jobs.map((j) => j.type)).toContain(type);
    // The cloud's own variable names (ALIBABA_CLOUD_*, TENCENTCLOUD_*), as their SDKs and CLIs read them.
    for (const name of Object.keys(env)) expect(name).toMatch(/^(ALIBABA_CLOUD|TENCENTCLOUD)_/);
    expect(buildQuotaPlan(cfg, JOB_TYPES).warnings).toEqual([]);
  });
});
