// HTTP endpoints: the status page (and its configuration page and stylesheet), /metrics (streamed, gzip when asked),
// health, readiness and reload. TLS, client certificates, basic auth, headers and the rate limit are the web server's
// (src/web/web-server.ts), before this: the status pages are served under the same web config as /metrics.
import type http from 'node:http';
import zlib from 'node:zlib';
import type { Logger } from '../util/log';
import { redact } from '../util/redact';
import { writeExposition, type Exposition } from '../metrics/exposition';
import { STATUS_CSS } from './status-page';

export interface HttpOptions {
  telemetryPath: string;
  contentType: string;
  /** Renders the scrape (self-metrics plus polled families). Never calls the cloud. */
  exposition: () => Promise<Exposition>;
  isReady: () => boolean;
  /** Absent when the lifecycle endpoint is off (--no-web.enable-lifecycle): POST /-/reload is then refused with 403. */
  reload?: () => Promise<{ ok: boolean; error?: string }>;
  logger: Logger;
  /** The status page's HTML for a request's query string (auto-refresh). */
  statusPage: (query: string) => string;
  /** /config: the loaded configuration, secrets masked. */
  configPage: () => string;
}

export function createHttpHandler(opts: HttpOptions): http.RequestListener {
  return (req, res) => {
    const [url, query = ''] = (req.url ?? '/').split('?', 2);
    handle(url, query, req, res, opts).catch((err) => {
      opts.logger.error({ err, path: url }, 'HTTP handler failed');
      if (!res.headersSent) text(res, 500, 'internal error\n');
      else res.destroy();
    });
  };
}

async function handle(url: string, query: string, req: http.IncomingMessage, res: http.ServerResponse, opts: HttpOptions): Promise<void> {
  if (url === opts.telemetryPath) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'use GET\n', { Allow: 'GET, HEAD' });
    return serveMetrics(req, res, opts);
  }
  switch (url) {
    case '/':
      return page(req, res, 'text/html; charset=utf-8', opts.statusPage(query));
    case '/config':
      return page(req, res, 'text/html; charset=utf-8', opts.configPage());
    case '/status.css':
      // The same bytes until the exporter is upgraded: an hour's caching spares every auto-refresh a request.
      return page(req, res, 'text/css; charset=utf-8', STATUS_CSS, 'max-age=3600');
    case '/-/healthy':
      return text(res, 200, 'Healthy.\n');
    case '/-/ready':
      return opts.isReady() ? text(res, 200, 'Ready.\n') : text(res, 503, 'Not ready: a job has not finished its first run, or cannot poll (see the log).\n');
    case '/-/reload': {
      if (req.method !== 'POST' && req.method !== 'PUT') return text(res, 405, 'use POST\n', { Allow: 'POST, PUT' });
      // Prometheus's answer when it runs without --web.enable-lifecycle.
      if (!opts.reload) return text(res, 403, 'Lifecycle API is not enabled.\n');
      const result = await opts.reload();
      return result.ok ? text(res, 200, 'Reloaded.\n') : text(res, 500, `Reload failed; keeping the previous configuration:\n${redact(result.error ?? '')}\n`);
    }
    default:
      return text(res, 404, 'Not found.\n');
  }
}

async function serveMetrics(req: http.IncomingMessage, res: http.ServerResponse, opts: HttpOptions): Promise<void> {
  const chunks = await opts.exposition();
  try {
    const gzip = acceptsGzip(req.headers['accept-encoding']);
    res.statusCode = 200;
    res.setHeader('Content-Type', opts.contentType);
    res.setHeader('Vary', 'Accept-Encoding');
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
  } finally {
    chunks.release();
  }
}

/** Whether an Accept-Encoding header admits gzip: listed (or `*`) with a q-value above 0 (RFC 9110 12.5.3). */
export function acceptsGzip(header: string | string[] | undefined): boolean {
  let gzip: number | undefined;
  let star: number | undefined;
  for (const part of String(header ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    const weight = Number.isFinite(q) ? q : 0;
    if (name === 'gzip' || name === 'x-gzip') gzip = weight;
    else if (name === '*') star = weight;
  }
  return (gzip ?? star ?? 0) > 0;
}

/** A page rendered in full; not stored by caches unless `cacheControl` says so (it shows live state). */
function page(req: http.IncomingMessage, res: http.ServerResponse, contentType: string, body: string, cacheControl = 'no-store'): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'use GET\n', { Allow: 'GET, HEAD' });
  res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': cacheControl });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function text(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
  res.end(body);
}
