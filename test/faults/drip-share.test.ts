// The fault suite's mixed case: the emulator drips 20% of its answers (headers, then a byte a second) while the rest
// answer normally. Runs keep succeeding on retries or fail on time, recover when the drip stops, and SIGTERM at any
// moment exits within grace + 1 s.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { emulatorProcess, parseExposition, seriesOf, type EmulatorProcess } from '../helpers/harness';
import { startExporter, waitFor } from '../helpers/exporter-process';
import { findSecretLeaks } from '../helpers/secrets';
import { ENV, GRACE_MS, SCENARIO, SECRETS, suiteConfig } from './setup';

const DRIP = { BatchQuerySessionByClientIds: { drip_rate: 0.2 }, DescribeClientConnections: { drip_rate: 0.2 } };
/** Every 2 s: the default deadline is 1.8 s, the request timeout 400 ms, so a dripped call has time for retries. */
const EVERY_2S = (yaml: string) => yaml.replace(/schedule: "\* \* \* \* \* \*"/g, 'schedule: "*/2 * * * * *"');

let emu: EmulatorProcess;
beforeAll(async () => {
  emu = await emulatorProcess(SCENARIO);
});
afterAll(async () => {
  await emu?.close();
});

const setFaults = (faults: unknown) => fetch(`${emu.url}/_emulator/faults`, { method: 'POST', body: JSON.stringify(faults) });

describe('a drip answering 20% of calls', () => {
  test('runs succeed on retries or fail on time, recover within two intervals of the end of the drip', async () => {
    await setFaults(DRIP);
    const e = await startExporter(EVERY_2S(suiteConfig(emu.url, emu.url)), ENV, [`--web.shutdown-grace-period=${GRACE_MS}ms`]);
    const scrapes: string[] = [];
    try {
      let longest = 0;
      const end = Date.now() + 9000;
      while (Date.now() < end) {
        const text = await e.scrape();
        scrapes.push(text);
        for (const [, v] of seriesOf(parseExposition(text), 'cloud_session_exporter_job_duration_seconds')) longest = Math.max(longest, v);
        await new Promise((r) => setTimeout(r, 250));
      }
      const m = parseExposition(scrapes[scrapes.length - 1]);
      const runs = (job: string, result: string) => m.value('cloud_session_exporter_job_runs_total', { job_name: job, result }) ?? 0;
      // The drip was met (Timeout counted), yet most runs succeeded; none ran past its deadline (1.8 s) by more
      // than the 500 ms a job has to hand back its results.
      expect(seriesOf(m, 'cloud_session_exporter_api_requests_total', { code: 'Timeout' }).reduce((a, [, v]) => a + v, 0)).toBeGreaterThan(0);
      expect(runs('fleet', 'success')).toBeGreaterThanOrEqual(3);
      expect(runs('fleet', 'skipped_overlap') + runs('mongo', 'skipped_overlap')).toBe(0);
      expect(longest).toBeLessThanOrEqual(1.8 + 0.5);
      console.log(`20% drip: fleet ${runs('fleet', 'success')} ok / ${runs('fleet', 'failure')} failed, mongo ${runs('mongo', 'success')} ok / ${runs('mongo', 'failure')} failed, longest run ${longest.toFixed(2)} s`);

      await setFaults({});
      const recovered = await waitFor('both jobs succeed within two intervals', async () => {
        const text = await e.scrape();
        const mm = parseExposition(text);
        return ['fleet', 'mongo'].every((job) => mm.value('cloud_session_exporter_job_success', { job_name: job }) === 1);
      }, 4000);
      console.log(`20% drip: recovered ${recovered} ms after the drip stopped`);
      const stats = await emu.stats();
      expect(stats.apis.BatchQuerySessionByClientIds.busiest_window).toBeLessThanOrEqual(100);
      expect(stats.apis.DescribeClientConnections.busiest_window).toBeLessThanOrEqual(5);
    } finally {
      await e.terminate();
      await setFaults({});
    }
    expect(findSecretLeaks([...scrapes, e.output()].join('\n'), SECRETS)).toEqual([]);
  });

  test.each([0, 1, 2])('SIGTERM at a random moment (%i) exits 0 within grace + 1 s', async () => {
    await setFaults(DRIP);
    const e = await startExporter(EVERY_2S(suiteConfig(emu.url, emu.url)), ENV, [`--web.shutdown-grace-period=${GRACE_MS}ms`]);
    try {
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 2500));
      const exit = await e.terminate();
      expect(exit.code).toBe(0);
      expect(exit.ms).toBeLessThanOrEqual(GRACE_MS + 1000);
    } finally {
      e.kill();
      await setFaults({});
    }
  });
});
