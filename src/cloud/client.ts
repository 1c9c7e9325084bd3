// What job code calls: one cloud API of one account, as a chain of small decorators around the narrow transport,
// outermost first: retries → the run's final answers → one credentials refresh when the cloud calls them expired →
// the rate limiter → the run's final answers again (for calls that queued before the answer came) → metrics → the
// transport call with its timeout and body parsing. Each
// decorator is one concern and is tested alone (test/cloud/client.test.ts).
import type { ApiMetrics } from './api-metrics';
import { abortedCallError, CloudError } from './errors';
import { RateLimitAbortedError } from './rate-limiter';
import type { RateRule } from './rate';
import { DEFAULT_RETRY_POLICY, withRetries, type RetryPolicy } from './retry';
import type { CloudTransport, RefreshableCredentials } from './transport';

export interface CallSpec<T> {
  api: string;
  params: Record<string, unknown>;
  /** The region the call is about, for providers that sign it (Tencent); Alibaba picks the region by endpoint. */
  region?: string;
  /** What the call is about (an instance ID): a permission error ends the run's other calls for the same target. */
  target?: string;
  /** Absolute deadline (Date.now() ms): no attempt starts or waits beyond it. */
  deadline: number;
  /** The run's signal: its abort cancels queued and in-flight attempts. */
  signal?: AbortSignal;
  /** Validates the body; a throw becomes a MalformedResponse CloudError. */
  parse: (body: unknown) => T;
  retry?: Partial<RetryPolicy>;
  /** Told the key each attempt is signed with (CallRequest.onSigned): the last call before success is the answer's. */
  onSigned?: (accessKeyId: string) => void;
}

export type Call = <T>(spec: CallSpec<T>) => Promise<T>;
export type CallDecorator = (next: Call) => Call;

export interface ApiCaller {
  readonly account: string;
  call<T>(spec: CallSpec<T>): Promise<T>;
}

/** What the client needs of a rate limiter (the local WindowRateLimiter, or a shared one). */
export interface CallLimiter {
  readonly rule: RateRule;
  schedule<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  /** The cloud throttled a call this limiter let through. */
  noteThrottled(): void;
}

/** The innermost call: one transport exchange under min(request timeout, time to deadline), its body parsed. */
export function transportCall(transport: CloudTransport, requestTimeoutMs: number): Call {
  return async (spec) => {
    const timeoutMs = Math.max(1, Math.min(requestTimeoutMs, spec.deadline - Date.now()));
    const body = await transport.call({ api: spec.api, params: spec.params, region: spec.region, timeoutMs, signal: spec.signal, onSigned: spec.onSigned });
    try {
      return spec.parse(body);
    } catch (err) {
      if (err instanceof CloudError) throw err;
      throw new CloudError({ provider: transport.provider, api: spec.api, code: 'MalformedResponse', message: `${spec.api} returned an unexpected body: ${(err as Error).message}`, retryable: true, throttled: false });
    }
  };
}

/** Counts each attempt by result code, its latency, and throttled answers. */
export function measured(metrics: ApiMetrics, account: string, provider: CloudTransport['provider']): CallDecorator {
  return (next) => async (spec) => {
    const labels = { account, api: spec.api };
    const started = performance.now();
    metrics.activity.note(account, spec.api, 'calls');
    try {
      const result = await next(spec);
      metrics.requests.inc({ ...labels, code: 'OK' });
      return result;
    } catch (err) {
      const cloudErr = asCloudError(provider, spec.api, err);
      metrics.requests.inc({ ...labels, code: cloudErr.code });
      if (cloudErr.throttled) {
        metrics.throttled.inc(labels);
        metrics.activity.note(account, spec.api, 'throttled');
      }
      throw cloudErr;
    } finally {
      metrics.duration.observe(labels, (performance.now() - started) / 1000);
    }
  };
}

/** Each attempt waits for its API's limiter; a throttled answer tells the limiter its margin was too small. */
export function rateLimited(limiterFor: (api: string) => CallLimiter, provider: CloudTransport['provider']): CallDecorator {
  return (next) => async (spec) => {
    const limiter = limiterFor(spec.api);
    try {
      return await limiter.schedule(() => next(spec), spec.signal);
    } catch (err) {
      if (err instanceof RateLimitAbortedError) throw abortedCallError(provider, spec.api, err.reason, 'while waiting for the rate limiter');
      if (err instanceof CloudError && err.throttled) limiter.noteThrottled();
      throw err;
    }
  };
}

/**
 * Per run (keyed by its signal), the answers that end the run's calls: credentials, signature and clock errors come
 * back the same for every call of the account and API, permission errors for every call about the same target. A
 * call that would get one is not sent; it fails with the earlier answer.
 */
export class FinalAnswers {
  private readonly byRun = new WeakMap<AbortSignal, Map<string, CloudError>>();

  constructor(private readonly account: string) {}

  readonly guard: CallDecorator = (next) => async (spec) => {
    const known = this.lookup(spec);
    if (known) throw known;
    try {
      return await next(spec);
    } catch (err) {
      if (err instanceof CloudError && err.finalForRun && spec.signal) this.note(spec.signal, this.key(spec, err.finalForRun), err);
      throw err;
    }
  };

  private key(spec: CallSpec<unknown>, scope: 'account' | 'target'): string {
    return scope === 'account' ? `${this.account}\u0000${spec.api}` : `${this.account}\u0000${spec.api}\u0000${spec.target ?? ''}`;
  }

  private lookup(spec: CallSpec<unknown>): CloudError | undefined {
    const answers = spec.signal && this.byRun.get(spec.signal);
    return answers ? (answers.get(this.key(spec, 'account')) ?? answers.get(this.key(spec, 'target'))) : undefined;
  }

  private note(signal: AbortSignal, key: string, err: CloudError): void {
    let answers = this.byRun.get(signal);
    if (!answers) this.byRun.set(signal, (answers = new Map()));
    if (!answers.has(key)) answers.set(key, err);
  }
}

/**
 * A call refused because the held credential expired (a refresh that came too late, or a cloud clock ahead of ours):
 * the credentials are refreshed once — calls refused together share one fetch — and the call is sent again, through
 * the limiter like any attempt, if the deadline allows. Refused again, the answer is final for the account's run.
 */
export function refreshingCredentials(credentials: RefreshableCredentials | undefined): CallDecorator {
  return (next) => async (spec) => {
    if (!credentials) return next(spec);
    const generation = credentials.generation;
    try {
      return await next(spec);
    } catch (err) {
      if (!(err instanceof CloudError) || !err.credentialExpired) throw err;
      const refreshed = await withinDeadline(credentials.refreshNow(generation), spec);
      if (!refreshed || Date.now() >= spec.deadline || spec.signal?.aborted) throw err.finalFor('account');
      try {
        return await next(spec);
      } catch (again) {
        throw again instanceof CloudError && again.credentialExpired ? again.finalFor('account') : again;
      }
    }
  };
}

/** Waits for `p`, but never past the call's deadline or its signal's abort: true when `p` settled first. */
function withinDeadline(p: Promise<void>, spec: CallSpec<unknown>): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const done = (settled: boolean) => (): void => {
      clearTimeout(timer);
      spec.signal?.removeEventListener('abort', gaveUp);
      resolve(settled);
    };
    const gaveUp = done(false);
    const timer = setTimeout(gaveUp, Math.max(0, spec.deadline - Date.now()));
    spec.signal?.addEventListener('abort', gaveUp, { once: true });
    p.then(done(true), done(true));
  });
}

/** Repeats retryable failures with backoff and jitter, within the deadline (retry.ts); counts the repeats. */
export function retrying(onRetry: (api: string) => void, random?: () => number): CallDecorator {
  return (next) => (spec) =>
    withRetries(() => next(spec), { ...DEFAULT_RETRY_POLICY, ...spec.retry }, { deadline: spec.deadline, signal: spec.signal, random, onRetry: () => onRetry(spec.api) });
}

export interface ApiClientOptions {
  account: string;
  transport: CloudTransport;
  limiterFor: (api: string) => CallLimiter;
  metrics: ApiMetrics;
  requestTimeoutMs: number;
  random?: () => number;
}

/** The composed chain (see the top of this file). */
export function createApiClient(opts: ApiClientOptions): ApiCaller {
  const { account, transport, metrics } = opts;
  const finals = new FinalAnswers(account);
  const chain: CallDecorator[] = [
    retrying((api) => {
      metrics.retries.inc({ account, api });
      metrics.activity.note(account, api, 'retries');
    }, opts.random),
    finals.guard,
    refreshingCredentials(transport.credentials),
    rateLimited(opts.limiterFor, transport.provider),
    finals.guard,
    measured(metrics, account, transport.provider),
  ];
  const call = chain.reduceRight<Call>((inner, decorate) => decorate(inner), transportCall(transport, opts.requestTimeoutMs));
  return { account, call };
}

function asCloudError(provider: CloudTransport['provider'], api: string, err: unknown): CloudError {
  if (err instanceof CloudError) return err;
  return new CloudError({ provider, api, code: 'Unknown', message: `${api} failed: ${(err as Error)?.message ?? String(err)}`, retryable: false, throttled: false });
}
