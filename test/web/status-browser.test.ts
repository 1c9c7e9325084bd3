// The status page in a real browser: Debian's Chromium driven by playwright-core, against the real exporter process
// (node dist/src/main.js) polling the emulator, under a web config with basic auth and a strict Content-Security-Policy
// (no script at all, styles only from the exporter itself). Asserts on what a person sees: a job's last success age,
// the error codes of the failing jobs (an instance the emulator does not know, a wrong secret), the quota bar, a
// working auto-refresh, a /config without secrets; saves a screenshot and prints the page's weight and timings.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Emulator } from '../../emulator/server';
import { startExporter, waitFor, type ExporterProcess } from '../helpers/exporter-process';
import { ALIYUN, ALIYUN_ACCOUNT_YAML, emulator, tempDir } from '../helpers/harness';
import { findSecretLeaks } from '../helpers/secrets';
import { HTPASSWD_COST10 } from './helpers';

/** Debian's package (scripts/test-prereqs.sh installs it); playwright-core brings no browser of its own. */
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = path.resolve(__dirname, '../../test-output/status-page.png');
const CSP = "default-src 'none'; style-src 'self'";
const WRONG_SECRET = 'wrong-secret-0123456789';
const FLEET = 'post-cn-browser01';
const IDS = Array.from({ length: 20 }, (_, i) => `GID_sensor@@@dev-${String(i + 1).padStart(6, '0')}`);

let emu: Emulator;
let exporter: ExporterProcess | undefined;
let browser: Browser | undefined;
let context: BrowserContext;
/** Console errors (a CSP violation is one) and failed requests, from every page of the context. */
const problems: string[] = [];

beforeAll(async () => {
  // Fails rather than skips: this file is the proof that the page works in a browser.
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (npm test's pretest step, bash scripts/test-prereqs.sh, does it as root)`);
  emu = await emulator({
    credentials: [ALIYUN],
    mqtt: { instances: [{ instance_id: FLEET, region: 'cn-hangzhou', fleets: [{ group_id: 'GID_sensor', size: IDS.length, online_ratio: 0.6 }] }] },
    redis: { instances: [{ instance_id: 'r-browser01', nodes: 2, sessions: 30, client_ips: 4 }] },
  });
  const dir = tempDir();
  const webConfig = path.join(dir, 'web.yml');
  fs.writeFileSync(webConfig, YAML.stringify({ basic_auth_users: { prometheus: HTPASSWD_COST10.hash }, http_server_config: { headers: { 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff' } } }));
  const config = `accounts:
${ALIYUN_ACCOUNT_YAML}  - name: aliyun-wrong-key
    provider: aliyun
    access_key_id: \${AK}
    access_key_secret: \${WRONG_SK}
jobs:
  - name: fleet
    type: aliyun_mqtt_sessions
    account: ${ALIYUN.account}
    schedule: "*/5 * * * * *"
    region: cn-hangzhou
    endpoint: ${emu.url}
    instance_id: ${FLEET}
    client_ids: ${JSON.stringify(IDS)}
  - name: ghost-fleet
    type: aliyun_mqtt_sessions
    account: ${ALIYUN.account}
    schedule: "*/5 * * * * *"
    region: cn-hangzhou
    endpoint: ${emu.url}
    instance_id: post-cn-nobody0001
    client_ids: ["${IDS[0]}"]
  - name: redis-wrong-key
    type: aliyun_redis_sessions
    account: aliyun-wrong-key
    schedule: "*/5 * * * * *"
    endpoint: ${emu.url}
    instance_ids: [r-browser01]
`;
  exporter = await startExporter(config, { AK: ALIYUN.access_key_id, SK: ALIYUN.access_key_secret, WRONG_SK: WRONG_SECRET }, [`--web.config.file=${webConfig}`]);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  context = await browser.newContext({ httpCredentials: { username: 'prometheus', password: HTPASSWD_COST10.password }, viewport: { width: 1280, height: 900 } });
  context.on('console', (m) => void (m.type() === 'error' && problems.push(`console: ${m.text()}`)));
  context.on('requestfailed', (r) => void problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  context.on('weberror', (e) => void problems.push(`page error: ${e.error().message}`));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await exporter?.terminate();
  await emu?.close();
});

/** Opens the status page until every job's first run is on it (each job runs at start-up). */
async function openStatus(page: Page): Promise<void> {
  await waitFor('every job to have finished a run', async () => {
    await page.goto(`${exporter!.url}/`);
    return (await page.locator('tbody tr[data-job] td:nth-child(7)').allInnerTexts()).every((r) => r === 'ok' || r === 'failed');
  }, 20_000);
}

test('a person sees each job\'s last success age, the failing jobs\' error codes and the quota bar, under a strict CSP with no console error', async () => {
  const page = await context.newPage();
  await openStatus(page);
  // Once more, for the body and the timings of one load with every job on the page.
  const response = (await page.goto(`${exporter!.url}/`))!;
  const body = await response.text();
  expect(response.headers()['content-security-policy']).toBe(CSP);

  await expect.poll(() => page.locator('h2').allInnerTexts()).toEqual(['Exporter', 'Jobs', 'Cloud APIs', 'Credentials']);
  const row = (job: string) => page.locator(`tr[data-job="${job}"]`);
  expect(await row('fleet').locator('td.last-success').innerText()).toMatch(/^(now|\d+ ms ago|[\d.]+ s ago)$/);
  expect(await row('fleet').locator('td').nth(6).innerText()).toBe('ok');
  for (const [job, code] of [['ghost-fleet', 'MqttInstanceNotFound'], ['redis-wrong-key', 'SignatureDoesNotMatch']]) {
    expect(await row(job).locator('td').nth(6).innerText(), job).toBe('failed');
    expect(await row(job).locator('td.last-success').innerText(), job).toBe('never');
    expect(await row(job).locator('td.last-failure').innerText(), job).toMatch(new RegExp(`^${code} `));
  }
  // The instance table says which instance failed and why.
  expect(await page.locator('#job-redis-wrong-key tr[data-instance="r-browser01"]').innerText()).toContain('SignatureDoesNotMatch');
  expect(await page.locator('#job-fleet dl.figures').innerText()).toMatch(/devices\s*20\n/);

  const bar = page.locator('tr[data-account="aliyun-test"][data-api="BatchQuerySessionByClientIds"] meter');
  await expect.poll(() => bar.isVisible()).toBe(true);
  expect((await bar.boundingBox())!.width).toBeGreaterThan(50);
  expect(Number(await bar.getAttribute('value'))).toBeGreaterThan(0);

  // /status.css applied under `style-src 'self'` (the header cells' background comes from it).
  // (Browser-side code as strings: this project compiles without the DOM library.)
  expect(await page.evaluate("getComputedStyle(document.querySelector('th')).backgroundColor")).toBe('rgb(244, 244, 246)');
  expect(await page.locator('#credentials').innerText()).toMatch(/aliyun-test\s+aliyun\s+access_key\s+ok/);

  const timing = (await page.evaluate(
    "(() => { const nav = performance.getEntriesByType('navigation')[0]; return { response: nav.responseEnd - nav.requestStart, load: nav.loadEventEnd - nav.startTime }; })()",
  )) as { response: number; load: number };
  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  console.log(`status page: ${Buffer.byteLength(body)} bytes of HTML (3 jobs), response ${timing.response.toFixed(1)} ms, loaded in ${timing.load.toFixed(1)} ms; screenshot: ${SCREENSHOT}`);
  expect(problems).toEqual([]);
}, 60_000);

test('the Configuration link shows the loaded YAML with every secret masked; no page shows a secret', async () => {
  const page = await context.newPage();
  await openStatus(page);
  const status = await page.content();
  await page.getByRole('link', { name: 'Configuration' }).first().click();
  await page.waitForURL(/\/config$/);
  const yaml = await page.locator('pre#config').innerText();
  expect(yaml).toContain('access_key_secret: <secret>');
  expect(yaml).toContain(`instance_id: ${FLEET}`);
  const secrets = { secret: ALIYUN.access_key_secret, wrong_secret: WRONG_SECRET, key_id: ALIYUN.access_key_id, password: HTPASSWD_COST10.password, hash: HTPASSWD_COST10.hash };
  expect(findSecretLeaks([status, await page.content()].join('\n'), secrets)).toEqual([]);
  expect(problems).toEqual([]);
}, 60_000);

test('auto-refresh works without a script: the 10 s choice reloads the page by itself', async () => {
  const page = await context.newPage();
  await openStatus(page);
  await page.getByRole('link', { name: '10 s' }).click();
  await page.waitForURL(/\?refresh=10$/);
  const first = await page.locator('footer').innerText();
  // The meta refresh loads the page again: a new "As of" time.
  await page.waitForEvent('load', { timeout: 15_000 });
  expect(await page.locator('footer').innerText()).not.toBe(first);
  expect(problems).toEqual([]);
}, 60_000);

test('without the password the browser gets 401 and no page', async () => {
  const anonymous = await browser!.newContext();
  try {
    const page = await anonymous.newPage();
    // Headless Chromium has no password dialog: the navigation fails after the 401 arrives.
    const [response] = await Promise.all([page.waitForEvent('response'), page.goto(`${exporter!.url}/`).catch(() => undefined)]);
    expect([response.status(), response.headers()['www-authenticate']]).toEqual([401, 'Basic']);
  } finally {
    await anonymous.close();
  }
});
