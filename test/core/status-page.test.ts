// The status page's rendering on a hand-made model: every free-text value escaped (job names are checked by the
// config, but instance IDs, account names, error messages, figures and reload errors are not), registered secrets
// masked, unknown figures shown as unknown, auto-refresh only on request; and /config's masking on its own.
import { describe, expect, test } from 'vitest';
import { formatSpan, refreshFrom, renderConfigPage, renderStatusPage } from '../../src/core/status-page';
import type { StatusModel } from '../../src/core/status-model';
import { maskedConfigYaml } from '../../src/core/config-view';
import { registerSecret } from '../../src/util/redact';

const NOW = Date.parse('2026-11-22T10:00:00Z');
const HOSTILE = `<script>alert(1)</script>"><img src=x onerror=alert(2)>'`;
const SECRET = 'Zq8-registered-secret-value';
registerSecret(SECRET);

/** Every tag of a page: text has "<" and '"' escaped, so each "<" opens a real tag and each '"' bounds a value. */
function tagsOf(html: string): Array<{ name: string; attributes: string[] }> {
  return [...html.matchAll(/<\/?([a-zA-Z0-9!]+)((?:\s+[a-zA-Z-]+(?:="[^"]*")?)*)\s*\/?>/g)].map((m) => ({
    name: m[1].toLowerCase(),
    attributes: [...m[2].replace(/="[^"]*"/g, '').matchAll(/\s+([a-zA-Z-]+)/g)].map((a) => a[1].toLowerCase()),
  }));
}

const PAGE_ELEMENTS = new Set(
  '!doctype html head meta title link body header h1 nav strong a p main section h2 table tr th td ul li thead tbody time code span small h3 dl div dt dd br meter footer'.split(' '),
);
const PAGE_ATTRIBUTES = new Set('html lang charset name content rel href class id data-job data-instance data-account data-api datetime title min max low high optimum value colspan'.split(' '));

function model(): StatusModel {
  const failure = { instanceId: `i-${HOSTILE}`, codes: ['SignatureDoesNotMatch'], message: `refused ${HOSTILE} with key ${SECRET}` };
  const failedRun = { startedAt: NOW - 18_000, durationMs: 6200, ok: false, failures: [failure] };
  return {
    now: NOW,
    build: { version: '1.2.3', revision: 'abc', node: 'v20.20.2' },
    startedAt: NOW - 3_723_000,
    configFile: `/etc/${HOSTILE}.yml`,
    lastReload: { ok: false, at: NOW - 5000, error: `jobs[0].x (line 3): unknown key "${HOSTILE}"` },
    lastGoodLoadAt: NOW - 3_723_000,
    telemetryPath: '/metrics',
    ready: false,
    notReady: [`job fleet: cannot read client_ids_file ${HOSTILE}: ENOENT`],
    jobs: [
      {
        name: 'fleet',
        type: 'aliyun_mqtt_sessions',
        schedule: '*/30 * * * * *',
        intervalMs: 30_000,
        nextRunAt: NOW + 12_000,
        // The runner's own way: the last run, when it failed, is the last failed run.
        lastRun: failedRun,
        lastFailedRun: failedRun,
        lastSuccessAt: NOW - 48_000,
        figures: [
          { label: 'devices', value: 6000 },
          { label: 'online', value: undefined },
          { label: `figure ${HOSTILE}`, value: `value ${HOSTILE}`, note: `note ${HOSTILE}`, warn: true },
          { label: 'cycle time', value: 6.2, unit: 'seconds' },
          { label: 'share', value: 0.5, unit: 'ratio' },
        ],
        instances: [{ id: `i-${HOSTILE}`, record: { ok: false, lastSuccessAt: NOW - 48_000, failure }, stale: true, figures: [{ label: 'connections', value: 1234567 }] }],
      },
    ],
    apis: [{ account: `acct-${HOSTILE}`, api: 'BatchQuerySessionByClientIds', qps: 100, marginMs: 20, queueDepth: 3, activity: { lastMinute: { calls: 1500, throttled: 2, retries: 2 }, total: { calls: 9000, throttled: 5, retries: 7 } } }],
    credentials: [
      { account: `acct-${HOSTILE}`, provider: 'aliyun', held: { account: `acct-${HOSTILE}`, type: 'ram_role_arn', state: 'failing', expiry: NOW + 600_000, refreshes: { success: 3, failure: 1 }, lastError: `STS said ${HOSTILE}` } },
      { account: 'unused', provider: 'tencentcloud' },
    ],
  };
}

describe('renderStatusPage', () => {
  const page = renderStatusPage(model());

  test('every attacker-influenced string is escaped: the only elements and attributes are the page\'s own', () => {
    const tags = tagsOf(page);
    expect([...new Set(tags.map((t) => t.name))].filter((n) => !PAGE_ELEMENTS.has(n))).toEqual([]);
    expect([...new Set(tags.flatMap((t) => t.attributes))].filter((a) => !PAGE_ATTRIBUTES.has(a))).toEqual([]);
    // The text is still there for a person to read, escaped, in text and in attribute values alike.
    expect(page).toContain('&#60;script&#62;alert(1)&#60;/script&#62;&#34;&#62;&#60;img src=x onerror=alert(2)&#62;&#39;');
    expect(page).toContain('data-account="acct-&#60;script&#62;');
    expect(page.split('&#60;script&#62;').length - 1).toBeGreaterThanOrEqual(10);
  });

  test('a registered secret inside an error message is masked', () => {
    expect(page).not.toContain(SECRET);
    expect(page).toContain('with key REDACTED');
  });

  test('every section is there, with what each must say', () => {
    for (const id of ['exporter', 'jobs', 'apis', 'credentials']) expect(page).toContain(`<section id="${id}">`);
    expect(page).toContain('1.2.3 (revision abc, Node.js v20.20.2)');
    expect(page).toContain('1 h 2 min (started 2026-11-22 08:57:57Z)');
    expect(page).toMatch(/last load <span class="bad">failed<\/span> <time[^>]*>5.00 s ago<\/time>: <span class="message">jobs\[0\]\.x \(line 3\)/);
    expect(page).toContain('running the configuration loaded <time');
    expect(page).toContain('<span class="bad">not ready</span><ul><li>job fleet: cannot read client_ids_file');
    expect(page).toMatch(/<td class="last-success"><time[^>]*>48.0 s ago<\/time><\/td>/);
    expect(page).toMatch(/<td class="last-failure"><code>SignatureDoesNotMatch<\/code> <small><time[^>]*>18.0 s ago/);
    expect(page).toContain('<td>in 12.0 s'.replace('<td>', '<td><time datetime="2026-11-22T10:00:12.000Z" title="2026-11-22 10:00:12Z">'));
    expect(page).toContain('<span class="bad">stale</span>');
    expect(page).toContain('1,234,567');
    // Quota use: 1,500 calls of 100 QPS × 60 s.
    expect(page).toContain('<meter min="0" max="1" low="0.8" high="0.95" optimum="0" value="0.25"');
    expect(page).toMatch(/2 <small>\/ 5<\/small>/);
    expect(page).toContain('<span class="bad">failing</span>');
    expect(page).toContain('not in use by any job');
  });

  test('an earlier failed run is told under the instances once the job recovered, not while the table shows it', () => {
    expect(page).not.toContain('Last failed run');
    const m = model();
    const failed = m.jobs[0].lastRun!;
    Object.assign(m.jobs[0], { lastRun: { startedAt: NOW - 3000, durationMs: 900, ok: true, failures: [] }, lastFailedRun: failed });
    m.jobs[0].instances[0].record = { ok: true, lastSuccessAt: NOW - 2100 };
    expect(renderStatusPage(m)).toMatch(/<p class="last-failure">Last failed run <time[^>]*>18.0 s ago<\/time>: <br>i-&#60;script&#62;.*: <code>SignatureDoesNotMatch<\/code>/);
  });

  test('figures: a value not known yet reads "unknown", never 0; units and warnings show', () => {
    expect(page).toMatch(/<dt>online<\/dt><dd><span class="none">unknown<\/span>/);
    expect(page).toMatch(/<dt>devices<\/dt><dd><span class="">6,000<\/span>/);
    expect(page).toMatch(/<dt>cycle time<\/dt><dd><span class="">6.20 s<\/span>/);
    expect(page).toMatch(/<dt>share<\/dt><dd><span class="">50.0%<\/span>/);
    expect(page).toMatch(/<span class="bad">value &#60;script/);
  });

  test('no script, no inline style: the page works under a strict Content-Security-Policy', () => {
    const tags = tagsOf(page);
    expect(tags.filter((t) => t.name === 'script' || t.name === 'style' || t.attributes.some((a) => a === 'style' || a.startsWith('on')))).toEqual([]);
    expect(page).toContain('<link rel="stylesheet" href="/status.css">');
  });

  test('auto-refresh only when asked for, with one of the offered periods', () => {
    expect(page).not.toContain('http-equiv="refresh"');
    expect(renderStatusPage(model(), refreshFrom('refresh=30'))).toContain('<meta http-equiv="refresh" content="30">');
    for (const q of ['refresh=1', 'refresh=30"><x', 'refresh=', 'other=30']) expect(refreshFrom(q), q).toBeUndefined();
  });
});

test('formatSpan reads as a person would say it', () => {
  expect([850, 6200, 48_000, 250_000, 3_723_000, 180_000_000].map(formatSpan)).toEqual(['850 ms', '6.20 s', '48.0 s', '4 min 10 s', '1 h 2 min', '2 d 2 h']);
});

describe('/config', () => {
  test('secrets are masked by key name, registered secrets wherever they are, file paths stay, and the page escapes the YAML', () => {
    const doc = {
      accounts: [
        { name: 'a', provider: 'aliyun', access_key_id: 'LTAI-not-registered-1', access_key_secret: 'not-registered-secret-2', proxy_url: 'http://user:pw-not-registered-3@proxy:3128' },
        { name: 'b', provider: 'tencentcloud', secret_key_file: '/run/secrets/tencent_key', credentials: { type: 'ram_role_arn', external_id: 'ext-not-registered-4', token: 12345678 } },
      ],
      jobs: [{ name: 'j', labels: { note: `has ${SECRET} inside`, html: HOSTILE }, subscribe: { access_key_secret: 'sub-not-registered-5', device_id: 'dev-1' } }],
    };
    const yaml = maskedConfigYaml(doc);
    for (const s of ['LTAI-not-registered-1', 'not-registered-secret-2', 'pw-not-registered-3', 'ext-not-registered-4', '12345678', 'sub-not-registered-5', SECRET]) expect(yaml, s).not.toContain(s);
    expect(yaml).toContain('access_key_secret: <secret>');
    expect(yaml).toContain('proxy_url: http://user:<secret>@proxy:3128');
    expect(yaml).toContain('secret_key_file: /run/secrets/tencent_key');
    expect(yaml).toContain('device_id: dev-1');
    expect(yaml).toContain('has REDACTED inside');
    const page = renderConfigPage({ telemetryPath: '/metrics', configFile: '/etc/x.yml' }, yaml);
    expect(page).toContain('access_key_secret: &#60;secret&#62;');
    expect(page).not.toContain('<script');
  });
});
