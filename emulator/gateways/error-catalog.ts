// HTTP statuses and messages of the error codes the emulator can answer, so injected faults look like real ones.

export const ALIYUN_ERRORS: Record<string, { status: number; message: string }> = {
  SystemOverFlow: { status: 403, message: 'An error occurred while processing your request. Please try again.' },
  InternalError: { status: 417, message: 'An error occurred while processing your request. Try again later.' },
  SendMessageFailed: { status: 417, message: 'A storage exception occurred while sending the message. Please try again.' },
  ApiNotSupport: { status: 404, message: 'The specified API is not supported.' },
  CheckAccountInfoFailed: { status: 400, message: 'An error occurred while checking the account information by the STS token.' },
  InstancePermissionCheckFailed: {
    status: 400,
    message: 'An error occurred while validating the permissions of the instance. Please verify the account that created the instance and its permissions settings.',
  },
  ParameterCheckFailed: { status: 400, message: 'An error occurred while validating the parameters. The parameters may be missing or invalid.' },
  PermissionCheckFailed: {
    status: 400,
    message: 'An error occurred while validating the resource permissions. Please check the account that created the instance, topic, and GroupId, and check their permission settings.',
  },
  InvalidParams: { status: 400, message: 'The request parameters are invalid.' },
  NoPermission: { status: 403, message: 'You are not authorized to do this action.' },
  'Throttling.User': { status: 400, message: 'Request was denied due to user flow control.' },
  'Throttling.Api': { status: 400, message: 'Request was denied due to api flow control.' },
  ServiceUnavailable: { status: 503, message: 'The request has failed due to a temporary failure of the server.' },
};

export const TENCENT_MESSAGES: Record<string, string> = {
  RequestLimitExceeded: 'Your current request times equals to `5` in a second, which exceeds the frequency limit `5` for a second. Please reduce the frequency of calls.',
  InternalError: 'An internal error occurred.',
  FailedOperation: 'The operation failed.',
  ResourceUnavailable: 'The resource is unavailable.',
  'AuthFailure.UnauthorizedOperation': 'The request is not authorized.',
};

export function aliyunError(code: string, overrideStatus?: number): { status: number; message: string } {
  const known = ALIYUN_ERRORS[code];
  if (code.startsWith('InvalidParameter.')) {
    return { status: overrideStatus ?? 400, message: 'An error occurred while validating the parameter. The parameter may be missing or invalid.' };
  }
  return { status: overrideStatus ?? known?.status ?? 400, message: known?.message ?? `Injected error ${code}.` };
}

export function tencentMessage(code: string): string {
  return TENCENT_MESSAGES[code] ?? `Injected error ${code}.`;
}
