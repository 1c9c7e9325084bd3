// What job code calls: one cloud API of one account, behind the shared rate limiter, retries, metrics and redaction.
import { abortedCallError, CloudError } from './errors';
import type { ApiMetrics } from './api-metrics';
import { RateLimitAbortedError, type WindowRateLimiter } from './rate-limiter';
import { DEFAULT_RETRY_POLICY, withRetries, type RetryPolicy } from './retry';
import type { CloudTransport } from './transport';

export interface CallOptions<T> {
  /** Absolute deadline (Date.now() ms): no attempt starts or waits beyond it. */
  deadline: number;
  signal?: AbortSignal;
  /** Validates the body; a throw becomes a MalformedResponse CloudError. */
  parse: (body: unknown) => T;
  /** What the call is about (an instance ID): a permission error ends the run's other calls for the same target. */
  target?: string;
  retry?: Partial<RetryPolicy>;
}

export interface ApiCaller {
  readonly account: string;
  call<T>(api: string, params: Record<string, unknown>, opts: CallOptions<T>): Promise<T>;
}

export interface ApiClientDeps {
  account: string;
  transport: CloudTransport;
  limiterFor: (api: string) => WindowRateLimiter;
  metrics: ApiMetrics;
  requestTimeoutMs: number;
  random?: () => number;
}

/**
 * Per run (keyed by its signal), the answers that end the run's calls: credentials, signature and clock errors come
 * back the same for every call of the account and API, permission errors for every call about the same target, so
 * the rest of the run's calls are not sent.
 */
const finalAnswers = new WeakMap<AbortSignal, Map<string, CloudError>>();

export class ApiClient implements ApiCaller {
  readonly account: string;

  constructor(private readonly deps: ApiClientDeps) {
    this.account = deps.account;
  }

  async call<T>(api: string, params: Record<string, unknown>, opts: CallOptions<T>): Promise<T> {
    const { metrics, transport } = this.deps;
    const labels = { account: this.account, api };
    const limiter = this.deps.limiterFor(api);
    const policy = { ...DEFAULT_RETRY_POLICY, ...opts.retry };
    const accountKey = `${this.account}\u0000${api}`;
    const targetKey = `${accountKey}\u0000${opts.target ?? ''}`;
    const earlierFinal = () => {
      const answers = opts.signal && finalAnswers.get(opts.signal);
      return answers ? (answers.get(accountKey) ?? answers.get(targetKey)) : undefined;
    };
    const noteFinal = (err: CloudError) => {
      if (!opts.signal || !err.finalForRun) return;
      let answers = finalAnswers.get(opts.signal);
      if (!answers) finalAnswers.set(opts.signal, (answers = new Map()));
      const key = err.finalForRun === 'account' ? accountKey : targetKey;
      if (!answers.has(key)) answers.set(key, err);
    };
    return withRetries(
      async () => {
        const knownBefore = earlierFinal();
        if (knownBefore) throw knownBefore;
        let result: T;
        try {
          result = await limiter.schedule(async () => {
            // Checked when the limiter lets the call go: a call queued before the final answer arrived is not sent either.
            const known = earlierFinal();
            if (known) throw known;
            const timeoutMs = Math.max(1, Math.min(this.deps.requestTimeoutMs, opts.deadline - Date.now()));
            const started = performance.now();
            try {
              const body = await transport.call({ api, params, timeoutMs, signal: opts.signal });
              const parsed = parseBody(transport.provider, api, body, opts.parse);
              metrics.requests.inc({ ...labels, code: 'OK' });
              return parsed;
            } catch (err) {
              const cloudErr = err instanceof CloudError ? err : unexpected(transport.provider, api, err);
              noteFinal(cloudErr);
              metrics.requests.inc({ ...labels, code: cloudErr.code });
              if (cloudErr.throttled) {
                metrics.throttled.inc(labels);
                limiter.noteThrottled();
              }
              throw cloudErr;
            } finally {
              metrics.duration.observe(labels, (performance.now() - started) / 1000);
            }
          }, opts.signal);
        } catch (err) {
          if (err instanceof RateLimitAbortedError) throw abortedCallError(transport.provider, api, err.reason, 'while waiting for the rate limiter');
          throw err;
        }
        return result;
      },
      policy,
      {
        deadline: opts.deadline,
        signal: opts.signal,
        random: this.deps.random,
        onRetry: () => metrics.retries.inc(labels),
      },
    );
  }
}

function parseBody<T>(provider: CloudTransport['provider'], api: string, body: unknown, parse: (b: unknown) => T): T {
  try {
    return parse(body);
  } catch (err) {
    if (err instanceof CloudError) throw err;
    throw new CloudError({
      provider,
      api,
      code: 'MalformedResponse',
      message: `${api} returned an unexpected body: ${(err as Error).message}`,
      retryable: true,
      throttled: false,
    });
  }
}

function unexpected(provider: CloudTransport['provider'], api: string, err: unknown): CloudError {
  return new CloudError({ provider, api, code: 'Unknown', message: `${api} failed: ${(err as Error)?.message ?? String(err)}`, retryable: false, throttled: false });
}
