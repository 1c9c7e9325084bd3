// prom-client self-metrics about cloud calls: what we sent, how long it took, how often we were throttled.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface ApiMetrics {
  requests: Counter<'account' | 'api' | 'code'>;
  duration: Histogram<'account' | 'api'>;
  throttled: Counter<'account' | 'api'>;
  retries: Counter<'account' | 'api'>;
  queueDepth: Gauge<'account' | 'api'>;
  qps: Gauge<'account' | 'api'>;
  margin: Gauge<'account' | 'api'>;
}

export function createApiMetrics(registry: Registry): ApiMetrics {
  return {
    requests: new Counter({
      name: 'cloud_session_exporter_api_requests_total',
      help: 'Cloud API calls sent, retries included, by result code (OK on success).',
      labelNames: ['account', 'api', 'code'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'cloud_session_exporter_api_request_duration_seconds',
      help: 'Latency of cloud API calls, retries counted separately.',
      labelNames: ['account', 'api'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    throttled: new Counter({
      name: 'cloud_session_exporter_api_throttled_total',
      help: 'Cloud API calls answered with a throttling error code.',
      labelNames: ['account', 'api'],
      registers: [registry],
    }),
    retries: new Counter({
      name: 'cloud_session_exporter_api_retries_total',
      help: 'Cloud API calls repeated after a retryable error.',
      labelNames: ['account', 'api'],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'cloud_session_exporter_ratelimit_queue_depth',
      help: 'Cloud API calls waiting for the rate limiter.',
      labelNames: ['account', 'api'],
      registers: [registry],
    }),
    qps: new Gauge({
      name: 'cloud_session_exporter_ratelimit_qps',
      help: 'Configured rate limit of a cloud API for an account, in calls per second.',
      labelNames: ['account', 'api'],
      registers: [registry],
    }),
    margin: new Gauge({
      name: 'cloud_session_exporter_ratelimit_margin_seconds',
      help: 'How long a call is assumed to take to reach the cloud, for rate limiting: rate_limit_margin, widened after the cloud throttled a call and decaying back.',
      labelNames: ['account', 'api'],
      registers: [registry],
    }),
  };
}
