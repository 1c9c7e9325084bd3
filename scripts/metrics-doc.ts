// docs/metrics.md, generated from the metric family declarations (the exporter's own and each job type's), so the
// reference cannot drift from what a scrape shows. `node dist/scripts/metrics-doc.js` writes it; `--check` exits 1
// when the checked-in file is out of date (a test does the same).
import fs from 'node:fs';
import path from 'node:path';
import { JOB_TYPES } from '../src/apis';
import type { AnyJobType } from '../src/core/job-type';
import type { FamilyDecl } from '../src/metrics/declare';
import { SELF_FAMILIES } from '../src/metrics/self-metrics';
import { CLUSTER_FAMILIES } from '../src/cluster/metrics';

/** Run from the project's root (npm scripts are). */
const METRICS_DOC = path.resolve('docs/metrics.md');

const INTRO = `# Metrics reference

This file is generated from the metric declarations (\`npm run docs\`); a test fails when it is out of date.

Every cloud-derived value is refreshed by a scheduled poll, never at scrape time; HELP strings say so.
No sample carries a timestamp. Every series of a job also carries the job's static \`labels:\` (for example \`env="prod"\`).
Label \`instance_id\` is always the cloud instance ID; the exporter never emits \`instance\` or \`job\` labels.

Series known in advance (configured jobs, accounts × APIs, configured instances) exist from start-up.
A failed poll keeps the last good values of that job (or that instance, for multi-instance jobs) until they are
older than \`stale_after\` (default: two schedule intervals); then they are dropped. Devices, IPs and nodes that
disappear from a successful poll disappear from the output at once.`;

const DEFAULT_METRICS_ROW =
  '| `process_*`, `nodejs_*` | | | prom-client\'s default process and runtime metrics, without `nodejs_active_{handles,requests,resources}_total` (gauges named like counters, which `promtool check metrics` rejects; the same counts are in `nodejs_active_{handles,requests,resources}` by type) |';

const CLUSTER_INTRO = `Only with a \`cluster:\` block ([docs/scaling.md](scaling.md)). Without sharding (HA), every replica serves
every job's families from the run the leader published, with the same values and the same staleness; the exporter's
own counters (\`cloud_session_exporter_api_requests_total\`, \`..._job_runs_total\`) count what each replica did itself.
With sharding, each replica serves its shard's series, the instance series (\`cloud_session_exporter_instance_*\`) of
the instances it polls included: sum per-group families such as \`aliyun_mqtt_clients\` over the replicas.`;

/** The meaning column: the declaration's doc, else its HELP without the standard refresh sentence. */
function meaning(f: FamilyDecl): string {
  return f.doc ?? f.help.replace(/ (Refreshed on the job schedule|Updated by each probe run), not at scrape time\.$/, '');
}

function table(families: readonly FamilyDecl[], extraRows: string[] = []): string {
  const rows = families.map((f) => `| \`${f.name}\` | ${f.type} | ${f.labels.map((l) => `\`${l}\``).join(', ')} | ${meaning(f)} |`);
  return ['| metric | type | labels | meaning |', '|---|---|---|---|', ...rows, ...extraRows].join('\n');
}

function section(t: AnyJobType): string {
  const parts = [`## ${t.docs.title} (\`${t.type}\`)`];
  if (t.docs.intro) parts.push(t.docs.intro);
  parts.push(table([...t.families, ...(t.jobMetrics ?? [])]));
  if (t.docs.notes) parts.push(t.docs.notes);
  return parts.join('\n\n');
}

export function renderMetricsDoc(jobTypes: readonly AnyJobType[] = JOB_TYPES): string {
  return `${[INTRO, `## Exporter self-metrics\n\n${table(SELF_FAMILIES, [DEFAULT_METRICS_ROW])}`, `## Cluster (\`cluster:\`)\n\n${CLUSTER_INTRO}\n\n${table(CLUSTER_FAMILIES)}`, ...jobTypes.map(section)].join('\n\n')}\n`;
}

if (require.main === module) {
  const text = renderMetricsDoc();
  if (process.argv.includes('--check')) {
    const current = fs.existsSync(METRICS_DOC) ? fs.readFileSync(METRICS_DOC, 'utf8') : '';
    if (current !== text) {
      process.stderr.write(`${METRICS_DOC} is out of date: run npm run docs\n`);
      process.exit(1);
    }
  } else {
    fs.writeFileSync(METRICS_DOC, text);
    process.stdout.write(`wrote ${METRICS_DOC}\n`);
  }
}
