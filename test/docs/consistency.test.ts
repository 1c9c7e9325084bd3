// What the documentation tells an operator to type or install, checked against the repository: the Debian packages
// the tests install, commands that exist on a fresh checkout, and the clouds' own credential variable names.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { expect, test } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');
const read = (file: string): string => fs.readFileSync(path.join(ROOT, file), 'utf8');

function trackedFiles(...patterns: string[]): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', ...patterns], { cwd: ROOT, encoding: 'utf8' });
  return out.split('\n').filter((f) => f && fs.existsSync(path.join(ROOT, f)));
}

test("README's test prerequisites name every Debian package the pretest step installs", () => {
  const packages = [...read('scripts/test-prereqs.sh').matchAll(/missing\+=\(([^)]+)\)/g)].flatMap((m) => m[1]!.trim().split(/\s+/));
  expect(packages.length).toBeGreaterThanOrEqual(6);
  const readme = read('README.md');
  const development = readme.slice(readme.indexOf('## Development'));
  for (const pkg of new Set(packages)) expect(development, `README (## Development) names \`${pkg}\``).toContain(`\`${pkg}\``);
});

test('docs and configs run the exporter and the emulator through npx (their bins are not on PATH in a checkout)', () => {
  const bare: string[] = [];
  for (const file of trackedFiles('*.md', '*.yml', '*.yaml')) {
    read(file)
      .split('\n')
      .forEach((line, i) => {
        if (/(?<!npx )(?<![\w/.@-])cloud-session-(?:exporter|emulator) --/.test(line)) bare.push(`${file}:${i + 1}: ${line.trim()}`);
      });
  }
  expect(bare).toEqual([]);
});

test("account credentials come from the clouds' own variable names everywhere (README, docs, examples, compose, Kubernetes)", () => {
  // What the clouds' SDKs and CLIs read: @alicloud/credentials and tencentcloud-sdk-nodejs-common.
  const CLOUD_NAME: Record<string, string> = {
    access_key_id: 'ALIBABA_CLOUD_ACCESS_KEY_ID',
    access_key_secret: 'ALIBABA_CLOUD_ACCESS_KEY_SECRET',
    security_token: 'ALIBABA_CLOUD_SECURITY_TOKEN',
    secret_id: 'TENCENTCLOUD_SECRET_ID',
    secret_key: 'TENCENTCLOUD_SECRET_KEY',
    token: 'TENCENTCLOUD_SESSION_TOKEN',
  };
  const wrong: string[] = [];
  let checked = 0;
  // What operators read and copy; the tests' own fixtures use short names on purpose.
  for (const file of trackedFiles('*.md', '*.yml', '*.yaml').filter((f) => !f.startsWith('test/'))) {
    read(file)
      .split('\n')
      .forEach((line, i) => {
        // Account keys; a canary's `subscribe:` block (indented deeper) may sign in with a second key pair of its own.
        if (/^ {6,}/.test(line)) return;
        for (const m of line.matchAll(/\b(access_key_id|access_key_secret|security_token|secret_id|secret_key|token): \$\{([A-Za-z0-9_]+)/g)) {
          checked++;
          if (m[2] !== CLOUD_NAME[m[1]!]) wrong.push(`${file}:${i + 1}: ${m[1]}: \${${m[2]}} (want \${${CLOUD_NAME[m[1]!]}})`);
        }
      });
  }
  expect(checked).toBeGreaterThan(20);
  expect(wrong).toEqual([]);
});
