// Blackbox-style fixtures: each testdata/*.bad.yml opens with the exact problems it must produce, in order, as
// `# expect:` lines. Line numbers in them count those lines too.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load';
import { JOB_TYPES } from '../../src/apis';

const DIR = path.join(__dirname, 'testdata');
const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.bad.yml')).sort();

describe('bad configuration files', () => {
  test('there are fixtures for every layer of the schema', () => {
    expect(files.length).toBeGreaterThanOrEqual(20);
  });

  test.each(files)('%s', (file) => {
    const text = fs.readFileSync(path.join(DIR, file), 'utf8');
    const expected = [...text.matchAll(/^# expect: (.*)$/gm)].map((m) => m[1]);
    expect(expected.length).toBeGreaterThan(0);
    let problems: string[] = [];
    try {
      // The source's folder is where relative file paths (password_file, tls files) are read from.
      parseConfig(text, path.join(DIR, file), { env: { AK: 'ak-0123', SK: 'sk-0123' }, jobTypes: JOB_TYPES });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    expect(problems).toEqual(expected);
  });
});
