// The cloud client's decorators, each alone on a scripted inner call, and the composed chain on a scripted transport.
import { Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { createApiMetrics } from '../../src/cloud/api-metrics';
import { createApiClient, FinalAnswers, measured, rateLimited, refreshingCredentials, retrying, transportCall, type Call, type CallLimiter, type CallSpec } from '../../src/cloud/client';
import { CloudError, RunAborted } from '../../src/cloud/errors';
import { RateLimitAbortedError, WindowRateLimiter } from '../../src/cloud/rate-limiter';
import { rateRule } from '../../src/cloud/rate';
import { backoffDelay, withRetries } from '../../src/cloud/retry';
import type { CallRequest, CloudTransport } from '../../src/cloud/transport';

const err = (code: string, more: Partial<ConstructorParameters<typeof CloudError>[0]> = {}) =>
  new CloudError({ provider: 'aliyun', api: 'X', code, message: code, retryable: false, throttled: false, ...more });
const spec = (more: Partial<CallSpec<unknown>> = {}): CallSpec<unknown> => ({ api: 'X', params: {}, deadline: Date.now() + 10_000, parse: (b) => b, ...more });
/** An inner call answering from a script, one entry per attempt. */
function scripted(answers: Array<unknown | CloudError>): Call & { calls: number } {
  const fn = (async () => {
    const a = answers[Math.min(fn.calls++, answers.length - 1)];
    if (a instanceof CloudError) throw a;
    return a;
  }) as unknown as Call & { calls: number };
  fn.calls = 0;
  return fn;
}
const metricsText = async (reg: Registry) => reg.metrics();

describe('transportCall', () => {
  test('gives the transport min(request timeout, time to deadline) and the region; a body the parser refuses is MalformedResponse', async () => {
    const seen: CallRequest[] = [];
    const transport: CloudTransport = { provider: 'tencentcloud', call: async (req) => (seen.push(req), { Items: 1 }) };
    const call = transportCall(transport, 5000);
    expect(await call({ ...spec({ region: 'ap-guangzhou', deadline: Date.now() + 800 }), parse: (b) => (b as { Items: number }).Items })).toBe(1);
    expect(seen[0].region).toBe('ap-guangzhou');
    expect(seen[0].timeoutMs).toBeGreaterThan(700);
    expect(seen[0].timeoutMs).toBeLessThanOrEqual(800);
    await expect(call(spec({ parse: () => { throw new Error('no Items'); } }))).rejects.toMatchObject({ code: 'MalformedResponse', retryable: true });
  });
});

describe('measured', () => {
  test('counts each attempt by code, throttled answers apart, and observes the latency', async () => {
    const reg = new Registry();
    const m = createApiMetrics(reg);
    const call = measured(m, 'acc', 'aliyun')(scripted([{ ok: 1 }, err('Throttling.User', { throttled: true, retryable: true })]));
    await call(spec());
    await expect(call(spec())).rejects.toMatchObject({ code: 'Throttling.User' });
    const text = await metricsText(reg);
    expect(text).toContain('cloud_session_exporter_api_requests_total{account="acc",api="X",code="OK"} 1');
    expect(text).toContain('cloud_session_exporter_api_requests_total{account="acc",api="X",code="Throttling.User"} 1');
    expect(text).toContain('cloud_session_exporter_api_throttled_total{account="acc",api="X"} 1');
    expect(text).toContain('cloud_session_exporter_api_request_duration_seconds_count{account="acc",api="X"} 2');
  });
});

describe('refreshingCredentials', () => {
  /** Credentials as the refresher behaves: a refresh takes `ms`, joins one running, and bumps the generation. */
  const creds = (ms = 5) => {
    let running: Promise<void> | undefined;
    const c = {
      generation: 0,
      fetches: 0,
      refreshNow: (used?: number): Promise<void> => {
        if (used !== undefined && used !== c.generation) return Promise.resolve();
        running ??= (async () => {
          c.fetches++;
          await new Promise((r) => setTimeout(r, ms));
          c.generation++;
          running = undefined;
        })();
        return running;
      },
    };
    return c;
  };
  const expired = () => err('InvalidSecurityToken.Expired', { credentialExpired: true });

  test('an expired token: one refresh, the call sent again and answered', async () => {
    const c = creds();
    const inner = scripted([expired(), { ok: 1 }]);
    expect(await refreshingCredentials(c)(inner)(spec())).toEqual({ ok: 1 });
    expect(inner.calls).toBe(2);
    expect(c.fetches).toBe(1);
  });

  test('refused again after the refresh: final for the account, not retried; other errors pass untouched', async () => {
    const c = creds();
    const inner = scripted([expired(), expired()]);
    await expect(refreshingCredentials(c)(inner)(spec())).rejects.toMatchObject({ code: 'InvalidSecurityToken.Expired', finalForRun: 'account', retryable: false });
    expect(inner.calls).toBe(2);
    const other = scripted([err('InternalError', { retryable: true })]);
    await expect(refreshingCredentials(c)(other)(spec())).rejects.toMatchObject({ code: 'InternalError', finalForRun: undefined });
    expect(other.calls).toBe(1);
  });

  test('ten calls refused together share one fetch', async () => {
    const c = creds(30);
    const inners = Array.from({ length: 10 }, () => scripted([expired(), { ok: 1 }]));
    const call = refreshingCredentials(c);
    const results = await Promise.all(inners.map((inner) => call(inner)(spec())));
    expect(results).toEqual(Array(10).fill({ ok: 1 }));
    expect(c.fetches).toBe(1);
  });

  test('a refresh slower than the deadline: no second attempt past it', async () => {
    const c = creds(2000);
    const inner = scripted([expired(), { ok: 1 }]);
    const started = Date.now();
    await expect(refreshingCredentials(c)(inner)(spec({ deadline: Date.now() + 150 }))).rejects.toMatchObject({ finalForRun: 'account' });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(inner.calls).toBe(1);
  });

  test('fixed keys (no refreshable credentials): the answer as it is', async () => {
    const inner = scripted([expired()]);
    await expect(refreshingCredentials(undefined)(inner)(spec())).rejects.toMatchObject({ finalForRun: undefined });
  });
});

describe('rateLimited', () => {
  const limiter = (over: Partial<CallLimiter> = {}): CallLimiter & { throttledNotes: number } => {
    const l = { rule: rateRule(10), throttledNotes: 0, schedule: <T>(fn: () => Promise<T>) => fn(), noteThrottled: () => void l.throttledNotes++, ...over };
    return l;
  };

  test('every attempt goes through its API\'s limiter; a throttled answer widens it', async () => {
    const l = limiter();
    const call = rateLimited(() => l, 'aliyun')(scripted([err('Throttling.User', { throttled: true })]));
    await expect(call(spec())).rejects.toMatchObject({ code: 'Throttling.User' });
    expect(l.throttledNotes).toBe(1);
  });

  test('an abort while queued reports the run\'s reason as the code (Shutdown, DeadlineExceeded)', async () => {
    const l = limiter({ schedule: () => Promise.reject(new RateLimitAbortedError(new RunAborted('Shutdown'))) });
    await expect(rateLimited(() => l, 'aliyun')(scripted([1]))(spec())).rejects.toMatchObject({ code: 'Shutdown', retryable: false });
    const real = new WindowRateLimiter({ rate: 1 });
    const ctl = new AbortController();
    const call = rateLimited(() => real, 'aliyun')(scripted([1]));
    await call(spec());
    const queued = call(spec({ signal: ctl.signal }));
    ctl.abort(new RunAborted('DeadlineExceeded'));
    await expect(queued).rejects.toMatchObject({ code: 'DeadlineExceeded' });
  });
});

describe('FinalAnswers', () => {
  test('after a credentials error the run sends no more calls to that account and API; other runs are not affected', async () => {
    const finals = new FinalAnswers('acc');
    const inner = scripted([err('SignatureDoesNotMatch', { finalForRun: 'account' }), { ok: 1 }]);
    const call = finals.guard(inner);
    const run = new AbortController();
    await expect(call(spec({ signal: run.signal }))).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' });
    await expect(call(spec({ signal: run.signal }))).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' });
    expect(inner.calls).toBe(1);
    await expect(call(spec({ signal: new AbortController().signal }))).resolves.toEqual({ ok: 1 });
  });

  test('a permission error stops only the calls about the same target', async () => {
    const finals = new FinalAnswers('acc');
    const inner = scripted([err('NoPermission', { finalForRun: 'target' }), { ok: 1 }]);
    const call = finals.guard(inner);
    const signal = new AbortController().signal;
    await expect(call(spec({ signal, target: 'r-1' }))).rejects.toMatchObject({ code: 'NoPermission' });
    await expect(call(spec({ signal, target: 'r-1' }))).rejects.toMatchObject({ code: 'NoPermission' });
    await expect(call(spec({ signal, target: 'r-2' }))).resolves.toEqual({ ok: 1 });
    expect(inner.calls).toBe(2);
  });
});

describe('retrying and withRetries', () => {
  test('retryable failures are repeated with backoff and counted; a final one is not', async () => {
    const retries: string[] = [];
    const call = retrying((api) => retries.push(api), () => 0)(scripted([err('InternalError', { retryable: true }), err('InternalError', { retryable: true }), { ok: 1 }]));
    expect(await call(spec({ retry: { baseDelayMs: 1, maxDelayMs: 2 } }))).toEqual({ ok: 1 });
    expect(retries).toEqual(['X', 'X']);
    const final = scripted([err('InvalidParameter')]);
    await expect(retrying(() => undefined)(final)(spec())).rejects.toMatchObject({ code: 'InvalidParameter' });
    expect(final.calls).toBe(1);
  });

  test('never sleeps past the deadline, and stops at maxAttempts', async () => {
    let attempts = 0;
    const started = Date.now();
    await expect(
      withRetries(async () => { attempts++; throw err('InternalError', { retryable: true }); }, { maxAttempts: 10, baseDelayMs: 500, maxDelayMs: 5000 }, { deadline: Date.now() + 200, random: () => 1 }),
    ).rejects.toMatchObject({ code: 'InternalError' });
    expect(attempts).toBe(1);
    expect(Date.now() - started).toBeLessThan(150);
    attempts = 0;
    await expect(withRetries(async () => { attempts++; throw err('InternalError', { retryable: true }); }, { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1 }, { deadline: Date.now() + 10_000 })).rejects.toBeDefined();
    expect(attempts).toBe(3);
  });

  test('throttling backs off at least a second (the cloud\'s window is full), with full jitter', () => {
    expect(backoffDelay({ maxAttempts: 5, baseDelayMs: 200, maxDelayMs: 5000 }, 1, () => 0, true)).toBe(500);
    expect(backoffDelay({ maxAttempts: 5, baseDelayMs: 200, maxDelayMs: 5000 }, 1, () => 1, true)).toBe(1000);
    expect(backoffDelay({ maxAttempts: 5, baseDelayMs: 200, maxDelayMs: 5000 }, 3, () => 1, false)).toBe(800);
  });
});

describe('createApiClient', () => {
  test('composes the chain: a throttled answer is retried through the limiter, measured per attempt, and parsed once', async () => {
    const reg = new Registry();
    const metrics = createApiMetrics(reg);
    let calls = 0;
    const transport: CloudTransport = {
      provider: 'aliyun',
      call: async () => {
        calls++;
        if (calls === 1) throw err('Throttling.User', { throttled: true, retryable: true });
        return { Value: 7 };
      },
    };
    const limiter = new WindowRateLimiter({ rate: 100 });
    const client = createApiClient({ account: 'acc', transport, limiterFor: () => limiter, metrics, requestTimeoutMs: 1000, random: () => 0 });
    expect(await client.call({ ...spec(), parse: (b) => (b as { Value: number }).Value })).toBe(7);
    const text = await metricsText(reg);
    expect(text).toContain('cloud_session_exporter_api_retries_total{account="acc",api="X"} 1');
    expect(text).toContain('cloud_session_exporter_api_requests_total{account="acc",api="X",code="OK"} 1');
    expect(limiter.currentGuardMs).toBeGreaterThan(limiter.guardMs);
  });
});
