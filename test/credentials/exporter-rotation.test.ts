// The exporter polling with every credential type that can be exercised locally, against the emulator's identity
// endpoints issuing credentials that live 20 s: minutes of polling across many rotations with no failed run and no
// call refused for an expired token (the outage case is in exporter-outage.test.ts, run alongside).
import { describe, expect, test } from 'vitest';
import { ALIYUN, TENCENT, appFromYaml, emulator, parseExposition } from '../helpers/harness';
import { findSecretLeaks } from '../helpers/secrets';
import { POLL_INTERVAL_S, exporterYaml, failures, rotateStsFiles, scenario, setUp, sleep } from './exporter-fixtures';

/** How long the rotation test polls: 3 minutes in `npm test`; shorter while working on it (CSE_CRED_E2E_SECONDS). */
const POLL_SECONDS = Number(process.env.CSE_CRED_E2E_SECONDS ?? 180);
describe('the exporter with refreshing credentials', () => {
  test(`every local credential type polls for ${POLL_SECONDS} s of 20 s credentials: no failed run, no call refused, expiry moving forward`, async () => {
    const TTL = 20;
    const emu = await emulator(scenario(TTL));
    const { dir, blocks } = setUp(emu, TTL);
    const t = appFromYaml(exporterYaml(emu, blocks), {}, {}, dir);
    t.app.start();
    await t.app.whenReady();

    const expirySeen = new Map<string, number[]>();
    const started = Date.now();
    // Files carry no expiry: the exporter re-reads them every 10 s (plus 1 s settling), so a writer must replace them
    // at least that long before they expire, as a sidecar renewing at half-life would. Here: every 5 s of 20 s.
    let nextFileRotation = started + 5000;
    while (Date.now() - started < POLL_SECONDS * 1000) {
      await sleep(1000);
      if (Date.now() >= nextFileRotation) {
        rotateStsFiles(emu, dir, TTL * 1000);
        nextFileRotation += 5000;
      }
      const m = parseExposition(await t.scrape());
      for (const s of m.samples.filter((x) => x.name === 'cloud_session_exporter_credentials_expiry_timestamp_seconds')) {
        const seen = expirySeen.get(s.labels.account) ?? [];
        if (seen.at(-1) !== s.value) seen.push(s.value);
        expirySeen.set(s.labels.account, seen);
      }
    }
    const m = parseExposition(await t.scrape());
    const { failedRuns, refused } = await failures(t, emu);
    const summary = Object.keys(blocks).map((account) => {
      const ok = m.value('cloud_session_exporter_credentials_refreshes_total', { account, result: 'success' }) ?? 0;
      const failed = m.value('cloud_session_exporter_credentials_refreshes_total', { account, result: 'failure' }) ?? 0;
      return { account, refreshes: ok, failed_refreshes: failed, expiries: expirySeen.get(account)?.length ?? 0 };
    });
    console.log(`credential rotation over ${POLL_SECONDS} s (TTL ${TTL} s):\n${summary.map((s) => `  ${JSON.stringify(s)}`).join('\n')}`);

    expect(failedRuns).toEqual({});
    expect(refused).toEqual({});
    const rotations = Math.floor(POLL_SECONDS / 20);
    for (const s of summary) {
      // The first credential plus one per rotation; `sts` files are re-read when the test rewrites them.
      expect(s.refreshes, s.account).toBeGreaterThanOrEqual(rotations);
      if (s.account === 'ali-sts-files') continue;
      // Files state no expiry; every other type's expiry moved forward at each refresh, never back.
      const seen = expirySeen.get(s.account) ?? [];
      expect(seen.length, s.account).toBeGreaterThanOrEqual(rotations);
      for (let i = 1; i < seen.length; i++) expect(seen[i], s.account).toBeGreaterThan(seen[i - 1]!);
    }
    for (const job of Object.keys(blocks).map((a) => (a.startsWith('ali') ? `mqtt-${a}` : `mongo-${a}`))) {
      expect(m.value('cloud_session_exporter_job_success', { job_name: job }), job).toBe(1);
      expect(m.value('cloud_session_exporter_job_runs_total', { job_name: job, result: 'success' }), job).toBeGreaterThanOrEqual(POLL_SECONDS / POLL_INTERVAL_S - 3);
    }
    // Every credential the emulator issued, and the base keys: none in a log line or the exposition.
    const secrets: Record<string, string> = { ali: ALIYUN.access_key_secret, ten: TENCENT.secret_key };
    for (const c of emu.identity!.store.all()) Object.assign(secrets, { [`${c.keyId}.secret`]: c.secret, [`${c.keyId}.token`]: c.token });
    expect(findSecretLeaks(`${t.logs.join('\n')}\n${await t.scrape()}`, secrets)).toEqual([]);
  }, (POLL_SECONDS + 60) * 1000);
});
