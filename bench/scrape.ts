// Figures 4 and 5: GET /metrics end to end (client in this process, server in a fresh child), with and without
// gzip, ours against prom-client on the same series; event-loop stalls inside the server; RSS per device.
import crypto from 'node:crypto';
import path from 'node:path';
import { get, getJson, log, percentile, round, startNode } from './lib';

export interface ScrapeFigure {
  impl: 'ours' | 'promclient';
  config: { series: number; gzip: boolean; scrapes: number; server: string; stall_monitor: string };
  p50_ms: number;
  p99_ms: number;
  bytes: number;
  max_stall_ms: number;
  /** Max stall over 1 s with no scrape, same process, just before: the machine's own noise. */
  idle_stall_ms: number;
  build_ms: number;
  rss_delta_mb: number;
  rss_bytes_per_device: number;
  peak_rss_mb: number;
  /** sha256 of the aliyun_mqtt_client_online family lines (plain scrape), to check both impls send the same bytes. */
  family_sha256?: string;
}

function familyHash(text: string): string {
  const i = text.indexOf('# HELP aliyun_mqtt_client_online');
  let j = text.indexOf('\n\n', i);
  if (j < 0) j = text.length;
  return crypto.createHash('sha256').update(text.slice(i, j).replace(/\n+$/, '')).digest('hex').slice(0, 16);
}

export async function scrapeCase(impl: 'ours' | 'promclient', series: number, scrapes: number, tmp: string): Promise<ScrapeFigure[]> {
  const { child, match } = await startNode(['--expose-gc', 'dist/bench/scrape-worker.js', impl, String(series)], path.join(tmp, `scrape-${impl}-${series}.log`), /ready (\d+) (\{.*\})\n/, 600_000);
  const port = Number(match![1]);
  const info = JSON.parse(match![2]) as { rss_before: number; rss_after: number; build_ms: number };
  const base = `http://127.0.0.1:${port}`;
  const out: ScrapeFigure[] = [];
  try {
    // Stall with no scrape at all: what the shared machine alone does to the event loop (scheduling, GC).
    await get(`${base}/bench/reset`);
    await new Promise((r) => setTimeout(r, 1000));
    const idle = await getJson<{ max_stall_ms: number }>(`${base}/bench/stats`);
    for (const gzip of [false, true]) {
      const headers: Record<string, string> = gzip ? { 'Accept-Encoding': 'gzip' } : {};
      // Warm-up scrape (also the byte check).
      const warm = await get(`${base}/metrics`, headers, !gzip);
      const hash = gzip ? undefined : familyHash(warm.body.toString());
      const ms: number[] = [];
      let stall = 0;
      let bytes = 0;
      let peak = 0;
      for (let i = 0; i < scrapes; i++) {
        await get(`${base}/bench/reset`);
        // monitorEventLoopDelay drops a stall that begins before its first tick after reset(): let it tick first.
        await new Promise((r) => setTimeout(r, 50));
        const r = await get(`${base}/metrics`, headers, false);
        const s = await getJson<{ max_stall_ms: number; peak_rss: number }>(`${base}/bench/stats`);
        ms.push(r.ms);
        bytes = r.bytes;
        stall = Math.max(stall, s.max_stall_ms);
        peak = Math.max(peak, s.peak_rss);
      }
      const fig: ScrapeFigure = {
        impl,
        config: { series, gzip, scrapes, server: impl === 'ours' ? 'createHttpHandler (src/http.ts), BinaryGaugeLines + SnapshotStore' : 'prom-client Gauge, await registry.metrics(), zlib.gzip level 1 when asked', stall_monitor: 'monitorEventLoopDelay resolution 10 ms (reset, 50 ms, then the scrape), max over the scrapes; 0 = below resolution' },
        p50_ms: round(percentile(ms, 50), 1),
        p99_ms: round(percentile(ms, 99), 1),
        bytes,
        max_stall_ms: round(stall, 1),
        idle_stall_ms: round(idle.max_stall_ms, 1),
        build_ms: round(info.build_ms, 0),
        rss_delta_mb: round((info.rss_after - info.rss_before) / 2 ** 20, 1),
        rss_bytes_per_device: round((info.rss_after - info.rss_before) / series, 0),
        peak_rss_mb: round(peak / 2 ** 20, 1),
        family_sha256: hash,
      };
      log(`scrape ${impl} ${series} series gzip=${gzip}: p50 ${fig.p50_ms} ms p99 ${fig.p99_ms} ms, ${fig.bytes} B, stall ${fig.max_stall_ms} ms, RSS ${fig.rss_bytes_per_device} B/device`);
      out.push(fig);
    }
  } finally {
    await child.stop();
  }
  return out;
}
