// HTTP endpoints: landing page, /metrics (streamed, gzip when asked), health, readiness and reload.
import type http from 'node:http';
import zlib from 'node:zlib';
import type { Logger } from './log';
import { redact } from './redact';
import { writeExposition } from './metrics/exposition';

export interface HttpOptions {
  telemetryPath: string;
  contentType: string;
  /** Renders the scrape (self-metrics plus polled families). Never calls the cloud. */
  exposition: () => Promise<Iterable<string | Uint8Array>>;
  isReady: () => boolean;
  reload: () => Promise<{ ok: boolean; error?: string }>;
  logger: Logger;
  jobsSummary: () => Array<{ name: string; ready: boolean }>;
}

export function createHttpHandler(opts: HttpOptions): http.RequestListener {
  return (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    handle(url, req, res, opts).catch((err) => {
      opts.logger.error({ err, path: url }, 'HTTP handler failed');
      if (!res.headersSent) text(res, 500, 'internal error\n');
      else res.destroy();
    });
  };
}

async function handle(url: string, req: http.IncomingMessage, res: http.ServerResponse, opts: HttpOptions): Promise<void> {
  if (url === opts.telemetryPath) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'use GET\n');
    return serveMetrics(req, res, opts);
  }
  switch (url) {
    case '/':
      return landing(res, opts);
    case '/-/healthy':
      return text(res, 200, 'Healthy.\n');
    case '/-/ready':
      return opts.isReady() ? text(res, 200, 'Ready.\n') : text(res, 503, 'Not ready: a job has not finished its first run.\n');
    case '/-/reload': {
      if (req.method !== 'POST' && req.method !== 'PUT') return text(res, 405, 'use POST\n');
      const result = await opts.reload();
      return result.ok ? text(res, 200, 'Reloaded.\n') : text(res, 500, `Reload failed; keeping the previous configuration:\n${redact(result.error ?? '')}\n`);
    }
    default:
      return text(res, 404, 'Not found.\n');
  }
}

async function serveMetrics(req: http.IncomingMessage, res: http.ServerResponse, opts: HttpOptions): Promise<void> {
  const chunks = await opts.exposition();
  const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  res.statusCode = 200;
  res.setHeader('Content-Type', opts.contentType);
  if (req.method === 'HEAD') return void res.end();
  if (!gzip) {
    await writeExposition(res, chunks);
    res.end();
    return;
  }
  res.setHeader('Content-Encoding', 'gzip');
  // Compression runs on libuv's thread pool; the stream's backpressure keeps memory bounded.
  const z = zlib.createGzip({ level: 1 });
  z.pipe(res);
  await writeExposition(z, chunks);
  z.end();
}

function landing(res: http.ServerResponse, opts: HttpOptions): void {
  const jobs = opts
    .jobsSummary()
    .map((j) => `<li>${escapeHtml(j.name)}${j.ready ? '' : ' (first run pending)'}</li>`)
    .join('');
  const body = `<!doctype html><html><head><title>cloud-session-exporter</title></head><body>
<h1>cloud-session-exporter</h1>
<p>Prometheus exporter for cloud session and connection APIs.</p>
<ul><li><a href="${escapeHtml(opts.telemetryPath)}">Metrics</a></li><li><a href="/-/healthy">Health</a></li><li><a href="/-/ready">Readiness</a></li></ul>
<h2>Jobs</h2><ul>${jobs}</ul>
</body></html>\n`;
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(body);
}

function text(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(body);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
