// prom-client self-metrics about cloud calls, declared once: what we sent, how long it took, how often we were
// throttled, and what the rate limiters are doing.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { declareFamily, type FamilyDecl } from '../metrics/declare';
import { ApiActivity } from './api-activity';

const ACCOUNT_API = ['account', 'api'] as const;

const API = {
  requests: declareFamily({
    name: 'cloud_session_exporter_api_requests_total',
    type: 'counter',
    help: 'Cloud API calls sent, retries included, by result code (OK on success).',
    labels: [...ACCOUNT_API, 'code'],
    doc:
      'calls sent to the cloud, retries included; `code` is `OK`, the cloud\'s error code, `Timeout` (no complete answer within `request_timeout` or the run\'s deadline), `NetworkError` (refused, reset, unreachable), `MalformedResponse` (not HTTP, not JSON, or not the API\'s shape), `ResponseTooLarge` (over `max_response_size`), `DeadlineExceeded` or `Shutdown` (cancelled by the run\'s deadline or by SIGTERM), `ProxyAuthRequired`, `ProxyRefused`, `ProxyUnreachable` or `ProxyMisconfigured` (the forward proxy, README \"Proxies\")',
  }),
  duration: declareFamily({ name: 'cloud_session_exporter_api_request_duration_seconds', type: 'histogram', help: 'Latency of cloud API calls, retries counted separately.', labels: ACCOUNT_API }),
  throttled: declareFamily({ name: 'cloud_session_exporter_api_throttled_total', type: 'counter', help: 'Cloud API calls answered with a throttling error code.', labels: ACCOUNT_API }),
  retries: declareFamily({ name: 'cloud_session_exporter_api_retries_total', type: 'counter', help: 'Cloud API calls repeated after a retryable error.', labels: ACCOUNT_API }),
  queueDepth: declareFamily({ name: 'cloud_session_exporter_ratelimit_queue_depth', type: 'gauge', help: 'Cloud API calls waiting for the rate limiter.', labels: ACCOUNT_API }),
  qps: declareFamily({ name: 'cloud_session_exporter_ratelimit_qps', type: 'gauge', help: 'Configured rate limit of a cloud API for an account, in calls per second.', labels: ACCOUNT_API }),
  margin: declareFamily({
    name: 'cloud_session_exporter_ratelimit_margin_seconds',
    type: 'gauge',
    help: 'How long a call is assumed to take to reach the cloud, for rate limiting: rate_limit_margin, widened after the cloud throttled a call and decaying back.',
    labels: ACCOUNT_API,
    doc: 'how long a call is assumed to take to reach the cloud, for rate limiting: `rate_limit_margin` (default 500 ms / QPS, 20–100 ms), doubled (up to 250 ms, once per second) when the cloud throttles a call anyway, and decaying back with a 60 s half-life',
  }),
} as const;

export const API_FAMILIES: readonly FamilyDecl[] = Object.values(API);

type L = (typeof ACCOUNT_API)[number];

export interface ApiMetrics {
  requests: Counter<L | 'code'>;
  duration: Histogram<L>;
  throttled: Counter<L>;
  retries: Counter<L>;
  queueDepth: Gauge<L>;
  qps: Gauge<L>;
  margin: Gauge<L>;
  /** The same calls, throttled answers and retries, counted for the status page's last minute. */
  activity: ApiActivity;
}

export function createApiMetrics(registry: Registry): ApiMetrics {
  const registers = [registry];
  const counter = <K extends string>(d: FamilyDecl<K>) => new Counter<K>({ name: d.name, help: d.help, labelNames: d.labels, registers });
  const gauge = (d: FamilyDecl<L>) => new Gauge<L>({ name: d.name, help: d.help, labelNames: d.labels, registers });
  return {
    requests: counter(API.requests),
    duration: new Histogram<L>({ name: API.duration.name, help: API.duration.help, labelNames: API.duration.labels, buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers }),
    throttled: counter(API.throttled),
    retries: counter(API.retries),
    queueDepth: gauge(API.queueDepth),
    qps: gauge(API.qps),
    margin: gauge(API.margin),
    activity: new ApiActivity(),
  };
}
