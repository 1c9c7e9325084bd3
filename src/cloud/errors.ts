// One error type for every cloud call, whatever SDK raised it, so retry policy and metrics need no SDK knowledge.
import { redact } from '../redact';

export type Provider = 'aliyun' | 'tencentcloud';

export interface CloudErrorInit {
  provider: Provider;
  api: string;
  code: string;
  message: string;
  httpStatus?: number;
  requestId?: string;
  retryable: boolean;
  throttled: boolean;
}

export class CloudError extends Error {
  readonly provider: Provider;
  readonly api: string;
  /** Bounded, label-safe code: the cloud's error code, or Timeout / NetworkError / MalformedResponse / BusinessFailure. */
  readonly code: string;
  readonly httpStatus?: number;
  readonly requestId?: string;
  readonly retryable: boolean;
  readonly throttled: boolean;

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

export const THROTTLING_CODES = new Set(['SystemOverFlow', 'Throttling.User', 'Throttling.Api', 'Throttling', 'RequestLimitExceeded']);

export function isThrottlingCode(code: string): boolean {
  return THROTTLING_CODES.has(code) || code.startsWith('RequestLimitExceeded') || code.startsWith('Throttling');
}
