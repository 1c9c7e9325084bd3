// Child process of figures 4 and 5: builds N per-device series with our fast path ("ours": BinaryGaugeLines +
// SnapshotStore + createHttpHandler, as the MQTT job renders them, with the job's per-device history beside them) or with prom-client ("promclient": a plain Gauge,
// registry.metrics()), serves them over HTTP and reports its own event-loop stalls and RSS.
// Usage: node --expose-gc dist/bench/scrape-worker.js <ours|promclient> <devices>; prints "ready <port> <json>".
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import zlib from 'node:zlib';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { createHttpHandler } from '../src/core/http';
import { createLogger } from '../src/util/log';
import { snapshotExposition } from '../src/metrics/exposition';
import { BinaryGaugeLines } from '../src/metrics/binary-gauge-lines';
import { joinLabels, renderLabels } from '../src/metrics/family';
import { SnapshotStore } from '../src/metrics/snapshot-store';
import { FleetState } from '../src/apis/aliyun-mqtt-sessions/fleet-state';
import { Inventory } from '../src/apis/aliyun-mqtt-sessions/inventory';

const HELP = '1 if the ApsaraMQ for MQTT device is connected, 0 if not. Refreshed on the job schedule, not at scrape time.';
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

function settle(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().rss;
}

async function main(): Promise<void> {
  const [impl, nArg] = process.argv.slice(2);
  const n = Number(nArg);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  await registry.metrics();
  const rss0 = settle();
  const t0 = performance.now();
  // Kept alive for the whole run, as the job keeps them: ids, rendered label sets, status, families.
  const keep: unknown[] = [];
  let handler: http.RequestListener;
  if (impl === 'ours') {
    // As the MQTT job keeps them: the packed inventory, the status array, and the rendered lines (rendered once,
    // then a second poll copies and patches them, as every later poll does).
    const group = joinLabels(renderLabels({ region: 'cn-hangzhou', instance_id: 'post-cn-bench0001' }), renderLabels({ group_id: 'GID_bench' }));
    const ids = Array.from({ length: n }, (_, i) => `GID_bench@@@dev-${String(i + 1).padStart(7, '0')}`);
    const inv = new Inventory(ids, ['GID_bench'], new Uint32Array(n), 0); // one group: index 0 for all
    ids.length = 0;
    const status = Uint8Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 0 : 1));
    const lines = new BinaryGaugeLines('aliyun_mqtt_client_online', HELP);
    const labelsOf = (i: number) => joinLabels(group, renderLabels({ client_id: inv.id(i) }));
    await lines.render(inv.key, n, labelsOf, status);
    const store = new SnapshotStore();
    store.put('bench', 'post-cn-bench0001', [await lines.render(inv.key, n, labelsOf, status)], Date.now());
    // The job's per-device history after two polls, 2% of the devices changed in the second (flapping slices in use).
    const history = new FleetState(3600);
    history.alignTo(inv.ids);
    const now = Math.floor(Date.now() / 1000);
    history.observe(status, () => now - 60, () => undefined);
    history.observe(
      status.map((s, i) => (i % 50 === 0 ? s ^ 1 : s)),
      () => now,
      () => undefined,
    );
    keep.push(inv, status, store, lines, history);
    // Both shapes of HttpOptions (src/http.ts is being reworked: registry+store, or contentType+exposition).
    const opts = {
      telemetryPath: '/metrics',
      registry,
      store,
      beforeScrape: () => undefined,
      contentType: registry.contentType,
      exposition: async () => snapshotExposition(await registry.metrics(), store),
      isReady: () => true,
      reload: async () => ({ ok: true }),
      logger: createLogger({ level: 'error' }),
      jobsSummary: () => [],
    };
    handler = createHttpHandler(opts as unknown as Parameters<typeof createHttpHandler>[0]);
  } else {
    const gauge = new Gauge({ name: 'aliyun_mqtt_client_online', help: HELP, labelNames: ['region', 'instance_id', 'group_id', 'client_id'], registers: [registry] });
    for (let i = 0; i < n; i++) {
      gauge.set({ region: 'cn-hangzhou', instance_id: 'post-cn-bench0001', group_id: 'GID_bench', client_id: `GID_bench@@@dev-${String(i + 1).padStart(7, '0')}` }, i % 5 === 0 ? 0 : 1);
    }
    handler = (req, res) => {
      void (async () => {
        const text = await registry.metrics();
        res.setHeader('Content-Type', registry.contentType);
        if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
          // Same gzip level as ours, off the main thread (zlib.gzip runs on the thread pool).
          const body = await new Promise<Buffer>((resolve, reject) => zlib.gzip(text, { level: 1 }, (e, b) => (e ? reject(e) : resolve(b))));
          res.setHeader('Content-Encoding', 'gzip');
          res.end(body);
        } else res.end(text);
      })();
    };
  }
  const buildMs = performance.now() - t0;
  const rss1 = settle();
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  let peakRss = rss1;
  const server = http.createServer((req, res) => {
    if (req.url === '/bench/reset') {
      eld.reset();
      peakRss = process.memoryUsage().rss;
      return void res.end('ok');
    }
    if (req.url === '/bench/stats') {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      return void res.end(JSON.stringify({ max_stall_ms: eld.max / 1e6, peak_rss: peakRss }));
    }
    res.on('finish', () => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    });
    handler(req, res);
  });
  server.listen(0, '127.0.0.1', () => {
    const port = (server.address() as { port: number }).port;
    process.stdout.write(`ready ${port} ${JSON.stringify({ rss_before: rss0, rss_after: rss1, build_ms: buildMs, keep: keep.length })}\n`);
  });
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
