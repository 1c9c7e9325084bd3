// Shared scenario and config of the aliyun_mqtt_sessions tests (test/mqtt and test/quota).
import fs from 'node:fs';
import path from 'node:path';
import { ALIYUN, ALIYUN_ACCOUNT_YAML, appFromYaml, parseExposition, tempDir, truthOf, type TestApp } from '../../helpers/harness';
import type { Scrape } from '../../helpers/exposition';
import type { Emulator } from '../../../emulator/server';

export const INSTANCE = 'post-cn-test0001';
export function scenario(extra: Record<string, unknown> = {}, fleet: Record<string, unknown> = {}) {
  return {
    seed: 7,
    credentials: [ALIYUN],
    mqtt: {
      instances: [
        {
          instance_id: INSTANCE,
          region: 'cn-hangzhou',
          fleets: [
            { group_id: 'GID_sensor', size: 4000, online_ratio: 0.7, ...fleet },
            { group_id: 'GID_gateway', size: 2000, online_ratio: 0.4, ...fleet },
          ],
        },
      ],
    },
    ...extra,
  };
}

export function config(url: string, opts: { file?: string; ids?: string[]; account?: string; jobExtra?: string } = {}): string {
  return `
accounts:
${ALIYUN_ACCOUNT_YAML}${opts.account ?? ''}
jobs:
  - name: fleet
    type: aliyun_mqtt_sessions
    account: aliyun-test
    schedule: "0 0 1 1 *"
    timeout: 60s
    region: cn-hangzhou
    endpoint: ${url}
    instance_id: ${INSTANCE}
    labels: {env: test}
${opts.file ? `    client_ids_file: ${opts.file}\n` : ''}${opts.ids ? `    client_ids: ${JSON.stringify(opts.ids)}\n` : ''}${opts.jobExtra ?? ''}`;
}

export const ENV = { AK: ALIYUN.access_key_id, SK: ALIYUN.access_key_secret };

export async function inventoryFile(e: Emulator, dir: string, extraLines: string[] = []): Promise<{ file: string; truth: Record<string, boolean> }> {
  const truth = (await truthOf(e)).mqtt[INSTANCE];
  const file = path.join(dir, 'devices.txt');
  fs.writeFileSync(file, ['# the test fleet', ...Object.keys(truth), ...extraLines].join('\n') + '\n');
  return { file, truth };
}


/**
 * An app polling every device the emulator knows (its inventory file written from the truth), after one run;
 * `yaml` may adjust the generated config.
 */
export async function pollWholeFleet(e: Emulator, opts: { jobExtra?: string; yaml?: (config: string) => string } = {}): Promise<{ t: TestApp; truth: Record<string, boolean>; m: Scrape }> {
  const dir = tempDir();
  const { file, truth } = await inventoryFile(e, dir);
  const t = appFromYaml((opts.yaml ?? ((c) => c))(config(e.url, { file, jobExtra: opts.jobExtra })), ENV, {}, dir);
  await t.app.runAllNow();
  return { t, truth, m: parseExposition(await t.scrape()) };
}
