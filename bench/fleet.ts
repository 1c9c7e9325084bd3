// Figure 6: what the MQTT job's per-device history (offline durations, flapping, last changes) costs at N devices —
// memory per device, the per-poll work, and the state file that keeps it across restarts. Each size in a fresh child
// process (bench/fleet-worker.ts) so that the memory figures are its own.
import path from 'node:path';
import { log, round, startNode } from './lib';

export interface FleetFigure {
  config: { devices: number; groups: number; flapping_window_s: number; changed_share: number };
  /** FleetState's typed arrays ÷ devices (ArrayBuffer bytes after forced collections). */
  array_bytes_per_device: number;
  rss_bytes_per_device: number;
  heap_bytes_per_device: number;
  observe_ms: number;
  align_ms: number;
  offline_longer_than_ms: number;
  most_flapping_ms: number;
  file_bytes: number;
  file_bytes_per_device: number;
  write_ms: number;
  read_ms: number;
  restore_ms: number;
}

export async function fleetCase(devices: number, tmp: string): Promise<FleetFigure> {
  const { child, match } = await startNode(['--expose-gc', 'dist/bench/fleet-worker.js', String(devices), tmp], path.join(tmp, `fleet-${devices}.log`), /result (\{.*\})\n/, 300_000);
  await child.stop();
  const r = JSON.parse(match![1]) as Record<string, number>;
  const fig: FleetFigure = {
    config: { devices, groups: 10, flapping_window_s: 3600, changed_share: 0.02 },
    array_bytes_per_device: round(r.array_bytes_per_device, 1),
    rss_bytes_per_device: round(r.rss_bytes_per_device, 1),
    heap_bytes_per_device: round(r.heap_bytes_per_device, 1),
    observe_ms: round(r.observe_ms, 1),
    align_ms: round(r.align_ms, 1),
    offline_longer_than_ms: round(r.offline_longer_than_ms, 1),
    most_flapping_ms: round(r.most_flapping_ms, 1),
    file_bytes: r.file_bytes,
    file_bytes_per_device: round(r.file_bytes / devices, 1),
    write_ms: round(r.write_ms, 0),
    read_ms: round(r.read_ms, 0),
    restore_ms: round(r.restore_ms, 0),
  };
  log(`fleet history ${devices} devices: ${fig.array_bytes_per_device} B/device in arrays, file ${fig.file_bytes_per_device} B/device, write ${fig.write_ms} ms, read ${fig.read_ms} ms`);
  return fig;
}
