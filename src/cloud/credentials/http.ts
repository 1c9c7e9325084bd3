// One bounded HTTP exchange for credential endpoints (STS, instance metadata, credentials URI): a single timer covers
// connect (to the proxy too), a CONNECT handshake, headers and body, and the body is capped, so a black-holed
// address costs at most the timeout. A proxy applies only when the caller passes one (STS): Node's http module reads
// no proxy variables, unlike the Tencent SDK's fetch, so instance metadata is always reached directly.
import http from 'node:http';
import https from 'node:https';
import type { ProxyEndpoint } from '../proxy';
import { proxiedAgent, proxyAnswerFailure, proxyFailureOf } from '../proxy-agent';

/** Credential answers are a few KB; anything near this is not one. */
const MAX_BODY_BYTES = 256 * 1024;

interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

interface HttpCall {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  proxy?: ProxyEndpoint;
}

export function httpExchange(call: HttpCall): Promise<HttpAnswer> {
  return new Promise<HttpAnswer>((resolve, reject) => {
    let url: URL;
    try {
      url = new URL(call.url);
    } catch {
      reject(new Error('credential endpoint is not a valid URL'));
      return;
    }
    if (call.signal?.aborted) {
      reject(new Error('aborted'));
      return;
    }
    const mod = url.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { ...call.headers };
    if (call.body !== undefined) headers['content-length'] = String(Buffer.byteLength(call.body));
    // One connection per exchange, closed after it: refreshes are rare and must not share a wedged socket.
    const agent = call.proxy ? proxiedAgent(url.protocol === 'https:' ? 'https:' : 'http:', { keepAlive: false }, call.proxy) : false;
    const req = mod.request(url, { method: call.method, headers, agent });
    let done = false;
    const finish = (err: Error | undefined, answer?: HttpAnswer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (agent) agent.destroy();
      call.signal?.removeEventListener('abort', onAbort);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(answer!);
    };
    const onAbort = (): void => finish(new Error('aborted'));
    // Where the endpoint is named only by origin: a URL may carry a token in its query.
    const where = `${call.method} ${url.origin}${url.pathname}`;
    const timer = setTimeout(() => finish(new Error(`${where}: no complete answer within ${call.timeoutMs} ms`)), call.timeoutMs);
    call.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err) => finish(new Error(`${where}: ${proxyFailureOf(req, err)?.message ?? (err as NodeJS.ErrnoException).code ?? err.message}`)));
    req.on('response', (res) => {
      const refused = proxyAnswerFailure(req, res.statusCode);
      if (refused) return finish(new Error(`${where}: ${refused.message}`));
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) finish(new Error(`${where}: answer larger than ${MAX_BODY_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('error', (err) => finish(new Error(`${where}: ${err.message}`)));
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.end(call.body);
  });
}
