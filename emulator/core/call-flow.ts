// What happens to an authenticated call, whatever the provider: rate window, injected faults, latency, the API, stats.
import type { ServerResponse } from 'node:http';
import { ApiError, type ApiAnswer } from './api';
import type { FaultInjector } from './faults';
import { sendJson, sendRaw } from './http-util';
import type { RateLimiterRegistry, SourceIpGuard } from './rate-window';

import type { StatsRecorder } from './stats';
import type { Timers } from './timers';

export interface GatewayEnv {
  now: () => number;
  stats: StatsRecorder;
  limiters: RateLimiterRegistry;
  sourceIps: SourceIpGuard;
  faults: FaultInjector;
  timers: Timers;
}

/** How one provider wraps answers; every reply carries the request's id. */
export interface Envelope {
  ok(body: Record<string, unknown>): { status: number; body: unknown };
  error(code: string, message: string, httpStatus: number): { status: number; body: unknown };
  throttled(api: string, limit: number): { status: number; body: unknown; code: string };
  injected(api: string, code: string, httpStatus: number | undefined): { status: number; body: unknown };
  headers: Record<string, string>;
}

const MALFORMED_HTML = '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>';

export async function serveCall(
  env: GatewayEnv,
  res: ServerResponse,
  api: string,
  account: string,
  envelope: Envelope,
  invoke: (nowMs: number) => ApiAnswer | Promise<ApiAnswer>,
): Promise<void> {
  const now = env.now();
  env.stats.arrival(api, account, now);
  if (!env.sourceIps.admit(api, res.socket?.remoteAddress ?? '', now)) {
    env.stats.outcome(api, account, { kind: 'error', code: 'SourceIpBlocked' });
    res.destroy();
    return;
  }
  const latency = env.faults.latencyMs(api);
  const reply = async (r: { status: number; body: unknown }): Promise<void> => {
    await env.timers.sleep(latency);
    sendJson(res, r.status, r.body, envelope.headers);
  };

  if (!env.limiters.tryAcquire(api, account, now)) {
    env.stats.throttled(api, account);
    await reply(envelope.throttled(api, env.limiters.limit(api)));
    return;
  }
  env.stats.admitted(api, account, now);

  const fault = env.faults.decide(api);
  if (fault.kind === 'timeout') {
    env.stats.outcome(api, account, { kind: 'timeout' });
    // Hold the answer past the client's patience, then drop the connection without a reply.
    env.timers.after(fault.holdMs, () => res.destroy());
    return;
  }
  if (fault.kind === 'drip') {
    // A server that sends its headers and then its body one byte a second: the client must give up on its own.
    env.stats.outcome(api, account, { kind: 'timeout' });
    res.writeHead(200, { 'content-type': 'application/json;charset=utf-8', 'content-length': '1000000', ...envelope.headers });
    res.write('{');
    const drip = setInterval(() => (res.destroyed ? clearInterval(drip) : res.write(' ')), 1000);
    const forget = env.timers.onClear(() => clearInterval(drip));
    res.once('close', () => {
      clearInterval(drip);
      forget();
    });
    return;
  }
  if (fault.kind === 'error') {
    env.stats.outcome(api, account, { kind: 'error', code: fault.code });
    await reply(envelope.injected(api, fault.code, fault.httpStatus));
    return;
  }

  let answer: ApiAnswer;
  try {
    answer = await invoke(now);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    env.stats.outcome(api, account, { kind: 'error', code: err.code });
    await reply(envelope.error(err.code, err.message, err.httpStatus));
    return;
  }

  const r = envelope.ok(answer.body);
  if (fault.kind === 'malformed') {
    env.stats.outcome(api, account, { kind: 'malformed' });
    await env.timers.sleep(latency);
    if (fault.truncate) {
      const text = JSON.stringify(r.body);
      sendRaw(res, 200, text.slice(0, Math.max(1, Math.floor(text.length / 2))), 'application/json;charset=utf-8', envelope.headers);
    } else {
      sendRaw(res, 200, MALFORMED_HTML, 'text/html', envelope.headers);
    }
  } else {
    env.stats.outcome(api, account, answer.errorCode === undefined ? { kind: 'ok' } : { kind: 'error', code: answer.errorCode });
    await reply(r);
  }
  answer.afterSend?.();
}
