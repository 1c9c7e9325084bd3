// The fault suite: the real exporter process against the emulator, with a misbehaving server in front of it for
// each fault a network or a cloud front end can produce. Per fault: no crash, no wedge (a run succeeds again within
// two intervals of the fault's end), SIGTERM exits 0 within grace + 1 s, open fds and memory back to their baseline,
// the fault's code in the self-metrics, no 1-second window over a limit at the emulator, and no secret in any output.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startBadServer, type BadMode, type BadServer } from '../helpers/bad-server';
import { emulatorProcess, parseExposition, seriesOf, type EmulatorProcess } from '../helpers/harness';
import { startExporter, waitFor, type ExporterProcess } from '../helpers/exporter-process';
import { findSecretLeaks } from '../helpers/secrets';
import { ENV, GRACE_MS, SCENARIO, SECRETS, suiteConfig } from './setup';

/** Fault → the code each provider's calls must report (the Tencent SDK loses the code of a non-200 answer). */
const FAULTS: Array<{ mode: BadMode; aliyun: string; tencent: string }> = [
  { mode: 'drip', aliyun: 'Timeout', tencent: 'Timeout' },
  { mode: 'reset', aliyun: 'NetworkError', tencent: 'NetworkError' },
  { mode: 'blackhole', aliyun: 'Timeout', tencent: 'Timeout' },
  { mode: 'garbage', aliyun: 'MalformedResponse', tencent: 'MalformedResponse' },
  { mode: 'huge', aliyun: 'ResponseTooLarge', tencent: 'ResponseTooLarge' },
  { mode: 'huge-chunked', aliyun: 'ResponseTooLarge', tencent: 'ResponseTooLarge' },
  { mode: 'html', aliyun: 'MalformedResponse', tencent: 'HTTP502' },
];

const figures: string[] = [];
let emu: EmulatorProcess;
beforeAll(async () => {
  emu = await emulatorProcess(SCENARIO);
});
afterAll(async () => {
  await emu?.close();
  console.log(`fault suite (grace ${GRACE_MS} ms, schedule 1 s):\n${['fault      recover  fds before/after  RSS MB before/after  SIGTERM exit', ...figures].join('\n')}`);
});

const jobOk = (text: string, job: string) => parseExposition(text).value('cloud_session_exporter_job_success', { job_name: job }) === 1;
const bothOk = async (e: ExporterProcess) => {
  const text = await e.scrape();
  return jobOk(text, 'fleet') && jobOk(text, 'mongo');
};
const codeCount = (text: string, api: string, code: string) => seriesOf(parseExposition(text), 'cloud_session_exporter_api_requests_total', { api, code }).reduce((a, [, v]) => a + v, 0);

describe('fault suite', () => {
  test('a run stuck on dripping answers longer than the grace period: SIGTERM exits 0 within grace + 1 s', async () => {
    const front = [await startBadServer({ mode: 'drip' }), await startBadServer({ mode: 'drip' })];
    // Calls that may take 30 s and runs that may take a minute: only the shutdown bound can end them in time.
    const config = suiteConfig(front[0].url, front[1].url)
      .replace(/request_timeout: 400ms/g, 'request_timeout: 30s')
      .replace(/schedule: "\* \* \* \* \* \*"/g, 'schedule: "0 * * * *"\n    timeout: 60s');
    const e = await startExporter(config, ENV, [`--web.shutdown-grace-period=${GRACE_MS}ms`]);
    try {
      await waitFor('calls hanging', () => front[0].openConnections > 0 && front[1].openConnections > 0, 5000);
      const exit = await e.terminate();
      expect(exit.code).toBe(0);
      expect(exit.ms).toBeGreaterThanOrEqual(GRACE_MS - 50);
      expect(exit.ms).toBeLessThanOrEqual(GRACE_MS + 1000);
      expect(e.output()).toMatch(/"msg":"(run|poll) stopped for shutdown"/);
      expect(e.output(), e.output()).not.toMatch(/"level":"error"/);
      expect(await waitFor('sockets closed', () => front[0].openConnections + front[1].openConnections === 0, 2000)).toBeGreaterThanOrEqual(0);
      figures.push(`stuck run  -        -                 -                    ${exit.ms} ms`);
    } finally {
      e.kill();
      for (const f of front) await f.close();
    }
  });

  test.each(FAULTS)('$mode', async ({ mode, aliyun, tencent }) => {
    const front: BadServer[] = [await startBadServer({ mode: 'proxy', upstream: emu.url, hugeBytes: 300 * 1024 * 1024 }), await startBadServer({ mode: 'proxy', upstream: emu.url, hugeBytes: 300 * 1024 * 1024 })];
    const e = await startExporter(suiteConfig(front[0].url, front[1].url), ENV, [`--web.shutdown-grace-period=${GRACE_MS}ms`]);
    const captured: string[] = [];
    try {
      await waitFor('first success', () => bothOk(e), 8000);
      // Two more cycles settle keep-alive connections and lazily loaded code before the baseline.
      await new Promise((r) => setTimeout(r, 2000));
      const fdsBefore = e.openFds();
      const rssBefore = e.rssBytes();

      for (const f of front) f.mode = mode;
      let during = '';
      await waitFor(`${mode}: both fault codes in the self-metrics, both jobs failing`, async () => {
        during = await e.scrape();
        const m = parseExposition(during);
        const failing = (job: string) => m.value('cloud_session_exporter_job_success', { job_name: job }) === 0;
        return codeCount(during, 'BatchQuerySessionByClientIds', aliyun) > 0 && codeCount(during, 'DescribeClientConnections', tencent) > 0 && failing('fleet') && failing('mongo');
      }, 6000).catch((err) => {
        console.log(during.split('\n').filter((l) => l.startsWith('cloud_session_exporter_api_requests_total')).join('\n'));
        throw err;
      });
      captured.push(during);
      expect(e.child.exitCode).toBeNull();

      for (const f of front) f.mode = 'proxy';
      const recoverMs = await waitFor(`${mode}: success again within two intervals`, async () => {
        const text = await e.scrape();
        captured.push(text);
        return bothOk(e);
      }, 2000 + 1000);
      // An undeclared huge body is read up to the cap (8 MiB a call here) before the call fails; the exporter then asks
      // V8 for a collection (src/util/reclaim.ts), after which the heap it grew to stays somewhat larger, and how much
      // of the freed buffers the allocator gives back to the OS varies: +19-28 MB in most runs, +65 MB once (a fresh
      // Node 22 container). Without the cap each answer would hold its 300 MB, far beyond this.
      const rssSlack = mode === 'huge-chunked' ? 96 * 1024 * 1024 : 16 * 1024 * 1024;
      let fdsAfter = 0;
      let rssAfter = 0;
      await waitFor(`${mode}: fds and RSS back to their baseline`, () => {
        fdsAfter = e.openFds();
        rssAfter = e.rssBytes();
        return fdsAfter - fdsBefore <= 4 && rssAfter - rssBefore < rssSlack;
        // The exporter collects at most every 3 s while oversized answers keep coming (src/util/reclaim.ts).
      }, 8000).catch((err) => {
        throw new Error(`${(err as Error).message}: fds ${fdsBefore} -> ${fdsAfter}, RSS ${rssBefore} -> ${rssAfter}`);
      });

      // And once more with the fault on: SIGTERM while calls hang must still exit on time.
      for (const f of front) f.mode = mode;
      await new Promise((r) => setTimeout(r, 700));
      for (const p of ['/', '/-/ready', '/-/healthy']) captured.push((await e.get(p)).body);
      const exit = await e.terminate();
      expect(exit.code).toBe(0);
      expect(exit.ms).toBeLessThanOrEqual(GRACE_MS + 1000);
      captured.push(e.output());
      expect(findSecretLeaks(captured.join('\n'), SECRETS)).toEqual([]);

      const stats = await emu.stats();
      expect(stats.apis.BatchQuerySessionByClientIds.busiest_window).toBeLessThanOrEqual(100);
      expect(stats.apis.DescribeClientConnections.busiest_window).toBeLessThanOrEqual(5);
      figures.push(
        `${mode.padEnd(10)} ${`${recoverMs} ms`.padEnd(8)} ${`${fdsBefore}/${fdsAfter}`.padEnd(17)} ${`${(rssBefore / 2 ** 20).toFixed(0)}/${(rssAfter / 2 ** 20).toFixed(0)}`.padEnd(20)} ${exit.ms} ms`,
      );
    } finally {
      e.kill();
      for (const f of front) await f.close();
    }
  });
});
