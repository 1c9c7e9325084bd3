// What job code calls: one cloud API of one account, behind the shared rate limiter, retries, metrics and redaction.
import { CloudError } from './errors';
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
    return withRetries(
      async () => {
        let result: T;
        try {
          result = await limiter.schedule(async () => {
            const timeoutMs = Math.max(1, Math.min(this.deps.requestTimeoutMs, opts.deadline - Date.now()));
            const started = performance.now();
            try {
              const body = await transport.call({ api, params, timeoutMs });
              const parsed = parseBody(transport.provider, api, body, opts.parse);
              metrics.requests.inc({ ...labels, code: 'OK' });
              return parsed;
            } catch (err) {
              const cloudErr = err instanceof CloudError ? err : unexpected(transport.provider, api, err);
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
          if (err instanceof RateLimitAbortedError) {
            throw new CloudError({
              provider: transport.provider,
              api,
              code: 'DeadlineExceeded',
              message: `${api}: the job's deadline passed while waiting for the rate limiter`,
              retryable: false,
              throttled: false,
            });
          }
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
