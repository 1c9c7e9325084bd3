// Alibaba Cloud RPC (POP, signature v1) transport on @alicloud/pop-core, with errors normalised and redacted.
import { AsyncLocalStorage } from 'node:async_hooks';
import type http from 'node:http';
// pop-core ships no types; its surface used here is small.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const RPCClient = require('@alicloud/pop-core').RPCClient as new (cfg: Record<string, unknown>) => PopClient;
import { CloudError, credentialsUnavailableError, exchangeError, isThrottlingCode, nodeNetworkError } from '../errors';
import { boundedExchange, ExchangeFailure, guardedAgent } from '../http-guard';
import type { ProxyEndpoint } from '../proxy';
import type { CallRequest, CloudTransport, RefreshableCredentials } from '../transport';

interface PopClient {
  request(action: string, params: Record<string, unknown>, opts: Record<string, unknown>): Promise<unknown>;
}

export interface AliyunKey {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string;
}

/** pop-core's `credentialsProvider`: asked before every request (the account's refreshing credentials). */
export interface AliyunKeySource {
  getCredentials(): Promise<AliyunKey>;
}

/**
 * Codes that mean "try again" besides throttling (SystemOverFlow, Throttling, Throttling.User, ...: isThrottlingCode);
 * everything else (permissions, parameters such as ParameterFieldCheckFailed, unknown instance) is final for the call.
 */
const RETRYABLE_CODES = new Set(['InternalError', 'ServiceUnavailable', 'ServiceUnavailableTemporary', 'SystemBusy']);

/**
 * Answers that do not depend on the call (help.aliyun.com/document_detail/48054 and the RAM codes): credentials,
 * signature and clock hold for the whole account; permissions may be granted per instance, and an instance that does
 * not exist (MqttInstanceNotFound) or belongs to another account (MqttOwnerCheckError) is so for every call about it.
 */
const FINAL_FOR_ACCOUNT = /^(InvalidAccessKeyId|SignatureDoesNotMatch|IncompleteSignature|InvalidTimeStamp|InvalidSecurityToken|CheckAccountInfoFailed)(\.|$)/;
const FINAL_FOR_TARGET = /^(Forbidden|NoPermission|PermissionCheckFailed|InstancePermissionCheckFailed|MqttInstanceNotFound|MqttOwnerCheckError)(\.|$)/;
/** The STS token expired: a refreshed credential may pass (the client refreshes once, then the answer is final). */
const TOKEN_EXPIRED = 'InvalidSecurityToken.Expired';

export class AliyunRpcTransport implements CloudTransport {
  readonly provider = 'aliyun' as const;
  readonly credentials?: RefreshableCredentials;
  private readonly client: PopClient;
  private readonly agent: http.Agent;
  private readonly source: AliyunKeySource;
  /** The key a request is signed with, read once in call() and handed to pop-core inside that call's context. */
  private readonly signingKey = new AsyncLocalStorage<AliyunKey>();

  constructor(
    /** A fixed key, or the account's credentials provider (refreshing ones also offer a refresh on expiry). */
    creds: AliyunKey | (AliyunKeySource & Partial<RefreshableCredentials> & { refreshable?: boolean }),
    endpoint: string,
    apiVersion: string,
    private readonly maxResponseBytes: number,
    /** The proxy of the account's route to this endpoint (proxy.ts); pop-core reads no proxy variable itself. */
    proxy?: ProxyEndpoint,
  ) {
    // One keep-alive agent per client, sized for 1,000 QPS at cloud latencies without unbounded sockets.
    this.agent = guardedAgent(endpoint.startsWith('https://') ? 'https:' : 'http:', { maxSockets: 256, proxy });
    this.source = 'getCredentials' in creds ? creds : { getCredentials: async () => creds };
    // Fixed keys are not offered: refreshing them would only send a refused call again.
    if ('getCredentials' in creds && creds.refreshNow && creds.refreshable !== false) this.credentials = creds as RefreshableCredentials;
    this.client = new RPCClient({
      // Read by pop-core at the start of every request: the key call() read, so that onSigned names the one used.
      credentialsProvider: { getCredentials: async () => this.signingKey.getStore() ?? this.source.getCredentials() },
      endpoint,
      apiVersion,
      opts: { agent: this.agent },
    });
  }

  async call(req: CallRequest): Promise<unknown> {
    const params: Record<string, unknown> = {};
    // pop-core would send undefined/null as the strings "undefined"/"null".
    for (const [k, v] of Object.entries(req.params)) if (v !== undefined && v !== null) params[k] = v;
    const limits = { timeoutMs: req.timeoutMs, maxResponseBytes: this.maxResponseBytes, signal: req.signal };
    let body: unknown;
    try {
      body = await boundedExchange(limits, async () => {
        // Inside the bounded exchange: waiting for a first credential is bounded like the call.
        const key = await this.source.getCredentials();
        req.onSigned?.(key.accessKeyId);
        return this.signingKey.run(key, () =>
          this.client.request(req.api, params, {
            method: 'POST',
            // httpx's own timers only as a backstop: the exchange's timer ends the call first, and destroys its socket.
            timeout: req.timeoutMs + 1000,
            formatParams: false,
            agent: this.agent,
          }),
        );
      });
    } catch (err) {
      throw normaliseAliyunError(req.api, err);
    }
    const failure = businessFailure(req.api, body);
    if (failure) throw failure;
    return body;
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Codes pop-core treats as success (its default `codes`). */
const SUCCESS_CODES = new Set(['200', 'OK', 'Success', 'success']);

/**
 * Some products (DAS among them) answer a business failure at HTTP 200 with `Success: false` (a boolean, or the string
 * "false") and a Code that pop-core may take for success (200): the provider's convention, checked here for every API.
 */
export function businessFailure(api: string, body: unknown): CloudError | undefined {
  const b = body as { Success?: unknown; Code?: unknown; Message?: unknown; RequestId?: unknown } | null;
  if (!b || typeof b !== 'object' || !(b.Success === false || String(b.Success).toLowerCase() === 'false')) return undefined;
  const rawCode = b.Code === undefined || b.Code === null ? '' : String(b.Code).trim();
  const code = rawCode !== '' && !SUCCESS_CODES.has(rawCode) ? rawCode : 'BusinessFailure';
  return apiError(api, code, `Success=${String(b.Success)}, Code=${rawCode || 'none'}: ${typeof b.Message === 'string' && b.Message ? b.Message : 'no message'}`, typeof b.RequestId === 'string' ? b.RequestId : undefined, 200);
}

/** The CloudError of an answer that carries an error code: retryable, throttling and final per this provider. */
function apiError(api: string, code: string, message: string, requestId: string | undefined, httpStatus: number | undefined): CloudError {
  const throttled = isThrottlingCode(code);
  const credentialExpired = code === TOKEN_EXPIRED;
  return new CloudError({
    provider: 'aliyun',
    api,
    code,
    message: `${api} failed: ${code}: ${message}`,
    httpStatus,
    requestId,
    retryable: throttled || RETRYABLE_CODES.has(code),
    throttled,
    credentialExpired,
    finalForRun: credentialExpired ? undefined : FINAL_FOR_ACCOUNT.test(code) ? 'account' : FINAL_FOR_TARGET.test(code) ? 'target' : undefined,
  });
}

export function normaliseAliyunError(api: string, err: unknown): CloudError {
  if (err instanceof ExchangeFailure) return exchangeError('aliyun', api, err);
  const unavailable = credentialsUnavailableError('aliyun', api, err);
  if (unavailable) return unavailable;
  const e = err as {
    code?: unknown;
    name?: string;
    message?: string;
    data?: { RequestId?: string; Message?: string; Code?: unknown };
    entry?: { response?: { statusCode?: number } };
  };
  if (e && (typeof e.code === 'string' || typeof e.code === 'number') && e.data && typeof e.data === 'object') {
    const message = typeof e.data.Message === 'string' ? e.data.Message : 'no message';
    return apiError(api, String(e.code), message, typeof e.data.RequestId === 'string' ? e.data.RequestId : undefined, e.entry?.response?.statusCode);
  }
  if (e?.name === 'RequestTimeoutError' || /timeout/i.test(String(e?.message ?? ''))) {
    return new CloudError({ provider: 'aliyun', api, code: 'Timeout', message: `${api} timed out: ${e?.message ?? ''}`, retryable: true, throttled: false });
  }
  if (e instanceof SyntaxError || e?.name === 'SyntaxError') {
    return new CloudError({ provider: 'aliyun', api, code: 'MalformedResponse', message: `${api} returned a body that is not JSON`, retryable: true, throttled: false });
  }
  const network = nodeNetworkError('aliyun', api, err);
  if (network) return network;
  return new CloudError({ provider: 'aliyun', api, code: 'Unknown', message: `${api} failed: ${e?.message ?? String(err)}`, retryable: false, throttled: false });
}
