// The status page at `/` and the configuration page at `/config`, rendered on the server from a StatusModel.
//
// Every interpolated value goes through html``, which redacts and then HTML-escapes it: job names, error messages and
// label values come from configs and cloud answers, so nothing reaches the page unescaped by forgetting to escape it.
// The page needs no script and no inline style, so it works under a strict Content-Security-Policy from the web
// config: auto-refresh is a <meta http-equiv="refresh"> (CSP has no directive that blocks it), the quota bars are
// <meter> elements, and the only stylesheet is /status.css from the exporter itself (`style-src 'self'`); with
// `default-src 'none'` the page loses its styling and nothing else.
import { redact } from '../util/redact';
import type { StatusFigure } from './job-type';
import type { RunFailure, RunRecord } from './job-runner';
import type { ApiView, CredentialsView, JobView, LoadRecord, StatusModel } from './status-model';

/** Markup built by html``: inserted as it is into other markup. */
class Html {
  constructor(readonly text: string) {}
}

type Part = Html | string | number | undefined | null | false | readonly Part[];

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function part(v: Part): string {
  if (v === undefined || v === null || v === false) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(part).join('');
  return escapeHtml(redact(String(v)));
}

function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1];
  return new Html(out);
}

/** Auto-refresh periods the page offers, in seconds (?refresh=N); anything else means off. */
const REFRESH_CHOICES: readonly number[] = [10, 30, 60];

/** The auto-refresh period a query string asks for, if it is one the page offers. */
export function refreshFrom(query: string): number | undefined {
  const n = Number(new URLSearchParams(query).get('refresh'));
  return REFRESH_CHOICES.includes(n) ? n : undefined;
}

// ---- formatting ----

function utc(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** A span of time for a person: 850 ms, 6.2 s, 4 min 10 s, 3 h 5 min, 2 d 4 h. */
export function formatSpan(ms: number): string {
  const a = Math.abs(ms);
  if (a < 1000) return `${Math.round(a)} ms`;
  if (a < 10_000) return `${(a / 1000).toFixed(2)} s`;
  if (a < 60_000) return `${(a / 1000).toFixed(1)} s`;
  const s = Math.floor(a / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** A moment: relative first (what a person reads), the UTC time on hover and in the markup. */
function when(ms: number | undefined, now: number): Html {
  if (ms === undefined) return html`<span class="none">never</span>`;
  const d = ms - now;
  const rel = Math.abs(d) < 500 ? 'now' : d < 0 ? `${formatSpan(-d)} ago` : `in ${formatSpan(d)}`;
  return html`<time datetime="${new Date(ms).toISOString()}" title="${utc(ms)}">${rel}</time>`;
}

function count(n: number): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(ratio < 0.1 ? 2 : 1)}%`;
}

function figureValue(f: StatusFigure): Html {
  if (f.value === undefined) return html`<span class="none">unknown</span>`;
  const text = typeof f.value === 'string' ? f.value : f.unit === 'seconds' ? formatSpan(f.value * 1000) : f.unit === 'ratio' ? percent(f.value) : count(f.value);
  return html`<span class="${f.warn ? 'bad' : ''}">${text}</span>${f.note ? html` <small>(${f.note})</small>` : ''}`;
}

function result(ok: boolean | undefined): Html {
  if (ok === undefined) return html`<span class="none">not yet</span>`;
  return ok ? html`<span class="ok">ok</span>` : html`<span class="bad">failed</span>`;
}

function codes(failures: readonly RunFailure[]): Html {
  const all = [...new Set(failures.flatMap((f) => f.codes))];
  return html`${all.map((c, i) => html`${i ? ', ' : ''}<code>${c}</code>`)}`;
}

function loadRecord(r: LoadRecord, now: number): Html {
  return r.ok ? html`<span class="ok">successful</span> ${when(r.at, now)}` : html`<span class="bad">failed</span> ${when(r.at, now)}: <span class="message">${r.error ?? ''}</span>`;
}

// ---- sections ----

function exporterSection(m: StatusModel): Html {
  const web = m.web
    ? html`${m.web.file}; last read ${loadRecord(m.web.lastRead, m.now)}`
    : html`none: plain HTTP without authentication (<code>--web.config.file</code>)`;
  const reload = m.lastReload.ok ? loadRecord(m.lastReload, m.now) : html`${loadRecord(m.lastReload, m.now)}; running the configuration loaded ${when(m.lastGoodLoadAt, m.now)}`;
  const readiness = m.ready ? html`<span class="ok">ready</span>` : html`<span class="bad">not ready</span><ul>${m.notReady.map((r) => html`<li>${r}</li>`)}</ul>`;
  return html`<section id="exporter"><h2>Exporter</h2><table class="facts">
<tr><th>Version</th><td>${m.build.version} (revision ${m.build.revision}, Node.js ${m.build.node})</td></tr>
<tr><th>Uptime</th><td>${formatSpan(m.now - m.startedAt)} (started ${utc(m.startedAt)})</td></tr>
<tr><th>Configuration</th><td><a href="/config">${m.configFile}</a>; last load ${reload}</td></tr>
<tr><th>Web configuration</th><td>${web}</td></tr>
<tr><th>Readiness</th><td>${readiness}</td></tr>
</table></section>`;
}

function lastRunCells(run: RunRecord | undefined, runningSince: number | undefined, now: number): Html {
  const running = runningSince === undefined ? '' : html` <span class="running">running since ${when(runningSince, now)}</span>`;
  if (!run) return html`<td>${when(undefined, now)}${running}</td><td></td><td>${result(undefined)}</td>`;
  return html`<td>${when(run.startedAt, now)}${running}</td><td class="num">${formatSpan(run.durationMs)}</td><td>${result(run.ok)}</td>`;
}

function jobRow(j: JobView, now: number): Html {
  const failed = j.lastFailedRun;
  const lastFailure = failed ? html`${codes(failed.failures)} <small>${when(failed.startedAt, now)}</small>` : html`<span class="none">none</span>`;
  return html`<tr id="row-${j.name}" data-job="${j.name}"><td><a href="#job-${j.name}">${j.name}</a></td><td>${j.type}</td><td><code>${j.schedule}</code></td><td>${j.nextRunAt === undefined ? '' : when(j.nextRunAt, now)}</td>${lastRunCells(j.lastRun, j.runningSince, now)}<td class="last-success">${when(j.lastSuccessAt, now)}</td><td class="last-failure">${lastFailure}</td></tr>`;
}

function figureList(figures: readonly StatusFigure[]): Html {
  if (figures.length === 0) return html``;
  return html`<dl class="figures">${figures.map((f) => html`<div><dt>${f.label}</dt><dd>${figureValue(f)}</dd></div>`)}</dl>`;
}

function jobSection(j: JobView, now: number): Html {
  // Columns: every label an instance's figures use, in the order they first appear.
  const labels = [...new Set(j.instances.flatMap((i) => i.figures.map((f) => f.label)))];
  const rows = j.instances.map((i) => {
    const byLabel = new Map(i.figures.map((f) => [f.label, f]));
    const f = i.record.failure;
    const error = f ? html`${codes([f])} <span class="message">${f.message}</span>` : '';
    return html`<tr data-instance="${i.id}"><td>${i.id}</td><td>${result(i.record.ok)}${i.stale ? html` <span class="bad">stale</span>` : ''}</td><td>${when(i.record.lastSuccessAt, now)}</td>${labels.map((l) => {
      const fig = byLabel.get(l);
      return html`<td class="num">${fig ? figureValue(fig) : ''}</td>`;
    })}<td>${error}</td></tr>`;
  });
  // The instance table shows the last run's errors; an earlier failed run is told below it, once the job recovered.
  const failed = j.lastFailedRun !== j.lastRun ? j.lastFailedRun : undefined;
  const lastFailure = failed
    ? html`<p class="last-failure">Last failed run ${when(failed.startedAt, now)}: ${failed.failures.map((f) => html`<br>${f.instanceId ? html`${f.instanceId}: ` : ''}${codes([f])} <span class="message">${f.message}</span>`)}</p>`
    : '';
  return html`<section class="job" id="job-${j.name}"><h3>${j.name} <small>${j.type}, every ${formatSpan(j.intervalMs)}</small></h3>
${figureList(j.figures)}
<table class="instances"><thead><tr><th>Instance</th><th>Last poll</th><th>Last success</th>${labels.map((l) => html`<th>${l}</th>`)}<th>Error</th></tr></thead>
<tbody>${rows}</tbody></table>${lastFailure}</section>`;
}

function jobsSection(m: StatusModel): Html {
  return html`<section id="jobs"><h2>Jobs</h2>
<table class="jobs"><thead><tr><th>Job</th><th>Type</th><th>Schedule</th><th>Next run</th><th>Last run</th><th>Duration</th><th>Result</th><th>Last success</th><th>Last failure</th></tr></thead>
<tbody>${m.jobs.map((j) => jobRow(j, m.now))}</tbody></table>
${m.jobs.map((j) => jobSection(j, m.now))}</section>`;
}

function apiRow(a: ApiView): Html {
  const quota = a.qps * 60;
  const use = a.activity.lastMinute.calls / quota;
  const both = (k: 'throttled' | 'retries') => html`${count(a.activity.lastMinute[k])} <small>/ ${count(a.activity.total[k])}</small>`;
  return html`<tr data-account="${a.account}" data-api="${a.api}"><td>${a.account}</td><td>${a.api}</td><td class="num">${count(a.qps)}</td><td class="num">${count(a.activity.lastMinute.calls)}</td><td class="quota"><meter min="0" max="1" low="0.8" high="0.95" optimum="0" value="${Math.min(1, use)}" title="${count(a.activity.lastMinute.calls)} of ${count(quota)} calls a minute">${percent(use)}</meter> <span class="num">${percent(use)}</span></td><td class="num${a.activity.lastMinute.throttled ? ' bad' : ''}">${both('throttled')}</td><td class="num">${both('retries')}</td><td class="num">${formatSpan(a.marginMs)}</td><td class="num">${count(a.queueDepth)}</td></tr>`;
}

function apisSection(m: StatusModel): Html {
  return html`<section id="apis"><h2>Cloud APIs</h2>
<p>Per account and API: the rate limit the limiter enforces, and the calls sent in the last minute (retries included) against it.</p>
<table class="apis"><thead><tr><th>Account</th><th>API</th><th>QPS</th><th>Calls, last minute</th><th>Quota use, last minute</th><th>Throttled <small>1 min / total</small></th><th>Retries <small>1 min / total</small></th><th>Margin in use</th><th>Queue</th></tr></thead>
<tbody>${m.apis.map(apiRow)}</tbody></table></section>`;
}

function credentialsRow(c: CredentialsView, now: number): Html {
  const h = c.held;
  if (!h) return html`<tr data-account="${c.account}"><td>${c.account}</td><td>${c.provider}</td><td colspan="5" class="none">not in use by any job</td></tr>`;
  const stateClass = h.state === 'ok' ? 'ok' : h.state === 'starting' ? 'none' : 'bad';
  return html`<tr data-account="${c.account}"><td>${c.account}</td><td>${c.provider}</td><td>${h.type}</td><td><span class="${stateClass}">${h.state}</span></td><td>${h.expiry === undefined ? html`<span class="none">does not expire</span>` : when(h.expiry, now)}</td><td class="num">${count(h.refreshes.success)} ok, ${count(h.refreshes.failure)} failed</td><td class="message">${h.lastError}</td></tr>`;
}

function credentialsSection(m: StatusModel): Html {
  return html`<section id="credentials"><h2>Credentials</h2>
<table class="credentials"><thead><tr><th>Account</th><th>Provider</th><th>Type</th><th>State</th><th>Expiry</th><th>Refreshes</th><th>Last error</th></tr></thead>
<tbody>${m.credentials.map((c) => credentialsRow(c, m.now))}</tbody></table></section>`;
}

function page(title: string, body: Html, refresh?: number): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
${refresh ? html`<meta http-equiv="refresh" content="${refresh}">` : ''}<title>${title}</title><link rel="stylesheet" href="/status.css"></head>
<body>${body}</body></html>
`.text;
}

function header(m: { telemetryPath: string }, current: string): Html {
  const links: Array<[string, string]> = [
    ['/', 'Status'],
    [m.telemetryPath, 'Metrics'],
    ['/config', 'Configuration'],
    ['/-/healthy', 'Health'],
    ['/-/ready', 'Readiness'],
  ];
  return html`<header><h1>cloud-session-exporter</h1><nav>${links.map(([href, text]) => (href === current ? html`<strong>${text}</strong> ` : html`<a href="${href}">${text}</a> `))}</nav></header>`;
}

function refreshChoices(refresh: number | undefined): Html {
  const choice = (n: number | undefined, text: string) => (n === refresh ? html`<strong>${text}</strong>` : html`<a href="/${n ? `?refresh=${n}` : ''}">${text}</a>`);
  return html`<p class="refresh">Auto-refresh: ${choice(undefined, 'off')}${REFRESH_CHOICES.map((n) => html` · ${choice(n, `${n} s`)}`)}</p>`;
}

/** The status page, reloading itself every `refresh` seconds when given. */
export function renderStatusPage(m: StatusModel, refresh?: number): string {
  const body = html`${header(m, '/')}${refreshChoices(refresh)}
<main>${exporterSection(m)}
${jobsSection(m)}
${apisSection(m)}
${credentialsSection(m)}</main>
<footer>As of ${utc(m.now)}. The jobs poll on their schedules; this page, like a scrape, never calls the cloud.</footer>`;
  return page('cloud-session-exporter', body, refresh);
}

/** /config: the loaded configuration as masked YAML (config-view.ts). */
export function renderConfigPage(m: { telemetryPath: string; configFile: string }, maskedYaml: string): string {
  const body = html`${header(m, '/config')}<main><h2>Configuration</h2><p>${m.configFile}, as loaded: variables resolved, secrets shown as <code>&lt;secret&gt;</code> or REDACTED.</p>
<pre id="config">${maskedYaml}</pre></main>`;
  return page('cloud-session-exporter: configuration', body);
}

/** The one stylesheet (served at /status.css): the pages read the same without it. */
export const STATUS_CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:0 1.5em 2em;color:#1d1d1f;background:#fff}
header{display:flex;align-items:baseline;gap:2em;border-bottom:1px solid #ccc}
h1{font-size:1.3em}h2{font-size:1.15em;margin-top:1.6em}h3{font-size:1em;margin:1.4em 0 .3em}h3 small{font-weight:normal;color:#666}
nav a,nav strong{margin-right:1em}
table{border-collapse:collapse;margin:.3em 0}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f6;font-weight:600}table.facts th{width:12em}
td.num,.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37;font-weight:600}.bad{color:#c4161c;font-weight:600}.none{color:#888}.running{color:#8a5a00}
.message{color:#444;font-size:.9em}code{font-size:.95em}
meter{width:10em;vertical-align:middle}
dl.figures{display:flex;flex-wrap:wrap;gap:.4em 2em;margin:.3em 0}dl.figures div{display:flex;gap:.4em}dt{color:#555}dt::after{content:":"}dd{margin:0}
pre{background:#f6f8fa;padding:1em;overflow:auto;border:1px solid #ddd}
footer{margin-top:2em;color:#666;font-size:.9em}
`;
