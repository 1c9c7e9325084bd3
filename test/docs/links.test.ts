// The documentation points at files that exist: every relative Markdown link, and every repository path written in
// backticks (`src/...`, `config/...`), in every Markdown file the project ships. Renames no longer leave stale docs.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { expect, test } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');
const TOP_FOLDERS = ['src', 'emulator', 'config', 'test', 'docs', 'grafana', 'deploy', 'scripts', 'bench', '.ci'];
/** Files a command writes and git ignores: the docs may name them as output, never as something to read in a checkout. */
const OUTPUTS = ['bench/results/latest.json'];

function markdownFiles(): string[] {
  const tracked = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.md'], { cwd: ROOT, encoding: 'utf8' });
  return tracked.split('\n').filter((f) => f && fs.existsSync(path.join(ROOT, f)));
}

/** Relative link targets and backticked repository paths, with their line numbers. */
function references(file: string): Array<{ line: number; target: string; base: string }> {
  const out: Array<{ line: number; target: string; base: string }> = [];
  const lines = fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n');
  let fenced = false;
  lines.forEach((text, i) => {
    if (/^\s*```/.test(text)) fenced = !fenced;
    if (fenced) return;
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!.split('#')[0]!;
      if (!target || /^[a-z]+:/i.test(m[1]!)) continue;
      out.push({ line: i + 1, target, base: path.dirname(file) });
    }
    for (const m of text.matchAll(/`([^`\s]+)`/g)) {
      const p = m[1]!.replace(/[:,.]$/, '');
      const top = p.split('/')[0]!;
      // Paths from the repository root only; patterns (<type>, *, {a,b}) and command outputs are not files.
      if (!p.includes('/') || !TOP_FOLDERS.includes(top) || /[<>*{}$]/.test(p) || OUTPUTS.includes(p)) continue;
      out.push({ line: i + 1, target: p, base: '.' });
    }
  });
  return out;
}

test('every relative link and backticked repository path in the Markdown files exists', () => {
  const files = markdownFiles();
  expect(files).toContain('README.md');
  const missing: string[] = [];
  let checked = 0;
  for (const file of files) {
    for (const ref of references(file)) {
      checked++;
      if (!fs.existsSync(path.join(ROOT, ref.base, ref.target))) missing.push(`${file}:${ref.line}: ${ref.target}`);
    }
  }
  expect(checked).toBeGreaterThan(50);
  expect(missing).toEqual([]);
});

test('the command outputs the docs may name are ignored by git (a committed copy would be checked like any other file)', () => {
  for (const file of OUTPUTS) {
    expect(() => execFileSync('git', ['check-ignore', '--no-index', '-q', file], { cwd: ROOT }), `${file} is git-ignored`).not.toThrow();
  }
});
