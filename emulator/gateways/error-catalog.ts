// HTTP statuses and messages of the gateways' own error codes (throttling, service errors), so injected faults look
// like real ones; each product adds the codes its API documents (EmulatedProduct.errors).

export type ErrorCatalog = Readonly<Record<string, { status: number; message: string }>>;

export const ALIYUN_ERRORS: ErrorCatalog = {
  InternalError: { status: 417, message: 'An error occurred while processing your request. Try again later.' },
  Throttling: { status: 400, message: 'Request was denied due to request throttling.' },
  'Throttling.User': { status: 400, message: 'Request was denied due to user flow control.' },
  'Throttling.Api': { status: 400, message: 'Request was denied due to api flow control.' },
  ServiceUnavailable: { status: 503, message: 'The request has failed due to a temporary failure of the server.' },
};

const TENCENT_MESSAGES: Record<string, string> = {
  RequestLimitExceeded: 'Your current request times equals to `5` in a second, which exceeds the frequency limit `5` for a second. Please reduce the frequency of calls.',
  InternalError: 'An internal error occurred.',
  FailedOperation: 'The operation failed.',
  ResourceUnavailable: 'The resource is unavailable.',
  'AuthFailure.UnauthorizedOperation': 'The request is not authorized.',
};

export function aliyunError(code: string, overrideStatus?: number, catalog: ErrorCatalog = ALIYUN_ERRORS): { status: number; message: string } {
  const known = catalog[code];
  if (code.startsWith('InvalidParameter.')) {
    return { status: overrideStatus ?? 400, message: 'An error occurred while validating the parameter. The parameter may be missing or invalid.' };
  }
  return { status: overrideStatus ?? known?.status ?? 400, message: known?.message ?? `Injected error ${code}.` };
}

export function tencentMessage(code: string): string {
  return TENCENT_MESSAGES[code] ?? `Injected error ${code}.`;
}
