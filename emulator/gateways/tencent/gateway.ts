// The Tencent Cloud API 3.0 front end: TC3 verification, X-TC-Action routing and the HTTP-200 error envelope.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TencentApi } from '../../core/api';
import { serveCall, type Envelope, type GatewayEnv } from '../../core/call-flow';
import { tencentMessage } from '../error-catalog';
import { sendJson } from '../../core/http-util';
import type { TencentVerifier } from './signature';

function tencentEnvelope(requestId: string, traceId: string): Envelope {
  // Tencent answers every API error at HTTP 200; the SDK only reads the code from this envelope.
  const error = (code: string, message: string): { status: number; body: unknown } => ({
    status: 200,
    body: { Response: { Error: { Code: code, Message: message }, RequestId: requestId } },
  });
  return {
    headers: { 'x-tc-traceid': traceId },
    ok: (body) => ({ status: 200, body: { Response: body } }),
    error,
    throttled: (_api, limit) => ({
      ...error(
        'RequestLimitExceeded',
        `Your current request times exceeds the frequency limit \`${limit}\` for a second. Please reduce the frequency of calls.`,
      ),
      code: 'RequestLimitExceeded',
    }),
    injected: (_api, code) => error(code, tencentMessage(code)),
  };
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** A Tencent API with the service it belongs to (the first label of its endpoint, `mongodb`). */
export type ServiceApi = TencentApi & { service: string };

export class TencentGateway {
  private readonly byAction = new Map<string, ServiceApi>();

  constructor(
    apis: ServiceApi[],
    private readonly verifier: Pick<TencentVerifier, 'verify'>,
    private readonly env: GatewayEnv,
  ) {
    for (const a of apis) this.byAction.set(a.name, a);
  }

  private newEnvelope(req: IncomingMessage): { requestId: string; envelope: Envelope } {
    const requestId = randomUUID();
    const traceId = firstHeader(req.headers['x-tc-traceid']) ?? randomUUID();
    return { requestId, envelope: tencentEnvelope(requestId, traceId) };
  }

  /** The legacy HmacSHA256/HmacSHA1 signature (a form post with SecretId and Signature) is refused. */
  rejectLegacy(req: IncomingMessage, res: ServerResponse, action: string | undefined): void {
    const { envelope } = this.newEnvelope(req);
    const api = action === undefined ? undefined : this.byAction.get(action);
    this.env.stats.signatureFailure(api?.name ?? 'other', undefined, 'AuthFailure.SignatureFailure');
    const e = envelope.error(
      'AuthFailure.SignatureFailure',
      'The provided credentials could not be validated: only TC3-HMAC-SHA256 signatures are accepted.',
      200,
    );
    sendJson(res, e.status, e.body, envelope.headers);
  }

  async handle(req: IncomingMessage, res: ServerResponse, path: string, rawQuery: string, body: Buffer): Promise<void> {
    const { requestId, envelope } = this.newEnvelope(req);
    const fail = (code: string, message: string): void => {
      const e = envelope.error(code, message, 200);
      sendJson(res, e.status, e.body, envelope.headers);
    };
    const action = firstHeader(req.headers['x-tc-action']);
    const version = firstHeader(req.headers['x-tc-version']);
    const api = action === undefined ? undefined : this.byAction.get(action);
    const statsName = api?.name ?? 'other';

    const auth = this.verifier.verify({ method: req.method ?? 'GET', path, rawQuery, headers: req.headers, body }, this.env.now());
    if (!auth.ok) {
      this.env.stats.signatureFailure(statsName, auth.credential?.account, auth.code);
      fail(auth.code, auth.message);
      return;
    }
    const account = auth.credential.account;
    const reject = (code: string, message: string): void => {
      this.env.stats.arrival(statsName, account, this.env.now());
      this.env.stats.outcome(statsName, account, { kind: 'error', code });
      fail(code, message);
    };
    if (action === undefined || action === '') return reject('MissingParameter', 'The request is missing a required parameter `Action`.');
    if (api === undefined) return reject('InvalidAction', `The requested action \`${action}\` does not exist.`);
    if (version !== api.version) {
      return reject('NoSuchVersion', `The requested version \`${version ?? ''}\` of service \`${api.service}\` does not exist.`);
    }

    let params: Record<string, unknown>;
    const fromQuery = req.method === 'GET';
    if (fromQuery) {
      params = Object.fromEntries(new URLSearchParams(rawQuery));
    } else {
      const contentType = String(req.headers['content-type'] ?? '').toLowerCase();
      if (!contentType.startsWith('application/json')) {
        return reject('InvalidParameter', 'TC3-HMAC-SHA256 POST requests must carry Content-Type: application/json.');
      }
      let parsed: unknown;
      try {
        parsed = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
      } catch {
        return reject('InvalidParameter', 'The request body is not valid JSON.');
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        return reject('InvalidParameter', 'The request body must be a JSON object.');
      }
      params = parsed as Record<string, unknown>;
    }
    const region = firstHeader(req.headers['x-tc-region']);
    await serveCall(this.env, res, api.name, account, envelope, (nowMs) =>
      api.handle({ account, params, paramsFromQuery: fromQuery, region: region === '' ? undefined : region, requestId, nowMs }),
    );
  }
}
