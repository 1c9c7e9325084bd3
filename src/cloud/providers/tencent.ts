// Tencent Cloud API 3.0 (TC3-HMAC-SHA256) transport on the official Node SDK, with errors normalised and redacted.
//
// One transport per (account, endpoint, API version), as for every provider. The SDK fixes the region in its client
// constructor, so the transport keeps one SDK client per region, created lazily from the call's `region` (sent as the
// X-TC-Region header). The clients are the SDK's own AbstractClient, which every product package merely subclasses
// with a fixed endpoint and version (so no product is special here). All of them share one keep-alive agent, always
// passed explicitly: the SDK's own proxy support (`http_proxy` only, lower-case, no NO_PROXY, no timeout bound) never
// applies; the agent goes through the account's proxy when proxy.ts says so.
import type http from 'node:http';
import { AbstractClient } from 'tencentcloud-sdk-nodejs-common';
import { CloudError, credentialsUnavailableError, exchangeError, isThrottlingCode, nodeNetworkError, type FinalScope } from '../errors';
import { boundedExchange, ExchangeFailure, guardedAgent } from '../http-guard';
import type { ProxyEndpoint } from '../proxy';
import type { CallRequest, CloudTransport, RefreshableCredentials } from '../transport';

export interface TencentKey {
  secretId: string;
  secretKey: string;
  token?: string;
}

/** A Tencent SDK client's `credential`: asked before every request (the account's refreshing credentials). */
export interface TencentKeySource {
  getCredential(): Promise<TencentKey>;
}

export interface TencentTransportOptions {
  /** Upper bound of a call in ms (the account's request_timeout); each call also has its own, shorter timeout. */
  maxTimeoutMs?: number;
  /** Response bodies beyond this fail with ResponseTooLarge. */
  maxResponseBytes: number;
  /** The proxy of the account's route to this endpoint (proxy.ts). */
  proxy?: ProxyEndpoint;
}

interface SdkClient {
  request(action: string, req: unknown, options?: { signal?: AbortSignal }): Promise<unknown>;
}

/** Splits `https://mongodb.tencentcloudapi.com[:port]` into the SDK's `protocol` and `endpoint` (host[:port]). */
export function splitTencentEndpoint(url: string): { protocol: 'http://' | 'https://'; endpoint: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`endpoint ${url} is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`endpoint ${url} must start with http:// or https://`);
  if ((parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search || parsed.hash) {
    throw new Error(`endpoint ${url} must not have a path or query: the SDK always posts to "/"`);
  }
  if (parsed.username || parsed.password) throw new Error(`endpoint must not carry credentials`);
  return { protocol: parsed.protocol === 'https:' ? 'https://' : 'http://', endpoint: parsed.host };
}

/** Codes that mean "try again"; everything else (auth, parameters, unsupported instance, unknown instance) is final. */
function isRetryableCode(code: string): boolean {
  return isThrottlingCode(code) || code === 'InternalError' || code.startsWith('InternalError.');
}

/** A temporary key's token expired or is unknown: a refreshed credential may pass (the client refreshes once, then it is final). */
const TOKEN_FAILURE = 'AuthFailure.TokenFailure';

/** Answers that do not depend on the call (API 3.0 common codes): credentials, signature and clock for the account; CAM permission, which may be granted per resource, for the target. */
function finalScope(code: string): FinalScope | undefined {
  if (code === TOKEN_FAILURE) return undefined;
  if (code === 'AuthFailure.UnauthorizedOperation' || code.startsWith('UnauthorizedOperation')) return 'target';
  return code.startsWith('AuthFailure') ? 'account' : undefined;
}

export class TencentTransport implements CloudTransport {
  readonly provider = 'tencentcloud' as const;
  readonly credentials?: RefreshableCredentials;
  private readonly source: TencentKey | TencentKeySource;
  private readonly agent: http.Agent;
  private readonly clients = new Map<string, SdkClient>();
  private readonly protocol: 'http://' | 'https://';
  private readonly host: string;
  private readonly maxTimeoutMs: number;
  private readonly maxResponseBytes: number;

  constructor(
    /** A fixed key, or the account's credentials provider (refreshing ones also offer a refresh on expiry). */
    creds: TencentKey | (TencentKeySource & Partial<RefreshableCredentials> & { refreshable?: boolean }),
    endpoint: string,
    private readonly apiVersion: string,
    opts: TencentTransportOptions,
  ) {
    this.source = creds;
    // Fixed keys are not offered: refreshing them would only send a refused call again.
    if ('getCredential' in creds && creds.refreshNow && creds.refreshable !== false) this.credentials = creds as RefreshableCredentials;
    const { protocol, endpoint: host } = splitTencentEndpoint(endpoint);
    this.protocol = protocol;
    this.host = host;
    this.maxTimeoutMs = opts.maxTimeoutMs ?? 60_000;
    this.maxResponseBytes = opts.maxResponseBytes;
    this.agent = guardedAgent(protocol === 'https://' ? 'https:' : 'http:', { maxSockets: 64, proxy: opts.proxy });
  }

  private clientFor(region: string | undefined): SdkClient {
    const key = region ?? '';
    let client = this.clients.get(key);
    if (!client) {
      const cfg = {
        // The SDK asks an object with getCredential() before every request; a fixed key it uses as it is.
        credential: 'getCredential' in this.source ? this.source : { secretId: this.source.secretId, secretKey: this.source.secretKey, ...(this.source.token ? { token: this.source.token } : {}) },
        ...(region ? { region } : {}),
        profile: {
          signMethod: 'TC3-HMAC-SHA256' as const,
          httpProfile: {
            endpoint: this.host,
            protocol: this.protocol,
            reqMethod: 'POST' as const,
            // The SDK's own timeout (seconds) is only a backstop; each exchange ends at its own timeoutMs.
            reqTimeout: Math.max(1, Math.ceil(this.maxTimeoutMs / 1000) + 1),
            agent: this.agent,
          },
        },
      };
      client = new (AbstractClient as unknown as new (e: string, v: string, c: unknown) => SdkClient)(this.host, this.apiVersion, cfg);
      this.clients.set(key, client);
    }
    return client;
  }

  async call(req: CallRequest): Promise<unknown> {
    const params: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(req.params)) if (v !== undefined && v !== null) params[k] = v;
    const client = this.clientFor(req.region);
    try {
      return await boundedExchange({ timeoutMs: req.timeoutMs, maxResponseBytes: this.maxResponseBytes, signal: req.signal }, () => client.request(req.api, params));
    } catch (err) {
      throw normaliseTencentError(req.api, err);
    }
  }

  close(): void {
    this.agent.destroy();
    this.clients.clear();
  }
}

/**
 * The SDK raises TencentCloudSDKHttpException for everything it catches: with `code` and `requestId` for an API error
 * (HTTP 200 envelope), with `httpCode` and no code for a non-200 status, with only a message for network errors and
 * timeouts. A 200 without `Response` surfaces as a TypeError, a non-JSON body as node-fetch's invalid-json FetchError.
 */
function normaliseTencentError(api: string, err: unknown): CloudError {
  if (err instanceof ExchangeFailure) return exchangeError('tencentcloud', api, err);
  const unavailable = credentialsUnavailableError('tencentcloud', api, err);
  if (unavailable) return unavailable;
  const e = (err ?? {}) as { name?: string; message?: string; code?: unknown; httpCode?: unknown; requestId?: unknown; type?: unknown; constructor?: { name?: string } };
  const message = typeof e.message === 'string' ? e.message : String(err);
  const isSdkException = e.constructor?.name === 'TencentCloudSDKHttpException' || ('requestId' in e && 'traceId' in e);
  const requestId = typeof e.requestId === 'string' && e.requestId ? e.requestId : undefined;
  const base = { provider: 'tencentcloud' as const, api };

  if (isSdkException && typeof e.code === 'string' && e.code) {
    const code = e.code;
    const throttled = isThrottlingCode(code);
    return new CloudError({ ...base, code, message: `${api} failed: ${code}: ${message || 'no message'}`, requestId, retryable: isRetryableCode(code), throttled, finalForRun: finalScope(code), credentialExpired: code === TOKEN_FAILURE });
  }
  if (isSdkException && typeof e.httpCode === 'number') {
    const status = e.httpCode;
    return new CloudError({
      ...base,
      code: `HTTP${status}`,
      message: `${api} failed: HTTP ${status} ${message}`.trim(),
      httpStatus: status,
      retryable: status >= 500 || status === 429,
      throttled: status === 429,
    });
  }
  if (e.name === 'AbortError' || /network timeout|timed? ?out|user aborted/i.test(message)) {
    return new CloudError({ ...base, code: 'Timeout', message: `${api} timed out`, retryable: true, throttled: false });
  }
  if (err instanceof TypeError || e.name === 'TypeError' || e.type === 'invalid-json' || err instanceof SyntaxError || /invalid json response body/i.test(message)) {
    return new CloudError({ ...base, code: 'MalformedResponse', message: `${api} returned a body without a JSON Response object`, retryable: true, throttled: false });
  }
  // node-fetch keeps the system error's code on the FetchError the SDK wraps; its message names the reason.
  const network = nodeNetworkError('tencentcloud', api, err);
  if (network) return network;
  if (isSdkException || /request to .* failed/i.test(message) || e.type === 'system') {
    return new CloudError({ ...base, code: 'NetworkError', message: `${api} connection failed: ${/reason: (.*)$/.exec(message)?.[1] ?? message}`, retryable: true, throttled: false });
  }
  return new CloudError({ ...base, code: 'Unknown', message: `${api} failed: ${message}`, retryable: false, throttled: false });
}
