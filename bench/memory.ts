// Memory over many polls with device churn: a real exporter process polling the emulator every few seconds, whose
// devices change status all the time and whose inventory file is rewritten every fourth cycle (5% of the devices
// replaced); it keeps a state_dir, so every cycle also writes the fleet state file. RSS and V8 heap are sampled after every completed cycle; flat means no growth from the first cycles to
// the last ones.
import fs from 'node:fs';
import path from 'node:path';
import { freePort, get, log, round, sample, selfSection, sleep, startNode, waitForStatus } from './lib';

export interface MemoryFigure {
  config: { devices: number; qps: number; cycles: number; schedule: string; churn_per_minute: number; inventory_rewrite_every: number; replaced_share: number };
  rss_mb: number[];
  heap_used_mb: number[];
  /** Mean of the last third minus mean of the second third (the first cycles include start-up growth). */
  rss_growth_mb: number;
  heap_growth_mb: number;
  transitions_total: number;
  error?: string;
}

const INSTANCE = 'post-cn-bench0001';
const GROUP = 'GID_bench';

function writeInventory(file: string, devices: number, generation: number, replacedShare: number): void {
  // Generation g replaces a sliding 5% window of the fleet with IDs the emulator does not know (reported offline).
  const replaced = Math.floor(devices * replacedShare);
  const from = (generation * replaced) % devices;
  const lines: string[] = [];
  for (let i = 0; i < devices; i++) {
    const inWindow = generation > 0 && i >= from && i < from + replaced;
    lines.push(inWindow ? `${GROUP}@@@new-g${generation}-${i}` : `${GROUP}@@@dev-${String(i + 1).padStart(7, '0')}`);
  }
  fs.writeFileSync(`${file}.tmp`, lines.join('\n') + '\n');
  fs.renameSync(`${file}.tmp`, file);
}

export async function memoryCase(devices: number, cycles: number, tmp: string): Promise<MemoryFigure> {
  const qps = 5000;
  const churn = 0.5;
  const every = 4;
  const share = 0.05;
  const schedule = '*/4 * * * * *';
  const dir = fs.mkdtempSync(path.join(tmp, `memory-${devices}-`));
  const devicesFile = path.join(dir, 'devices.txt');
  writeInventory(devicesFile, devices, 0, share);
  const scenario = {
    seed: 11,
    credentials: [{ account: 'bench', provider: 'aliyun', access_key_id: 'LTAI-bench', access_key_secret: 'bench-secret' }],
    latency: { min_ms: 1, max_ms: 5 },
    rate_limits: { BatchQuerySessionByClientIds: qps },
    // A raised quota is one the cloud granted: the per-source-IP ceiling (300) is raised with it, here and in the exporter.
    source_ip_limits: { mqtt: Math.max(300, qps) },
    mqtt: { instances: [{ instance_id: INSTANCE, region: 'cn-hangzhou', account: 'bench', fleets: [{ group_id: GROUP, prefix: 'dev-', size: devices, digits: 7, online_ratio: 0.7, churn_per_minute: churn }] }] },
  };
  fs.writeFileSync(path.join(dir, 'scenario.json'), JSON.stringify(scenario));
  const fig: MemoryFigure = {
    config: { devices, qps, cycles, schedule, churn_per_minute: churn, inventory_rewrite_every: every, replaced_share: share },
    rss_mb: [],
    heap_used_mb: [],
    rss_growth_mb: NaN,
    heap_growth_mb: NaN,
    transitions_total: 0,
  };
  const { child: emu, match } = await startNode(['dist/emulator/main.js', '--scenario', path.join(dir, 'scenario.json'), '--listen', '127.0.0.1:0'], path.join(dir, 'emulator.log'), /listening on (http:\/\/[0-9.:]+)/);
  let exp: { stop(): Promise<void> } | undefined;
  try {
    const config = {
      source_ip_qps: { onsmqtt: Math.max(300, qps) },
      accounts: [{ name: 'bench', provider: 'aliyun', access_key_id: 'LTAI-bench', access_key_secret: 'bench-secret', qps: { BatchQuerySessionByClientIds: qps } }],
      jobs: [{ name: 'churn', type: 'aliyun_mqtt_sessions', account: 'bench', schedule, region: 'cn-hangzhou', endpoint: match![1], instance_id: INSTANCE, client_ids_file: devicesFile, state_dir: path.join(dir, 'state') }],
    };
    fs.writeFileSync(path.join(dir, 'exporter.yml'), JSON.stringify(config));
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    exp = (await startNode(['dist/src/main.js', '--config.file', path.join(dir, 'exporter.yml'), '--web.listen-address', `127.0.0.1:${port}`, '--log.level', 'warn'], path.join(dir, 'exporter.log'))).child;
    await waitForStatus(`${base}/-/ready`, 200, 120_000, 250);
    let seen = 0;
    const until = Date.now() + cycles * 20_000;
    while (fig.rss_mb.length < cycles && Date.now() < until) {
      const text = (await get(`${base}/metrics`)).body.toString();
      const self = selfSection(text);
      const runs = sample(self, 'cloud_session_exporter_job_runs_total', 'job_name="churn",result="success"') ?? 0;
      if (runs > seen) {
        seen = runs;
        fig.rss_mb.push(round((sample(self, 'process_resident_memory_bytes') ?? NaN) / 2 ** 20, 1));
        fig.heap_used_mb.push(round((sample(self, 'nodejs_heap_size_used_bytes') ?? NaN) / 2 ** 20, 1));
        fig.transitions_total = [...text.matchAll(/^aliyun_mqtt_client_transitions_total\{[^}]*\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
        if (runs % every === 0) writeInventory(devicesFile, devices, runs / every, share);
      }
      await sleep(500);
    }
    if (fig.rss_mb.length < cycles) throw new Error(`only ${fig.rss_mb.length} of ${cycles} cycles completed in time`);
    const third = Math.floor(cycles / 3);
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    fig.rss_growth_mb = round(mean(fig.rss_mb.slice(-third)) - mean(fig.rss_mb.slice(third, 2 * third)), 1);
    fig.heap_growth_mb = round(mean(fig.heap_used_mb.slice(-third)) - mean(fig.heap_used_mb.slice(third, 2 * third)), 1);
  } catch (err) {
    fig.error = (err as Error).message;
  } finally {
    await exp?.stop();
    await emu.stop();
  }
  log(`memory ${devices} devices, ${fig.rss_mb.length} cycles: RSS ${fig.rss_mb.join(' ')} MB (growth ${fig.rss_growth_mb}), heap ${fig.heap_used_mb.join(' ')} MB (growth ${fig.heap_growth_mb}), transitions ${fig.transitions_total}${fig.error ? `, ERROR ${fig.error}` : ''}`);
  return fig;
}
