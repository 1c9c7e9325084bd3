// Child process of figure 6: the MQTT job's per-device history (FleetState) for N devices as a running job keeps it —
// aligned with a packed inventory, two polls observed, 2% of the devices changed — with its memory (measured after
// forced collections), the time of each per-poll step, and its state file's size and write and read times.
// Usage: node --expose-gc dist/bench/fleet-worker.js <devices> <dir>; prints "result <json>".
import path from 'node:path';
import { FleetState, STATUS_OFFLINE, STATUS_ONLINE } from '../src/apis/aliyun-mqtt-sessions/fleet-state';
import { Inventory } from '../src/apis/aliyun-mqtt-sessions/inventory';
import { readStateFile, writeStateFile } from '../src/apis/aliyun-mqtt-sessions/state-file';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const GROUPS = 10;
const THRESHOLDS = [300, 3600, 86_400, 604_800];

function settled(): NodeJS.MemoryUsage {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage();
}

function timed<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const r = f();
  return [r, performance.now() - t0];
}

async function main(): Promise<void> {
  const n = Number(process.argv[2]);
  const dir = process.argv[3];
  const ids = Array.from({ length: n }, (_, i) => `GID_bench${i % GROUPS}@@@dev-${String(i + 1).padStart(7, '0')}`);
  const inv = new Inventory(ids, Array.from({ length: GROUPS }, (_, g) => `GID_bench${g}`), Uint32Array.from({ length: n }, (_, i) => i % GROUPS), 0);
  ids.length = 0;
  const first = Uint8Array.from({ length: n }, (_, i) => (i % 5 === 0 ? STATUS_OFFLINE : STATUS_ONLINE));
  const second = first.map((s, i) => (i % 50 === 0 ? s ^ 1 : s));
  const now = Math.floor(Date.now() / 1000);
  const before = settled();

  const state = new FleetState(3600);
  const [, alignMs] = timed(() => state.alignTo(inv.ids));
  state.observe(first, () => now - 120, () => undefined);
  let changes = 0;
  const [, observeMs] = timed(() => state.observe(second, () => now, () => void changes++));
  const after = settled();

  const [, offlineMs] = timed(() => state.offlineLongerThan(second, inv.groupOf, GROUPS, THRESHOLDS, now));
  const [top, topMs] = timed(() => state.mostFlapping(20, now));
  const file = path.join(dir, `fleet-${n}.state`);
  const owner = { jobName: 'bench', instanceId: 'post-cn-bench0001' };
  let t0 = performance.now();
  const bytes = await writeStateFile(file, owner, state.snapshot(), now);
  const writeMs = performance.now() - t0;
  t0 = performance.now();
  const read = await readStateFile(file, owner);
  const readMs = performance.now() - t0;
  if (!read.found || 'problem' in read) throw new Error(`the state file did not read back: ${JSON.stringify(read)}`);
  const [, restoreMs] = timed(() => FleetState.restore(read.state, 3600).state.alignTo(inv.ids));

  process.stdout.write(
    `result ${JSON.stringify({
      devices: n,
      changes,
      top: top.length,
      array_bytes_per_device: (after.arrayBuffers - before.arrayBuffers) / n,
      rss_bytes_per_device: (after.rss - before.rss) / n,
      heap_bytes_per_device: (after.heapUsed - before.heapUsed) / n,
      align_ms: alignMs,
      observe_ms: observeMs,
      offline_longer_than_ms: offlineMs,
      most_flapping_ms: topMs,
      file_bytes: bytes,
      write_ms: writeMs,
      read_ms: readMs,
      restore_ms: restoreMs,
    })}\n`,
  );
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
