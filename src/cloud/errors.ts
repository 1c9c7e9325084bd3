// One error type for every cloud call, whatever SDK raised it, so retry policy and metrics need no SDK knowledge.
import { redact } from '../util/redact';
import type { ExchangeFailure } from './http-guard';

export type Provider = 'aliyun' | 'tencentcloud';
export type FinalScope = 'account' | 'target';

export interface CloudErrorInit {
  provider: Provider;
  api: string;
  code: string;
  message: string;
  httpStatus?: number;
  requestId?: string;
  retryable: boolean;
  throttled: boolean;
  /**
   * The answer does not depend on this call: every other call of the run would get it too, so the run sends no more
   * of them. 'account': credentials, signature or clock (any call of the account and API); 'target': permission,
   * which a resource-scoped policy may grant per instance (the calls for the same target).
   */
  finalForRun?: FinalScope;
  /** The cloud refused the credential's token as expired (or unknown): refreshing the credentials may help. */
  credentialExpired?: boolean;
}

export class CloudError extends Error {
  readonly provider: Provider;
  readonly api: string;
  /**
   * Bounded, label-safe code: the cloud's error code, or Timeout / NetworkError / MalformedResponse / BusinessFailure,
   * or a proxy's ProxyAuthRequired / ProxyRefused / ProxyUnreachable / ProxyMisconfigured.
   */
  readonly code: string;
  readonly httpStatus?: number;
  readonly requestId?: string;
  readonly retryable: boolean;
  readonly throttled: boolean;
  readonly finalForRun: FinalScope | undefined;
  readonly credentialExpired: boolean;

  constructor(init: CloudErrorInit) {
    super(redact(init.message));
    this.name = 'CloudError';
    this.provider = init.provider;
    this.api = init.api;
    this.code = labelSafeCode(init.code);
    this.httpStatus = init.httpStatus;
    this.requestId = init.requestId;
    this.retryable = init.retryable;
    this.throttled = init.throttled;
    this.finalForRun = init.finalForRun;
    this.credentialExpired = init.credentialExpired ?? false;
  }

  /** The same answer, final for the run at `scope` (and no longer retryable). */
  finalFor(scope: FinalScope): CloudError {
    const { provider, api, code, message, httpStatus, requestId, throttled, credentialExpired } = this;
    return new CloudError({ provider, api, code, message, httpStatus, requestId, retryable: false, throttled, credentialExpired, finalForRun: scope });
  }

  /** What a log line or an HTTP response may show: never the SDK's raw message with its signed URL. */
  toLogObject(): Record<string, unknown> {
    return {
      provider: this.provider,
      api: this.api,
      code: this.code,
      http_status: this.httpStatus,
      request_id: this.requestId,
      retryable: this.retryable,
      throttled: this.throttled,
      message: this.message,
    };
  }
}

/** Error codes become label values: keep them short and in a safe alphabet so a hostile server cannot blow up cardinality or escaping. */
export function labelSafeCode(code: string): string {
  const cleaned = String(code ?? '').replace(/[^A-Za-z0-9._-]/g, '').slice(0, 64);
  return cleaned || 'Unknown';
}

/** The label-safe code of any error a call raised: a CloudError's, else the error's own `code` if any. */
export function errorCodeOf(err: unknown): string {
  return err instanceof CloudError ? err.code : labelSafeCode((err as { code?: string } | undefined)?.code ?? 'Unknown');
}

const THROTTLING_CODES = new Set(['SystemOverFlow', 'Throttling.User', 'Throttling.Api', 'Throttling', 'RequestLimitExceeded']);

export function isThrottlingCode(code: string): boolean {
  return THROTTLING_CODES.has(code) || code.startsWith('RequestLimitExceeded') || code.startsWith('Throttling');
}

/** Why a run's signal aborted: the reason every call it cancels reports. */
export class RunAborted extends Error {
  constructor(readonly code: 'DeadlineExceeded' | 'Shutdown') {
    super(code === 'Shutdown' ? 'stopped for shutdown' : "the run's deadline passed");
    this.name = 'RunAborted';
  }
}

/** The CloudError of a call that a run's abort cancelled (while queued, waiting or in flight). */
export function abortedCallError(provider: Provider, api: string, reason: unknown, where: string): CloudError {
  const code = reason instanceof RunAborted ? reason.code : 'DeadlineExceeded';
  const why = code === 'Shutdown' ? 'stopped for shutdown' : "the run's deadline passed";
  return new CloudError({ provider, api, code, message: `${api}: ${why} ${where}`, retryable: false, throttled: false });
}

/** How a guarded HTTP exchange (http-guard.ts) failed, as the CloudError every transport reports. */
export function exchangeError(provider: Provider, api: string, failure: ExchangeFailure): CloudError {
  switch (failure.kind) {
    case 'Timeout':
      return new CloudError({ provider, api, code: 'Timeout', message: `${api} timed out: ${failure.message}`, retryable: true, throttled: false });
    case 'ResponseTooLarge':
      // Not retried: the same request would get the same answer, and each attempt costs the cap in memory.
      return new CloudError({ provider, api, code: 'ResponseTooLarge', message: `${api} failed: ${failure.message} (accounts[].max_response_size)`, retryable: false, throttled: false });
    case 'UnexpectedEncoding':
      return new CloudError({ provider, api, code: 'MalformedResponse', message: `${api} failed: ${failure.message}`, retryable: true, throttled: false });
    case 'Aborted':
      return abortedCallError(provider, api, failure.reason, 'while the call was in flight');
    case 'Proxy': {
      // A refusal (credentials, policy) would be the same for every call of the account through that proxy.
      const retryable = failure.proxy?.retryable ?? true;
      return new CloudError({ provider, api, code: failure.proxy?.code ?? 'ProxyRefused', message: `${api} failed: ${failure.message}`, retryable, throttled: false, finalForRun: retryable ? undefined : 'account' });
    }
  }
}

/**
 * A failure below HTTP, as Node reports it to either SDK (directly to pop-core's httpx, wrapped in node-fetch's
 * FetchError for the Tencent SDK): an answer that is not HTTP at all (llhttp's HPE_* codes) is a MalformedResponse,
 * a refused, reset or unreachable connection a NetworkError. Undefined when `err` is neither.
 */
export function nodeNetworkError(provider: Provider, api: string, err: unknown): CloudError | undefined {
  const e = (err ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (code.startsWith('HPE_') || /Parse Error/.test(message)) {
    return new CloudError({ provider, api, code: 'MalformedResponse', message: `${api} failed: the answer is not HTTP (${code || 'parse error'})`, retryable: true, throttled: false });
  }
  if (/^E[A-Z_]+$/.test(code) || /socket hang up|premature close|ECONN|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH/i.test(message)) {
    const reason = code || /reason: (.*)$/.exec(message)?.[1] || message;
    return new CloudError({ provider, api, code: 'NetworkError', message: `${api} connection failed: ${reason}`, retryable: true, throttled: false });
  }
  return undefined;
}

/** The account's credentials could not be obtained or refreshed (credentials/refresh.ts): no call of the account can be signed. */
export function credentialsUnavailableError(provider: Provider, api: string, err: unknown): CloudError | undefined {
  if ((err as { name?: string })?.name !== 'CredentialsUnavailableError') return undefined;
  return new CloudError({ provider, api, code: 'CredentialsUnavailable', message: `${api} not sent: ${(err as Error).message}`, retryable: false, throttled: false, finalForRun: 'account' });
}
