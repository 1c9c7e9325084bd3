// The Alibaba POP RPC front end: parameters, Signature v1, Action/Version routing and the gateway error body.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AliyunApi } from '../../core/api';
import { AliyunVerifier, type PopParams } from './signature';
import { serveCall, type Envelope, type GatewayEnv } from '../../core/call-flow';
import { aliyunError, type ErrorCatalog } from '../error-catalog';
import { sendJson } from '../../core/http-util';

/** Throttling by the POP gateway itself (DAS among others); a product may document its own (AliyunApi.throttleCode). */
const GATEWAY_THROTTLE_CODE = 'Throttling.User';

function popEnvelope(requestId: string, hostId: string, catalog: ErrorCatalog, throttleCode = GATEWAY_THROTTLE_CODE): Envelope {
  const error = (code: string, message: string, httpStatus: number): { status: number; body: unknown } => ({
    status: httpStatus,
    body: {
      RequestId: requestId,
      HostId: hostId,
      Code: code,
      Message: message,
      Recommend: `https://api.aliyun.com/troubleshoot?q=${encodeURIComponent(code)}&requestId=${requestId}`,
    },
  });
  return {
    headers: { 'x-acs-request-id': requestId },
    ok: (body) => ({ status: 200, body }),
    error,
    throttled: () => {
      const e = aliyunError(throttleCode, undefined, catalog);
      return { ...error(throttleCode, e.message, e.status), code: throttleCode };
    },
    injected: (_api, code, httpStatus) => {
      const e = aliyunError(code, httpStatus, catalog);
      return error(code, e.message, e.status);
    },
  };
}

export class AliyunGateway {
  private readonly byVersionAction = new Map<string, AliyunApi>();
  private readonly actions = new Set<string>();

  constructor(
    apis: AliyunApi[],
    private readonly verifier: Pick<AliyunVerifier, 'verify'>,
    private readonly env: GatewayEnv,
    /** The gateway's codes and every product's documented ones. */
    private readonly catalog: ErrorCatalog,
  ) {
    for (const a of apis) {
      this.byVersionAction.set(`${a.version}/${a.name}`, a);
      this.actions.add(a.name);
    }
  }

  async handle(req: IncomingMessage, res: ServerResponse, params: PopParams): Promise<void> {
    const requestId = randomUUID().toUpperCase();
    const action = params.values.get('Action');
    const version = params.values.get('Version');
    const api = this.byVersionAction.get(`${version}/${action}`);
    const envelope = popEnvelope(requestId, String(req.headers.host ?? ''), this.catalog, api?.throttleCode);
    const fail = (code: string, message: string, status = 400): void => {
      const e = envelope.error(code, message, status);
      sendJson(res, e.status, e.body, envelope.headers);
    };
    const statsName = api?.name ?? 'other';

    if (req.method !== 'GET' && req.method !== 'POST') {
      this.env.stats.signatureFailure(statsName, undefined, 'UnsupportedHTTPMethod');
      fail('UnsupportedHTTPMethod', 'This http method is not supported.');
      return;
    }
    for (const name of ['Action', 'Version']) {
      if (!params.values.get(name)) {
        this.env.stats.signatureFailure(statsName, undefined, `Missing${name}`);
        fail(`Missing${name}`, `${name} is mandatory for this action.`);
        return;
      }
    }
    const auth = this.verifier.verify(req.method, params, this.env.now());
    if (!auth.ok) {
      this.env.stats.signatureFailure(statsName, auth.credential?.account, auth.code);
      fail(auth.code, auth.message);
      return;
    }
    const account = auth.credential.account;
    if (api === undefined) {
      const known = this.actions.has(action as string);
      const code = known ? 'InvalidVersion' : 'InvalidAction.NotFound';
      this.env.stats.arrival('other', account, this.env.now());
      this.env.stats.outcome('other', account, { kind: 'error', code });
      if (known) fail(code, 'Specified parameter Version is not valid.');
      else fail(code, 'Specified api is not found, please check your url and method.', 404);
      return;
    }
    if (api.batchSize !== undefined) this.env.stats.batchSize(api.name, account, api.batchSize(params.values));
    // A product may answer some injected codes its own way (DAS: business failures at HTTP 200).
    const own: Envelope = { ...envelope, injected: (name, code, httpStatus) => api.injectedError?.(code, requestId) ?? envelope.injected(name, code, httpStatus) };
    await serveCall(this.env, res, api.name, account, own, (nowMs) =>
      api.handle({ account, accessKeyId: auth.credential.access_key_id, params: params.values, requestId, nowMs }),
    );
  }
}
