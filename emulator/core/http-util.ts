// Small helpers for the emulator's HTTP server: body reading, URL splitting and JSON answers.
import type { IncomingMessage, ServerResponse } from 'node:http';

const MAX_BODY_BYTES = 1 << 20;

export class BodyTooLargeError extends Error {}

export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new BodyTooLargeError(`request body exceeds ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Path and raw (still encoded) query: signatures are computed over the bytes as sent. */
export function splitUrl(url: string | undefined): { path: string; rawQuery: string } {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? { path: u, rawQuery: '' } : { path: u.slice(0, q), rawQuery: u.slice(q + 1) };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendRaw(res, status, JSON.stringify(body), 'application/json;charset=utf-8', headers);
}

export function sendRaw(res: ServerResponse, status: number, text: string, contentType: string, headers: Record<string, string> = {}): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
